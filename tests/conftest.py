"""Shared fixtures, and CI's rule that every test runs.

Kernel backends: a test that takes the ``kernel_backend`` fixture runs once per
backend that :func:`numpynn._kernels.available` reports here (``numpy``, the
reference, always; ``c`` where the install built the C kernels). A
test that takes ``compiled_backend`` runs once per backend other than the
reference, to compare it with the reference.

Under CI (``CI=true`` in the environment, as ``.ci/run`` is run) a skipped test is
a failure, and so is a test module that skips itself: a green CI run means that
every test ran. Outside CI a skip stays a skip, with its reason in the summary.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from numpynn import _kernels


def under_ci() -> bool:
    """Whether this run is CI's: ``CI`` set to true, 1 or yes (any case)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


# CI draws the same hypothesis examples on every run (a red CI is then reproducible, never a
# roll of the dice); elsewhere each run explores new ones. No example has a deadline: on a busy
# machine one can take seconds, and a test must not depend on the machine's speed.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("local", deadline=None)
settings.load_profile("ci" if under_ci() else "local")


@functools.cache
def available_backends() -> tuple[str, ...]:
    """The kernel backends that can run here, the reference (``numpy``) first."""
    return tuple(_kernels.available())


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "kernel_backend" in metafunc.fixturenames:
        metafunc.parametrize("kernel_backend", available_backends(), indirect=True)
    if "compiled_backend" in metafunc.fixturenames:
        compiled = [name for name in available_backends() if name != "numpy"]
        metafunc.parametrize("compiled_backend", compiled, indirect=True)


def _select(name: str) -> Iterator[str]:
    previous = _kernels.use(name)
    try:
        yield name
    finally:
        _kernels.use(previous)


@pytest.fixture
def kernel_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Select one kernel backend for the test, restoring the previous one after."""
    yield from _select(request.param)


@pytest.fixture
def compiled_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Select one backend other than the NumPy reference, restoring the previous one after."""
    yield from _select(request.param)


# --- CI: nothing may be skipped ----------------------------------------------------------------
def _skip_reason(longrepr: object) -> str:
    """The reason pytest recorded for a skip (its longrepr is (path, line, reason))."""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
        return reason.removeprefix("Skipped: ")
    return str(longrepr)


def _fail_the_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    report.outcome = "failed"
    report.longrepr = f"skipped, but under CI (CI=true) every test must run: {_skip_reason(report.longrepr)}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if under_ci() and report.skipped and not hasattr(report, "wasxfail"):
        _fail_the_skip(report)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if under_ci() and report.skipped:
        _fail_the_skip(report)


@pytest.fixture(scope="session")
def digit_folder(tmp_path_factory: pytest.TempPathFactory):
    """``digit_folder(n_train, n_test)``: a drop-in IDX folder (the official file names) of the
    first ``n_train`` training and ``n_test`` test digits of the bundled sample; made once
    per size and session."""
    import numpy as np

    from numpynn import datasets

    made: dict[tuple[int, int], object] = {}

    def make(n_train: int, n_test: int):
        if (n_train, n_test) not in made:
            data = datasets.load("mnist-sample")
            folder = tmp_path_factory.mktemp(f"digits-{n_train}-{n_test}")
            for part, x, y in (("train", data.x_train[:n_train], data.y_train[:n_train]),
                               ("t10k", data.x_test[:n_test], data.y_test[:n_test])):
                datasets.write_idx(folder / f"{part}-images-idx3-ubyte.gz", x.reshape(-1, 28, 28))
                datasets.write_idx(folder / f"{part}-labels-idx1-ubyte.gz", y.astype(np.uint8))
            made[n_train, n_test] = folder
        return made[n_train, n_test]

    return make
