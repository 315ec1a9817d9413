"""Shared fixtures: the element-wise kernel backends that this machine can run.

A test that takes the ``kernel_backend`` fixture runs once per backend that
:func:`numpynn._kernels.available` reports here (``numpy``, the reference, always;
``numba`` when the compiled kernels can be built or loaded).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest

from numpynn import _kernels


@functools.cache
def available_backends() -> tuple[str, ...]:
    """The kernel backends that can run here, the reference (``numpy``) first."""
    return tuple(_kernels.available())


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "kernel_backend" in metafunc.fixturenames:
        metafunc.parametrize("kernel_backend", available_backends(), indirect=True)


@pytest.fixture
def kernel_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Select one kernel backend for the test, restoring the previous one after."""
    previous = _kernels.use(request.param)
    try:
        yield request.param
    finally:
        _kernels.use(previous)
