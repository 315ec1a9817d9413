"""numpynn's own threads: a batch cut into fixed-size shards, the shards run on a thread pool.

Most of a training step outside the matrix products is NumPy passes over whole arrays
(im2col's copies, col2im's additions, pooling, biases and activations), each on one core.
The layers cut such work into *shards* of the batch and hand them to :func:`run`, which
spreads them over ``threads()`` threads; NumPy's loops, BLAS and the C kernels release the
GIL, so the shards of a layer run at once.

Same seed, same bits, any thread count. The result never depends on how many threads ran:

- a layer's shards are fixed by the batch size and a constant of the layer alone
  (:data:`IMAGE_SHARD` samples for convolutions and pooling, :data:`DENSE_SHARD` rows for
  dense layers), never by the thread count; the thread count only says how many of them
  run at once (a batch norm splits its columns instead, by the thread count: a column's sums
  never mix with another column's, so how they are split changes no bit);
- each shard writes its own rows of the outputs, and its own partial parameter gradients
  (∇W_s = x_sᵀ δ_s, ∇b_s = Σ_rows δ_s), which the calling thread then adds up in shard
  order: ∇W = ((∇W_0 + ∇W_1) + ∇W_2) + …;
- BLAS runs on one thread inside a shard (``fit`` holds BLAS at one thread for the whole
  run, and :func:`run` does so around a pass that uses more than one thread): a product's
  bits then do not depend on how BLAS would split it. That needs ``threadpoolctl``
  (numpynn's dev extras and most scientific stacks have it); without it BLAS keeps its own
  thread count, the shards still run on numpynn's threads, but a BLAS that splits a product
  over its threads may round it differently for another thread count, and with both BLAS's
  and numpynn's threads the cores are oversubscribed (set ``OPENBLAS_NUM_THREADS=1``, or
  ``OMP_NUM_THREADS=1``/``MKL_NUM_THREADS=1``, in the environment to get the same bits
  without threadpoolctl).

Who uses how many threads (at most ``threads()``, at most one per shard):

- Conv2D: always, one shard per :data:`IMAGE_SHARD` (16) samples, so a batch of 64 runs on
  up to 4 threads and one of 256 on up to 16;
- MaxPool2D, AvgPool2D: the same shards, on numpynn's threads when a shard's input holds at
  least :data:`SHARD_VALUES_MIN` (65,536) values, else on the calling thread (the convnet's
  first pool, 16 maps of 24×24 a sample, is threaded; its second, 32 of 8×8, is not);
- Dense: only for a batch of more than :data:`DENSE_SHARD` (512) rows, one shard per 512 rows
  (a batch of 64 to 512 is one shard: on 2 cores, shards of 128 made a batch of 256 take
  0.31 s an epoch of 20,000 rows on one thread and 0.44 s on two, against 0.16 s whole;
  ``benchmarks/compare.py --model mlp --batch-sizes 256 --threads 1,2``);
- Residual's own arithmetic (u = F(x) + S(x), σ(u) and their gradients): one shard per
  :data:`DENSE_SHARD` rows or samples, so a batch of up to 512 is one shard, on the calling
  thread (shards of 16 images made the resnet slower on 2 threads: short passes, and each
  costs a hand-off between threads);
- BatchNorm1D, BatchNorm2D: blocks of *columns* (each column's statistics need every row
  and no other column, so the blocks are whole pieces of work, and the bits do not depend
  on the split), one per thread with at least ``NORM_BLOCK_MIN`` (1 M) values: a batch of
  64 images of 16×28×28 stays on one thread, one of 256 uses two (the passes are bound by
  memory; numpynn.layers.norm says more);
- every other layer (Dropout, Flatten, LayerNorm, Sequential, GlobalAvgPool2D): the calling
  thread.

The thread count is ``fit(threads=N)`` during a fit, else the module's setting
(:func:`set_threads`, e.g. from ``numpynn train --threads N``, or a sweep giving each of
its ``jobs`` workers ``cores // jobs``), else the machine's cores (:func:`cores`).
"""

