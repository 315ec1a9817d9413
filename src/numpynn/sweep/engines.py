"""Where the trials run: joblib worker processes on this machine, or the workers of a Dask cluster.

Either engine yields ``(row, params)`` of :func:`~numpynn.sweep.trial.run_trial` as each
trial finishes, in the order they finish. joblib and dask.distributed are optional
(``pip install 'numpynn[sweep]'``) and imported only here, when a sweep runs.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .._checks import one_line, whole_number
from ..datasets import Dataset
from .options import GridError
from .trial import run_trial

MISSING = "sweeps need joblib and dask.distributed: pip install 'numpynn[sweep]'"
#: Seconds :func:`connect` waits for a Dask scheduler that does not answer.
CONNECT_TIMEOUT = 3.0


def _need(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(MISSING) from None


def require(dask: bool = False) -> None:
    """ImportError with how to install them, unless joblib (and, with ``dask``,
    dask.distributed) can be imported."""
    _need("joblib")
    _need("threadpoolctl")
    if dask:
        _need("dask.distributed")


def cores() -> int:
    """The cores this process may run on: the default number of joblib workers."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def check_jobs(jobs: Any) -> int:
    """The number of joblib workers (None: :func:`cores`); :class:`GridError` unless a positive
    whole number."""
    if jobs is None:
        return cores()
    try:
        return whole_number(jobs, "jobs")
    except ValueError as e:
        raise GridError(str(e)) from None


def threads_per_trial(jobs: int) -> int:
    """numpynn's threads for each of ``jobs`` trials at once: ``cores() // jobs``, at least one."""
    return max(1, cores() // jobs)


def joblib_engine(trials: Sequence[Mapping[str, Any]], data: Dataset, jobs: int) -> Iterator[Any]:
    """The trials in ``jobs`` worker processes (one: in this process, one after the other), each
    on ``cores() // jobs`` of numpynn's threads (at least one), so that jobs × threads ≤ cores."""
    joblib = _need("joblib")
    _need("threadpoolctl")
    threads = threads_per_trial(jobs)
    if jobs == 1:
        for trial in trials:
            yield run_trial(trial, data, threads)
        return
    parallel = joblib.Parallel(n_jobs=jobs, return_as="generator_unordered")
    yield from parallel(joblib.delayed(run_trial)(trial, data, threads) for trial in trials)


def dask_engine(trials: Sequence[Mapping[str, Any]], data: Dataset, client: Any) -> Iterator[Any]:
    """The trials on the cluster of ``client`` (left open)."""
    distributed = _need("dask.distributed")
    if not trials:
        return
    shared = client.scatter(data, broadcast=True, hash=False)  # the data travels once per worker
    futures = [client.submit(run_trial, trial, shared, 1, pure=False) for trial in trials]  # a task a core
    for future in distributed.as_completed(futures):
        yield future.result()


def connect(scheduler: str, timeout: float = CONNECT_TIMEOUT) -> Any:
    """A ``dask.distributed.Client`` of the scheduler at ``scheduler`` (``tcp://HOST:PORT``);
    :class:`ConnectionError` (one line) if it does not answer within ``timeout`` seconds:
    at once where nothing listens at a TCP address (a plain connection is tried first,
    before Dask is even imported)."""
    _probe(scheduler, timeout)
    _need("joblib")
    distributed = _need("dask.distributed")
    try:
        return distributed.Client(scheduler, timeout=f"{timeout:g}s")
    except (OSError, TimeoutError) as e:
        raise ConnectionError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
    except Exception as e:  # noqa: BLE001 - something answers there, but not as a Dask scheduler
        raise ConnectionError(f"no Dask scheduler answers at {scheduler} "
                              f"({type(e).__name__}: {one_line(e)[:200]})") from None


def _probe(scheduler: str, timeout: float) -> None:
    """ConnectionError unless a TCP connection to a ``tcp://`` or ``tls://`` address (or a bare
    ``HOST:PORT``) opens within ``timeout`` seconds; other addresses are left to Dask."""
    import socket

    scheme, _, rest = scheduler.rpartition("://")
    host, _, port = rest.rpartition(":")
    host = host.strip("[]")  # an IPv6 address
    if (scheme or "tcp") not in ("tcp", "tls") or not host or not port.isdigit():
        return
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as e:
        reason = e.strerror or str(e) or type(e).__name__
        raise ConnectionError(f"cannot reach the Dask scheduler at {scheduler}: {reason}") from None
