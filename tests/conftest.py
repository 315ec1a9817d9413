"""Shared fixtures: the element-wise kernel backends that this machine can run.

A test that takes the ``kernel_backend`` fixture runs once per available backend
(``numpy``, the reference, always; compiled ones when their package is installed).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest

from numpynn import _kernels


def _candidates() -> list[str]:
    """Every backend name numpynn might know: ``numpy`` (the reference) first."""
    names = ["numpy"]
    listed = getattr(_kernels, "available", None)
    if callable(listed):
        names += list(listed())
    names += list(getattr(_kernels, "BACKENDS", ()))
    names += ["numexpr", "numba"]
    return list(dict.fromkeys(names))


@functools.cache
def available_backends() -> tuple[str, ...]:
    """The backends that ``_kernels.use`` accepts here (missing packages are skipped)."""
    names = []
    previous = _kernels.use("numpy")
    try:
        for name in _candidates():
            try:
                _kernels.use(name)
            except (ImportError, ValueError):
                continue
            names.append(name)
    finally:
        _kernels.use(previous)
    return tuple(names)


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
