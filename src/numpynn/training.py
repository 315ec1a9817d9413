"""The training loop, in small named steps.

::

    fit(net, x, y, ...)
      _prepare        check inputs, carve the validation split, pick optimiser and schedule
      for each epoch:
        _run_epoch    a fresh batch order (and dropout masks) from (seed, epoch), then for each block
                      of about 256 rows:
          _gather     gather the rows, scale uint8 pixels to [0, 1], augment; then for each batch in it:
          _step       forward (its outputs kept for _score), backward, update
          _score      the block's loss and correct count; divergence check
        _end_epoch    the history row; validation; early stopping; the callback
      on Ctrl-C       roll back to the end of the last complete epoch: TrainingInterrupted

Honest model selection: ``validation_split`` carves a seeded part of the
*training* data for choosing (the best epoch, early stopping); a test set is
for the final report only and is never passed here by numpynn's own recipes.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _kernels, _parallel, optimizers
from ._checks import whole_number
from ._shortcuts import shortcut
from .errors import DivergenceError
from .metrics import PIXEL_SCALE, count_correct
from .network import Network
from .optimizers import Optimizer
from .schedules import SCHEDULES, get_schedule
from .selection import EarlyStopping, record_selection, resume_tracker, split_indices

#: Also here for those who train: the schedules' registry and the validation split.
__all__ = ["SCHEDULES", "EarlyStopping", "TrainingInterrupted", "fit", "split_indices"]

Array = np.ndarray
Callback = Callable[[int, dict[str, Any]], Any]
# rows per gather / scale / augment / score block (rounded to whole batches): few enough that a
# block of float32 images (784 KB) stays in the core's cache while its batches train
_BLOCK_ROWS = 256


class TrainingInterrupted(KeyboardInterrupt):
    """Raised by :func:`fit` on Ctrl-C after rolling the network and the
    optimiser back to the end of the last completed epoch (``epochs_done``), so
    that a checkpoint written then resumes exactly."""

    def __init__(self, epochs_done: int, history: dict[str, list[Any]]) -> None:
        super().__init__(f"training interrupted after {epochs_done} complete epochs")
        self.epochs_done = epochs_done
        self.history = history


class _Saved:
    """The state at the start of an epoch, to roll back to on Ctrl-C or divergence: θ, the
    network's state (e.g. running statistics), the optimiser's state and its current rate
    (which a schedule changes every step)."""

    def __init__(self, net: Network, opt: Optimizer) -> None:
        self.params, self.state, self.lr = net.params.copy(), opt.state_dict(), opt.lr
        self.net_state = net.state.copy()

    def restore(self, net: Network, opt: Optimizer) -> None:
        net.params[...] = self.params
        net.state[...] = self.net_state
        opt.load_state_dict(self.state)
        opt.lr = self.lr


@dataclass
class _Run:
    """Everything one call of :func:`fit` settles before its first epoch."""

    x: Array
    t: Array
    rows: Array  # the training rows of x (all of them, or those outside the validation split)
    x_val: Array | None
    t_val: Array | None
    opt: Optimizer
    factor: Callable[[int, int], float] | None
    base_lr: float
    seed: int | None
    epochs: int
    batch_size: int
    steps_per_epoch: int
    total_steps: int
    shuffle: bool
    augment: Callable[[Array, np.random.Generator], Array] | None
    warmup_steps: int = 0  # steps over which the rate rises linearly to its base
    clip_norm: float | None = None  # largest global norm of ∇θ a step may use
    block_rows: int = 0  # rows gathered, scaled and augmented together: whole batches, about 256
    xbuf: Array = field(repr=False, default_factory=lambda: np.empty(0))
    fbuf: Array | None = field(repr=False, default=None)
    ybuf: Array = field(repr=False, default_factory=lambda: np.empty(0))
    zbuf: Array = field(repr=False, default_factory=lambda: np.empty(0))  # the block's z_L, for _score
    abuf: Array = field(repr=False, default_factory=lambda: np.empty(0))  # the block's a_L, for _score
    gbuf: Array = field(repr=False, default_factory=lambda: np.empty(0))  # ∇θ², for the norm of clipping


@shortcut("fit")
def fit(
    net: Network,
    x: Any,
    y: Any,
    epochs: int = 10,
    batch_size: int = 64,
    optimizer: str | Optimizer | None = None,
    validation: tuple[Any, Any] | None = None,
    progress: bool = True,
    *,
    validation_split: float = 0.0,
    early_stopping: int | None = None,
    restore_best: bool = False,
    monitor: str = "val_loss",
    shuffle: bool = True,
    seed: int | None = None,
    schedule: str | Callable[[int, int], float] | None = None,
    augment: Callable[[Array, np.random.Generator], Array] | None = None,
    initial_epoch: int = 0,
    callback: Callback | None = None,
    threads: int | None = None,
    warmup: int = 0,
    clip_norm: float | None = None,
) -> dict[str, list[Any]]:
    """Train ``net`` with mini-batch gradient descent; returns the history.

    Parameters
    ----------
    x, y:
        Inputs (n, *input_shape) and targets: labels (n,) or rows (n, n_out).
        uint8 inputs are pixels and are scaled to [0, 1] one batch at a
        time, so a large image set never exists as floats.
    epochs:
        Total number of passes over the data (counting ``initial_epoch``).
    batch_size:
        Rows per gradient step; the last batch of an epoch may be smaller.
    optimizer:
        An :class:`~numpynn.optimizers.Optimizer`, ``"adam"``, ``"sgd"``,
        or None: the optimiser of the previous ``fit`` (so a second call
        continues where the first stopped), else ``Adam(lr=1e-3)``.
    validation:
        Optional ``(x_val, y_val)`` evaluated after every epoch.
    validation_split:
        Instead of ``validation``: hold out this fraction of ``(x, y)``, drawn
        from the seed (the same rows every time), train on the rest and
        evaluate on it after every epoch.
    early_stopping:
        Stop when ``monitor`` has not improved for this many epochs.
    restore_best:
        At the end, put back the weights of the epoch with the best ``monitor``.
    monitor:
        ``"val_loss"`` (lower is better) or ``"val_accuracy"``.
    progress:
        Show a progress bar per epoch (on a terminal; never into a file or pipe).
    shuffle, seed:
        Epoch ``e`` visits the rows in the order ``default_rng([seed, e])``
        draws, and dropout layers draw their masks from ``net.reseed(e)``
        (seed defaults to the network's), so a run resumed at any epoch
        boundary matches an uninterrupted one exactly.
    schedule:
        ``None`` (constant rate), ``"cosine"`` (the rate decays from the
        optimiser's ``lr`` to 0 along half a cosine over all steps), or
        ``f(step, total_steps) -> factor`` multiplying the base rate.
    augment:
        ``f(x_rows, rng) -> x_rows`` applied to the training rows as floats, in
        blocks of about 256 rows (whole batches) drawn in the epoch's order,
        e.g. :func:`numpynn.augment.random_shift`. It must treat rows alike
        whatever the block: it may not rely on the block's size.
    initial_epoch:
        Resume at this epoch (with the optimiser state of that moment).
    callback:
        ``f(epoch, logs)`` called after each epoch with that epoch's row of
        the history (1-based ``epoch``); returning ``True`` stops training.
    warmup:
        Raise the rate linearly over the first ``warmup`` epochs (step s of the W warm-up
        steps uses (s + 1)/W of the base rate), then run the schedule over the steps left.
    clip_norm:
        Before each step, rescale ∇θ to a global 2-norm of at most ``clip_norm``
        (``torch.nn.utils.clip_grad_norm_``: ∇θ ← ∇θ · c/(‖∇θ‖ + 10⁻⁶) when that is below 1).
    threads:
        numpynn's own threads while training (None: the setting of
        :func:`numpynn.set_threads`, else the machine's cores). Convolutions and
        pooling always cut a batch into shards of 16 samples, dense layers a batch
        of more than 512 rows into shards of 512 rows, and run the shards on up to
        this many threads; BLAS runs on one thread throughout (with threadpoolctl).
        The shards never depend on ``threads``, and partial gradients are added in
        shard order, so any thread count gives the same weights, bit for bit
        (numpynn._parallel says more).

    Returns
    -------
    dict of per-epoch lists: ``epoch``, ``loss``, ``accuracy`` (both
    averaged over the epoch's batches), ``lr``, ``seconds`` and, with
    validation data, ``val_loss`` and ``val_accuracy``. ``net.metadata``
    records which data chose what (``selection``).
    """
    run = _prepare(net, x, y, epochs, batch_size, optimizer, validation, validation_split, seed,
                   shuffle, schedule, augment, initial_epoch)
    whole_number(warmup, "warmup", minimum=0)
    if warmup > epochs:
        raise ValueError(f"warmup ({warmup} epochs) cannot be longer than the training ({epochs} epochs)")
    run.warmup_steps = warmup * run.steps_per_epoch
    if clip_norm is not None:
        if isinstance(clip_norm, bool) or not isinstance(clip_norm, (int, float)) or not (
                math.isfinite(clip_norm) and clip_norm > 0):
            raise ValueError(f"clip_norm must be a positive number, not {clip_norm!r}")
        run.clip_norm = float(clip_norm)
        run.gbuf = np.empty_like(net.grads)
    if (early_stopping is not None or restore_best) and run.x_val is None:
        raise ValueError("early_stopping and restore_best need validation data: "
                         "pass validation=(x_val, y_val) or validation_split=0.1")
    if early_stopping is not None:
        whole_number(early_stopping, "early_stopping", minimum=1)
    if monitor not in ("val_loss", "val_accuracy"):
        raise ValueError(f"monitor must be 'val_loss' or 'val_accuracy', not {monitor!r}")
    tracker = EarlyStopping(monitor, early_stopping, keep_best=restore_best)
    resume_tracker(net, tracker, initial_epoch)
    history: dict[str, list[Any]] = {"epoch": [], "loss": [], "accuracy": [], "lr": [], "seconds": []}
    if run.x_val is not None:
        history["val_loss"], history["val_accuracy"] = [], []
    bar = _progress_bar(run.rows.size) if progress else None
    done = initial_epoch  # epochs complete: what a rollback returns to
    opt = run.opt
    saved = _Saved(net, opt)
    blas = _blas_threads(threads)
    stopped_early = False
    # overflow on the way to a NaN loss is caught below and reported as divergence
    with blas, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        try:
            for epoch in range(initial_epoch, epochs):
                row = _run_epoch(net, run, epoch, saved, bar)
                saved, done = _Saved(net, opt), epoch + 1  # its steps are done: the new last good state
                stop = _end_epoch(net, run, epoch, row, history, tracker)
                if callback is not None and callback(epoch + 1, row) is True:
                    break
                if stop:
                    stopped_early = True
                    break
        except KeyboardInterrupt:
            saved.restore(net, opt)
            raise TrainingInterrupted(done, history) from None
        finally:
            if bar is not None:
                bar.close()
    if restore_best and tracker.best_params is not None:
        net.params[...] = tracker.best_params
        if tracker.best_state is not None:
            net.state[...] = tracker.best_state
    net.best_params = net.best_state = None
    record_selection(net, run.x_val, run.seed, validation_split, tracker, restore_best, stopped_early)
    net.optimizer = opt
    return history


# --- the named steps ----------------------------------------------------------------------------


def _prepare(net: Network, x: Any, y: Any, epochs: int, batch_size: int, optimizer: Any,
             validation: Any, validation_split: float, seed: int | None, shuffle: bool,
             schedule: Any, augment: Any, initial_epoch: int) -> _Run:
    """Check every argument and settle what the epochs share: rows, buffers, optimiser, schedule."""
    whole_number(epochs, "epochs", minimum=1)
    whole_number(batch_size, "batch_size", minimum=1)
    whole_number(initial_epoch, "initial_epoch", minimum=0)
    x = net.check_inputs(x)
    t = net.targets(y, x.shape[0])
    seed = net.seed if seed is None else seed
    x_val = t_val = None
    if validation is not None and validation_split:
        raise ValueError("give validation data or a validation_split, not both")
    if validation is not None:
        try:
            x_val, y_val = validation
        except (TypeError, ValueError):
            raise ValueError("validation must be a pair (x_val, y_val)") from None
        x_val = net.check_inputs(x_val, "x_val")
        t_val = net.targets(y_val, x_val.shape[0], "y_val")
    rows = np.arange(x.shape[0])
    if validation_split:
        rows, val_rows = split_indices(x.shape[0], validation_split, seed)
        x_val, t_val = x[val_rows], t[val_rows]
    opt = optimizers.get(net.optimizer if optimizer is None else optimizer)
    base_lr = float(net.metadata.get("_base_lr", opt.initial_lr)) if initial_epoch else opt.initial_lr
    net.metadata["_base_lr"] = base_lr
    n = rows.size
    batch_size = min(batch_size, n)
    steps_per_epoch = math.ceil(n / batch_size)
    run = _Run(x, t, rows, x_val, t_val, opt, get_schedule(schedule), base_lr, seed, epochs, batch_size,
               steps_per_epoch, epochs * steps_per_epoch, shuffle, augment)
    # reusable block buffers: no copy of the data set per epoch, and a handful of whole-array
    # operations per block of batches instead of per batch (augmentations such as shifts cost
    # a few operations per call whatever the rows, and so does the loss)
    run.block_rows = min(n, batch_size * max(1, _BLOCK_ROWS // batch_size))
    run.xbuf = np.empty((run.block_rows, *net.input_shape), x.dtype)
    run.fbuf = np.empty((run.block_rows, *net.input_shape), net.dtype) if x.dtype == np.uint8 else None
    run.ybuf = np.empty((run.block_rows, net.n_out), net.dtype)
    run.zbuf = np.empty((run.block_rows, net.n_out), net.dtype)
    run.abuf = np.empty((run.block_rows, net.n_out), net.dtype)
    return run


def _run_epoch(net: Network, run: _Run, epoch: int, saved: _Saved,
               bar: Any) -> dict[str, Any]:
    """One pass over the training rows in the order drawn from (seed, epoch)."""
    started = time.perf_counter()
    rng = np.random.default_rng([run.seed if run.seed is not None else 0, epoch])
    order = run.rows[rng.permutation(run.rows.size)] if run.shuffle else run.rows
    net.reseed(epoch, run.seed)  # dropout masks of this epoch
    if bar is not None:
        bar.reset(total=run.rows.size)
        bar.set_description(f"epoch {epoch + 1}/{run.epochs}")
    loss_sum, correct = 0.0, 0
    i = 0  # the batch number within the epoch
    for block in range(0, order.size, run.block_rows):
        xs, ys = _gather(run, order[block : block + run.block_rows], rng)
        first = i
        for start in range(0, xs.shape[0], run.batch_size):
            end = start + run.batch_size
            if run.factor is not None or run.warmup_steps:
                run.opt.lr = _rate(run, epoch, i)
            _step(net, run, xs[start:end], ys[start:end], start)
            i += 1
            if bar is not None:
                bar.update(min(end, xs.shape[0]) - start)
        loss, right = _score(net, run, ys, saved, epoch, first)
        loss_sum += loss
        correct += right
    if not np.isfinite(net.params).all():  # the epoch's last step overflowed
        _diverged(net, run.opt, saved, "the weights overflowed", epoch, i - 1)
    n = run.rows.size
    return {"epoch": epoch + 1, "loss": loss_sum / n, "accuracy": correct / n, "lr": run.opt.lr,
            "seconds": time.perf_counter() - started}


def _gather(run: _Run, idx: Array, rng: np.random.Generator) -> tuple[Array, Array]:
    """The rows ``idx`` as inputs in the network's dtype (uint8 pixels scaled to [0, 1], then
    augmented) and target rows: a block of whole batches, in reused buffers."""
    n = idx.size
    # an augmentation that only moves pixels moves the uint8 pixels as it scales them
    moves_pixels = run.fbuf is not None and hasattr(run.augment, "scaled")
    if run.fbuf is None:  # float rows, as they are
        xs = np.take(run.x, idx, axis=0, out=run.xbuf[:n])
    elif moves_pixels:
        pixels = np.take(run.x, idx, axis=0, out=run.xbuf[:n])
        xs = run.augment.scaled(pixels, PIXEL_SCALE, run.fbuf[:n], rng)  # type: ignore[union-attr]
    else:  # uint8 pixels gathered and scaled to [0, 1] in one pass
        xs = _kernels.gather_scale(run.x, idx, PIXEL_SCALE, run.fbuf[:n])
    if run.augment is not None and not moves_pixels:
        xs = run.augment(xs, rng)
    return xs, np.take(run.t, idx, axis=0, out=run.ybuf[:n])


def _step(net: Network, run: _Run, xb: Array, yb: Array, start: int) -> None:
    """One gradient step on the batch (xb, yb), rows ``start``… of its block, whose outputs
    (z_L, a_L) it keeps for :func:`_score`."""
    net.forward(xb, training=True)
    end = start + xb.shape[0]
    run.zbuf[start:end], run.abuf[start:end] = net.last_pass()
    net.backward(yb)
    if run.clip_norm is not None:
        _clip(net.grads, run.clip_norm, run.gbuf)
    run.opt.step(net.params, net.grads)  # θ ← θ − α ∇θ (or Adam's update)


def _clip(grads: Array, clip_norm: float, buf: Array) -> None:
    """∇θ ← ∇θ · c/(‖∇θ‖ + 10⁻⁶) when that factor is below 1, as torch.nn.utils.clip_grad_norm_.
    The norm is NumPy's pairwise sum of squares: the same bits whatever the thread count."""
    norm = math.sqrt(float(np.add.reduce(np.square(grads, out=buf))))  # ‖∇θ‖₂
    factor = clip_norm / (norm + 1e-6)
    if factor < 1.0:
        grads *= grads.dtype.type(factor)


def _score(net: Network, run: _Run, ys: Array, saved: _Saved, epoch: int,
           first: int) -> tuple[float, int]:
    """The summed loss and the correct count of a block's batches (from the outputs their steps
    kept, all at once); a loss that is not finite stops training at the first batch that had one."""
    n = ys.shape[0]
    z, a = run.zbuf[:n], run.abuf[:n]
    loss = net.loss_of(z, a, ys)
    if not math.isfinite(loss):
        for k, start in enumerate(range(0, n, run.batch_size)):
            rows = slice(start, start + run.batch_size)
            batch_loss = net.loss_of(z[rows], a[rows], ys[rows])
            if not math.isfinite(batch_loss):
                _diverged(net, run.opt, saved, f"loss became {batch_loss}", epoch, first + k,
                          _rate(run, epoch, first + k))
    return loss * n, count_correct(a, ys)


def _rate(run: _Run, epoch: int, i: int) -> float:
    """The learning rate of batch ``i`` of ``epoch``: warming up, scheduled, or the optimiser's."""
    step, warm = epoch * run.steps_per_epoch + i, run.warmup_steps
    if step < warm:
        return run.base_lr * (step + 1) / warm  # α_s = α (s + 1)/W during the warm-up
    if run.factor is None:
        return run.base_lr if warm else run.opt.lr
    return run.base_lr * run.factor(step - warm, run.total_steps - warm)  # the schedule, after it


def _end_epoch(net: Network, run: _Run, epoch: int, row: dict[str, Any], history: dict[str, list[Any]],
               tracker: EarlyStopping) -> bool:
    """Validate, append the row to the history, update the tracker; True to stop early."""
    stop = False
    if run.x_val is not None:
        scores = net.evaluate(run.x_val, run.t_val)
        row["val_loss"], row["val_accuracy"] = scores["loss"], scores["accuracy"]
        stop = tracker.update(epoch + 1, row, net.params, net.state)
        net.metadata["_selection"] = tracker.state()
        net.best_params, net.best_state = tracker.best_params, tracker.best_state
    for key, value in row.items():
        history[key].append(value)
    net.metadata["epochs_trained"] = epoch + 1
    return stop


def _diverged(net: Network, opt: Optimizer, saved: _Saved, what: str,
              epoch: int, batch: int, rate: float | None = None) -> None:
    """Roll back to the start of the epoch and raise :class:`DivergenceError` (``rate``: the
    learning rate of that batch, default the optimiser's now)."""
    rate = opt.lr if rate is None else rate
    saved.restore(net, opt)
    kept = f"the weights from the end of epoch {epoch}" if epoch else "the initial weights"
    raise DivergenceError(
        f"{what} at epoch {epoch + 1}, batch {batch + 1}: training stopped and {kept} were "
        f"kept; try a smaller learning rate (it was {rate:g})"
    )


# --- small helpers ------------------------------------------------------------------------------


def _progress_bar(total: int) -> Any:
    from ._progress import Bar

    return Bar(total, unit="samples")  # on a terminal; nothing into a file or a pipe


@contextlib.contextmanager
def _blas_threads(threads: int | None) -> Iterator[None]:
    """numpynn's layers on ``threads`` threads (None: as set) and BLAS on one thread inside
    the block: the shards of a batch are numpynn's to spread (BLAS's own threading would make
    a product's bits depend on the thread count). Without threadpoolctl BLAS keeps its threads."""
    with _parallel.using(threads), _parallel.blas_threads(1):
        yield