from __future__ import annotations

import _thread
import contextlib
import itertools
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

#: Samples per shard of a convolution or a pooling layer (fixed: the bits never depend on it
#: through the thread count).
IMAGE_SHARD = 16
#: Rows per shard of a dense layer; a batch of up to this many rows is one shard (smaller
#: shards cost more in passes over ∇W than they gain on the cores: docs/benchmarks.md).
DENSE_SHARD = 512
#: A pass whose shards each hold fewer values than this runs on the calling thread: handing a
#: shard to another thread (waking it, 10-20 us) costs more than such a shard's work.
SHARD_VALUES_MIN = 1 << 16

_setting: int | None = None  # set_threads's value; None: the machine's cores
_local = threading.local()  # .worker: True in a pool thread (a nested run stays on it)
_lock = threading.Lock()  # guards _pool
_pool: list[_Helper] = []  # the helper threads started so far
_blas_controller: Any = None  # threadpoolctl's view of the loaded BLAS libraries, found once
_blas_pinned = 0  # > 0 while BLAS is held at one thread (fit, or an outer run)


def cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells, else
    ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _check(n: Any) -> int | None:
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be a positive whole number or None (the machine's cores), not {n!r}")
    return n


def set_threads(n: int | None) -> int | None:
    """Set the threads numpynn's layers use from now on (None: the machine's cores);
    returns the previous setting. ``fit(threads=N)`` overrides it for one fit."""
    global _setting
    previous, _setting = _setting, _check(n)
    return previous


def threads() -> int:
    """The threads a layer's shards may use now."""
    return _setting if _setting is not None else cores()


@contextlib.contextmanager
def using(n: int | None) -> Iterator[None]:
    """``threads()`` is ``n`` inside the block (None: leave the setting as it is)."""
    if n is None:
        yield
        return
    previous = set_threads(n)
    try:
        yield
    finally:
        set_threads(previous)


def shards(total: int, size: int) -> list[slice]:
    """The fixed shards of ``total`` items: ``[0, size)``, ``[size, 2·size)``, …, the last
    one shorter. They depend on ``total`` and ``size`` only."""
    return [slice(start, min(start + size, total)) for start in range(0, total, size)]


def run(work: Callable[[int], Any], n: int, values: int | None = None) -> None:
    """``work(s)`` for every shard s in 0..n-1, on up to ``threads()`` threads (the calling
    one among them); returns when all are done, raising the error of the first shard that
    failed. Each ``work(s)`` must write only what belongs to shard s. One shard, one thread,
    a call from inside a shard, or shards of fewer than :data:`SHARD_VALUES_MIN` ``values``
    (what one shard reads, where the caller says) run in order on the calling thread."""
    workers = min(threads(), n) if values is None or values >= SHARD_VALUES_MIN else 1
    if workers <= 1 or getattr(_local, "worker", False):
        for s in range(n):
            work(s)
        return
    job = _Job(work, n)
    with _blas_single():
        for helper in _helpers(workers - 1):
            helper.give(job)
        job.take_shards()
        job.finished.acquire()  # released by whoever finished the last shard (perhaps this thread)
    if job.errors:
        raise min(job.errors, key=lambda e: e[0])[1]


class _Job:
    """One call of :func:`run`: its shards, taken one at a time by the threads that join in."""

    def __init__(self, work: Callable[[int], Any], n: int) -> None:
        self.work, self.n = work, n
        self.next_shard = itertools.count().__next__  # atomic: each shard is taken once
        self.lock = _thread.allocate_lock()
        self.done = 0
        self.errors: list[tuple[int, BaseException]] = []
        self.finished = _thread.allocate_lock()  # held until the last shard is done
        self.finished.acquire()
        self.fp_errors = np.geterr()  # NumPy's floating-point handling is per thread: the caller's holds

    def take_shards(self) -> None:
        """Work shards until none is left. A helper that wakes late finds none and leaves at
        once: the caller waits for the shards being worked on, never for a thread to wake."""
        _local.worker = True
        try:
            with np.errstate(**self.fp_errors):
                while (s := self.next_shard()) < self.n:
                    try:
                        self.work(s)
                    except BaseException as e:  # noqa: BLE001 - raised by the caller
                        self.errors.append((s, e))
                    with self.lock:
                        self.done += 1
                        last = self.done == self.n
                    if last:
                        self.finished.release()
        finally:
            _local.worker = False


class _Helper:
    """A thread that sleeps on its own lock until :func:`run` gives it a job (a lock's release
    wakes it in about 10 us here; a ThreadPoolExecutor's submit took three times as long)."""

    def __init__(self) -> None:
        self.wake = _thread.allocate_lock()
        self.wake.acquire()
        self.job: _Job | None = None
        threading.Thread(target=self._serve, name="numpynn", daemon=True).start()

    def _serve(self) -> None:
        while True:
            self.wake.acquire()
            job = self.job  # the latest job given: an older one has no shard left
            if job is not None:
                job.take_shards()

    def give(self, job: _Job) -> None:
        self.job = job
        if self.wake.locked():  # asleep, or about to sleep: wake it (once)
            with contextlib.suppress(RuntimeError):  # another caller woke it just now
                self.wake.release()


def _helpers(count: int) -> list[_Helper]:
    """The first ``count`` helper threads, started as they are first needed."""
    with _lock:
        while len(_pool) < count:
            _pool.append(_Helper())
        return _pool[:count]


def _forget_pool() -> None:  # a forked child has none of its parent's threads: start afresh
    global _pool, _lock
    _pool, _lock = [], threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def blas_controller() -> Any:
    """threadpoolctl's controller of the loaded BLAS libraries (found once: it walks every
    loaded library), or None without threadpoolctl."""
    global _blas_controller
    if _blas_controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            return None
        _blas_controller = ThreadpoolController().select(user_api="blas")
    return _blas_controller


@contextlib.contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """BLAS on ``n`` threads inside the block (None: as it is). Needs threadpoolctl; without
    it a no-op (see the module's docstring for what that means)."""
    global _blas_pinned
    controller = blas_controller() if n is not None else None
    if controller is None:
        yield
        return
    with controller.limit(limits=n):
        _blas_pinned += n == 1
        try:
            yield
        finally:
            _blas_pinned -= n == 1


@contextlib.contextmanager
def _blas_single() -> Iterator[None]:
    """BLAS on one thread for a pass on numpynn's threads, unless it is already held there."""
    if _blas_pinned:
        yield
        return
    with blas_threads(1):
        yield


#: How many scratch arrays a thread keeps (the oldest goes first when it makes one more).
SCRATCH_KEPT = 8


def scratch(name: str, shape: tuple[int, ...], dtype: Any, fill: float | None = None) -> np.ndarray:
    """An array of the calling thread's own, kept between calls (one per name, shape and dtype):
    a shard's working space, which stays in its core's cache where a whole batch's buffer would
    be read back from memory. It holds what this thread last left in it; ``fill`` sets it once,
    when it is made (a part the caller never writes keeps that value)."""
    store: dict[Any, np.ndarray] = _local.__dict__.setdefault("scratch", {})
    key = (name, shape, np.dtype(dtype))
    buf = store.get(key)
    if buf is None:
        if len(store) >= SCRATCH_KEPT:
            del store[next(iter(store))]
        buf = store[key] = np.empty(shape, dtype) if fill is None else np.full(shape, fill, dtype)
    return buf


def reduce_in_order(parts: Any, out: Any) -> Any:
    """``out`` = ((parts[0] + parts[1]) + parts[2]) + …: partial sums added in shard order,
    whatever thread made them, so the bits never depend on the thread count."""
    if len(parts) == 1:
        if parts[0] is not out:
            out[...] = parts[0]
        return out
    np.add(parts[0], parts[1], out=out)
    for part in parts[2:]:
        out += part
    return out

