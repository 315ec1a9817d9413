"""The network: forward pass, the δ recursion, gradients, and training.

Row layout throughout: ``x`` is (B, n_in), one sample per row.

Forward, layer by layer (l = 1 … L):
    z_l = a_{l−1} @ W_l + b_l,   a_l = σ_l(z_l),   a_0 = x

Backward (C is the mean loss over the batch):
    δ_L = ∇_a C ⊙ σ'_L(z_L)                  (softmax + cross-entropy: δ_L = (a_L − y)/B)
    ∇W_l = a_{l−1}ᵀ @ δ_l,   ∇b_l = Σ_rows δ_l
    δ_{l−1} = (δ_l @ W_lᵀ) ⊙ σ'_{l−1}(z_{l−1})

Update: θ ← θ − α ∇θ (SGD) or a better optimiser, over one flat vector θ that
holds every W_l and b_l.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from . import losses, optimizers
from .errors import DivergenceError
from .layers import Dense
from .losses import Loss
from .optimizers import Optimizer

Array = np.ndarray
Callback = Callable[[int, dict[str, Any]], Any]
PIXEL_SCALE = 1.0 / 255.0


class TrainingInterrupted(KeyboardInterrupt):
    """Raised by :meth:`Network.fit` on Ctrl-C after rolling the network and the
    optimiser back to the end of the last completed epoch (``epochs_done``), so
    that a checkpoint written then resumes exactly."""

    def __init__(self, epochs_done: int, history: dict[str, list[Any]]) -> None:
        super().__init__(f"training interrupted after {epochs_done} complete epochs")
        self.epochs_done = epochs_done
        self.history = history


class Network:
    """A feed-forward network of :class:`~numpynn.layers.Dense` layers.

    >>> import numpynn as nn
    >>> net = nn.Network([nn.Dense(2, 2, "sigmoid"), nn.Dense(2, 1, "sigmoid")],
    ...                  loss="squared_error", seed=0)
    >>> net.sizes
    [2, 2, 1]

    Parameters
    ----------
    layers:
        Dense layers; each layer's ``n_in`` must equal the previous ``n_out``.
    loss:
        ``"cross_entropy"`` (softmax or sigmoid output) or ``"squared_error"``.
    seed:
        Seeds the initial weights and, by default, the mini-batch order of
        :meth:`fit`: the same seed gives the same network and the same
        training, bit for bit.
    dtype:
        ``"float32"`` (default, fast) or ``"float64"`` (for checks).
    """

    def __init__(
        self,
        layers: Sequence[Dense],
        loss: str | Loss = "cross_entropy",
        seed: int | None = 0,
        dtype: str | np.dtype = "float32",
    ) -> None:
        layers = list(layers)
        if not layers:
            raise ValueError("a network needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Dense):
                raise TypeError(f"layer {i} is a {type(layer).__name__}, not a numpynn.Dense")
        for i in range(1, len(layers)):
            if layers[i].n_in != layers[i - 1].n_out:
                raise ValueError(
                    f"layer {i} expects {layers[i].n_in} inputs but layer {i - 1} "
                    f"gives {layers[i - 1].n_out} outputs"
                )
        for i, layer in enumerate(layers[:-1]):
            if not layer.activation.elementwise:
                raise ValueError(
                    f"layer {i} uses {layer.activation.name}, which only suits the output layer"
                )
        if layers[-1].n_out == 1 and not layers[-1].activation.elementwise:
            raise ValueError("a softmax over a single output is always 1: use a sigmoid output instead")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, not {dtype!r}")
        self.layers = layers
        self.loss = losses.get(loss)
        self.loss.check_output(layers[-1].activation)
        self.seed = seed
        self.metadata: dict[str, Any] = {}  # training facts, saved with the model
        self.optimizer: Optimizer | None = None  # the optimiser of the last fit, to continue with
        # θ: every layer's W and b as views into one flat vector; g: ∇θ likewise
        self.params = np.empty(sum(layer.n_params for layer in layers), self.dtype)
        self.grads = np.zeros_like(self.params)
        rng = np.random.default_rng(seed)
        offset = 0
        for layer in layers:
            end = offset + layer.n_params
            layer.bind(self.params[offset:end], self.grads[offset:end], rng)
            offset = end

    # --- shape facts ------------------------------------------------------------------
    @property
    def sizes(self) -> list[int]:
        """Layer widths, inputs first: e.g. ``[784, 128, 64, 10]``."""
        return [self.layers[0].n_in] + [layer.n_out for layer in self.layers]

    @property
    def n_in(self) -> int:
        return self.layers[0].n_in

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out

    @property
    def n_params(self) -> int:
        return int(self.params.size)

    # --- inputs and targets -----------------------------------------------------------
    def _check_x(self, x: Any, name: str = "x") -> Array:
        """Validate inputs (n, n_in). uint8 arrays are kept as they are (pixels,
        scaled to [0, 1] batch by batch); anything else becomes ``self.dtype``."""
        x = np.asarray(x)
        if x.ndim == 1 and x.size == self.n_in:
            x = x.reshape(1, -1)
        if x.ndim != 2:
            raise ValueError(
                f"{name} must be a 2-D array (samples, {self.n_in} features), not shape {x.shape}"
            )
        if x.shape[1] != self.n_in:
            raise ValueError(
                f"{name} has {x.shape[1]} features per row but the first layer expects {self.n_in}"
            )
        if x.shape[0] == 0:
            raise ValueError(f"{name} has no rows")
        if x.dtype == np.uint8:
            return x
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be numeric, not {x.dtype}")
        x = x.astype(self.dtype, copy=False)
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name} contains NaN or infinite values")
        return x

    def _as_float(self, xb: Array, out: Array | None = None) -> Array:
        """A batch as ``self.dtype``: uint8 pixels are scaled by 1/255."""
        if xb.dtype == np.uint8:
            if out is None:
                out = np.empty(xb.shape, self.dtype)
            return np.multiply(xb, self.dtype.type(PIXEL_SCALE), out=out)
        return xb

    def targets(self, y: Any, n: int | None = None, name: str = "y") -> Array:
        """Target rows (n, n_out) in ``self.dtype`` from integer labels (n,) or rows.

        Labels become one-hot rows; a 1-D ``y`` for a single-output network is
        one column.
        """
        y = np.asarray(y)
        if n is not None and (y.ndim == 0 or y.shape[0] != n):
            got = "a scalar" if y.ndim == 0 else f"{y.shape[0]} rows"
            raise ValueError(f"{name} has {got} but x has {n}")
        if y.ndim == 1 and self.n_out > 1:
            if y.dtype.kind not in "iu":
                if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
                    y = y.astype(np.int64)
                else:
                    raise ValueError(f"{name} must hold integer class labels 0..{self.n_out - 1}")
            if y.size and (y.min() < 0 or y.max() >= self.n_out):
                bad = y[(y < 0) | (y >= self.n_out)][0]
                raise ValueError(
                    f"{name} holds label {bad}, outside 0..{self.n_out - 1} for {self.n_out} outputs"
                )
            rows = np.zeros((y.shape[0], self.n_out), self.dtype)
            rows[np.arange(y.shape[0]), y] = 1
            return rows
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        if y.ndim != 2 or y.shape[1] != self.n_out:
            raise ValueError(
                f"{name} must be labels (n,) or rows (n, {self.n_out}), not shape {y.shape}"
            )
        if y.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be numeric, not {y.dtype}")
        y = y.astype(self.dtype, copy=False)
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{name} contains NaN or infinite values")
        if self.loss.name == "cross_entropy" and not self.layers[-1].activation.elementwise:
            if not np.allclose(y.sum(axis=1), 1.0, atol=1e-3):
                raise ValueError(
                    f"{name}: cross-entropy with a softmax output needs target rows that sum to 1 "
                    "(one-hot rows or probabilities), or integer labels"
                )
        return y

    # --- forward and backward ------------------------------------------------------
    def forward(self, x: Array) -> Array:
        """a_L for a batch x (B, n_in) -> (B, n_out); keeps every layer's z and a.

        Returns the output layer's reusable buffer (copy it to keep it).
        """
        a = x if isinstance(x, np.ndarray) and x.dtype == self.dtype else self._as_float(
            self._check_x(x)
        )
        for layer in self.layers:
            a = layer.forward(a)  # z_l = a_{l−1} W_l + b_l,  a_l = σ(z_l)
        return a

    def backward(self, x: Array, y: Array) -> None:
        """Fill ``self.grads`` (every ∇W_l, ∇b_l) after :meth:`forward` on ``x``.

        x (B, n_in) in ``self.dtype``; y target rows (B, n_out).
        """
        out = self.layers[-1]
        delta = self.loss.output_delta(out.z, out.a, y, out.activation)  # δ_L
        self._backpropagate(delta, x)

    def _backpropagate(self, delta: Array, x: Array, to_input: bool = False) -> Array | None:
        """The δ recursion from the output layer's δ_L down to the first layer,
        writing every ∇W_l and ∇b_l; with ``to_input`` also returns ∂C/∂x = δ_1 W_1ᵀ."""
        g = None
        for l in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[l]
            a_prev = x if l == 0 else self.layers[l - 1].a
            # ∇W_l = a_{l−1}ᵀ δ_l,  ∇b_l = Σ_rows δ_l,  g = δ_l W_lᵀ
            g = layer.backward(delta, a_prev, input_grad=l > 0 or to_input)
            if l > 0:
                assert g is not None
                below = self.layers[l - 1]
                # δ_{l−1} = (δ_l W_lᵀ) ⊙ σ'(z_{l−1})
                delta = below.activation.delta(g, below.z, below.a)
        return g

    def input_gradient(self, x: Any, grad_output: Any) -> Array:
        """Backpropagate ``grad_output`` = ∂f/∂a_L (B, n_out) to the inputs: ∂f/∂x (B, n_in).

        For example the saliency of class c, ∂ log p_c / ∂x, is
        ``net.input_gradient(x, e_c / p_c)``. The parameter gradients of ``f``
        are left in ``self.grads`` as a side effect.
        """
        x = self._as_float(self._check_x(x))
        out = self.forward(x)
        grad = np.array(grad_output, dtype=self.dtype).reshape(out.shape)
        last = self.layers[-1]
        delta = last.activation.delta(grad, last.z, last.a)  # δ_L = ∂f/∂a_L ⊙ σ'(z_L)
        g = self._backpropagate(delta, x, to_input=True)
        assert g is not None
        return g.copy()

    def _batch_loss(self, y: Array) -> float:
        out = self.layers[-1]
        return self.loss.value(out.z, out.a, y, out.activation)

    def gradients(self, x: Any, y: Any) -> tuple[float, list[tuple[Array, Array]]]:
        """The mean loss on (x, y) and its gradients ``[(∇W_l, ∇b_l), …]``, one
        pair per layer (copies, shapes of W_l and b_l)."""
        x = self._as_float(self._check_x(x))
        y = self.targets(y, x.shape[0])
        self.forward(x)
        loss = self._batch_loss(y)
        self.backward(x, y)
        return loss, [(layer.dW.copy(), layer.db.copy()) for layer in self.layers]

    # --- inference ------------------------------------------------------------------
    def _batches(self, x: Array, batch_size: int) -> Iterator[tuple[slice, Array]]:
        buf = None
        for start in range(0, x.shape[0], batch_size):
            sl = slice(start, min(start + batch_size, x.shape[0]))
            xb = x[sl]
            if xb.dtype == np.uint8:
                if buf is None:
                    buf = np.empty((min(batch_size, x.shape[0]), self.n_in), self.dtype)
                xb = self._as_float(xb, buf[: xb.shape[0]])
            yield sl, xb

    def predict(self, x: Any, batch_size: int = 4096) -> Array:
        """Outputs a_L for every row of x: (n, n_in) -> (n, n_out); for a
        softmax output, class probabilities. uint8 inputs are pixels 0..255."""
        x = self._check_x(x)
        out = np.empty((x.shape[0], self.n_out), self.dtype)
        for sl, xb in self._batches(x, batch_size):
            out[sl] = self.forward(xb)
        return out

    def classify(self, x: Any, batch_size: int = 4096) -> Array:
        """Predicted classes (n,): the arg-max output, or output > ½ for one output."""
        return _classes(self.predict(x, batch_size))

    def evaluate(self, x: Any, y: Any, batch_size: int = 4096) -> dict[str, float]:
        """``{"loss": mean loss, "accuracy": fraction correct}`` on (x, y)."""
        x = self._check_x(x)
        t = self.targets(y, x.shape[0])
        loss_sum = 0.0
        correct = 0
        for sl, xb in self._batches(x, batch_size):
            self.forward(xb)
            loss_sum += self._batch_loss(t[sl]) * (sl.stop - sl.start)
            correct += _count_correct(self.layers[-1].a, t[sl])
        n = x.shape[0]
        return {"loss": loss_sum / n, "accuracy": correct / n}

    def confusion_matrix(self, x: Any, y: Any) -> Array:
        """Counts (k, k): row = true class, column = predicted class."""
        x = self._check_x(x)
        true = _classes(self.targets(y, x.shape[0]))
        pred = self.classify(x)
        k = max(self.n_out, 2)
        return np.bincount(true * k + pred, minlength=k * k).reshape(k, k)

    # --- training ------------------------------------------------------------------
    def fit(
        self,
        x: Any,
        y: Any,
        epochs: int = 10,
        batch_size: int = 64,
        optimizer: str | Optimizer | None = None,
        validation: tuple[Any, Any] | None = None,
        progress: bool = True,
        *,
        shuffle: bool = True,
        seed: int | None = None,
        schedule: str | Callable[[int, int], float] | None = None,
        augment: Callable[[Array, np.random.Generator], Array] | None = None,
        initial_epoch: int = 0,
        callback: Callback | None = None,
        threads: int | None = None,
    ) -> dict[str, list[Any]]:
        """Train with mini-batch gradient descent; returns the history.

        Parameters
        ----------
        x, y:
            Inputs (n, n_in) and targets: labels (n,) or rows (n, n_out).
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
        progress:
            Show a progress bar per epoch (on a terminal; never into a file or pipe).
        shuffle, seed:
            Epoch ``e`` visits the rows in the order ``default_rng([seed, e])``
            draws (seed defaults to the network's), so a run resumed at any
            epoch boundary matches an uninterrupted one exactly.
        schedule:
            ``None`` (constant rate), ``"cosine"`` (the rate decays from the
            optimiser's ``lr`` to 0 along half a cosine over all steps), or
            ``f(step, total_steps) -> factor`` multiplying the base rate.
        augment:
            ``f(x_batch, rng) -> x_batch`` applied to each float batch, e.g.
            :func:`numpynn.augment.random_shift`.
        initial_epoch:
            Resume at this epoch (with the optimiser state of that moment).
        callback:
            ``f(epoch, logs)`` called after each epoch with that epoch's row of
            the history (1-based ``epoch``); returning ``True`` stops training.
        threads:
            BLAS threads while training; default 1 for batches up to 128
            (faster for small matrices), else unchanged.

        Returns
        -------
        dict of per-epoch lists: ``epoch``, ``loss``, ``accuracy`` (both
        averaged over the epoch's batches), ``lr``, ``seconds`` and, with
        validation data, ``val_loss`` and ``val_accuracy``.
        """
        _check_count(epochs, "epochs", minimum=1)
        _check_count(batch_size, "batch_size", minimum=1)
        _check_count(initial_epoch, "initial_epoch", minimum=0)
        x = self._check_x(x)
        t = self.targets(y, x.shape[0])
        if validation is not None:
            try:
                x_val, y_val = validation
            except (TypeError, ValueError):
                raise ValueError("validation must be a pair (x_val, y_val)") from None
            x_val = self._check_x(x_val, "x_val")
            t_val = self.targets(y_val, x_val.shape[0], "y_val")
        opt = optimizers.get(self.optimizer if optimizer is None else optimizer)
        factor = _schedule(schedule)
        base_lr = float(self.metadata.get("_base_lr", opt.initial_lr)) if initial_epoch else opt.initial_lr
        seed = self.seed if seed is None else seed
        n = x.shape[0]
        batch_size = min(batch_size, n)
        steps_per_epoch = math.ceil(n / batch_size)
        total_steps = epochs * steps_per_epoch
        history: dict[str, list[Any]] = {"epoch": [], "loss": [], "accuracy": [], "lr": [],
                                         "seconds": []}
        if validation is not None:
            history["val_loss"], history["val_accuracy"] = [], []
        # reusable batch buffers: no copy of the data set per epoch
        xbuf = np.empty((batch_size, self.n_in), x.dtype)
        fbuf = np.empty((batch_size, self.n_in), self.dtype) if x.dtype == np.uint8 else None
        ybuf = np.empty((batch_size, self.n_out), self.dtype)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            # disable=None: a bar on a terminal, silence when the output is a file or a pipe
            bar = tqdm(total=n, unit="sample", unit_scale=True, leave=False, dynamic_ncols=True,
                       disable=None)
        everything = np.arange(n)
        epoch = initial_epoch
        saved = (self.params.copy(), opt.state_dict())
        blas = _blas_threads(threads if threads is not None else (1 if batch_size <= 128 else None))
        # overflow on the way to a NaN loss is caught below and reported as divergence
        with blas, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            try:
                for epoch in range(initial_epoch, epochs):
                    saved = (self.params.copy(), opt.state_dict())  # the last good state
                    started = time.perf_counter()
                    rng = np.random.default_rng([seed if seed is not None else 0, epoch])
                    order = rng.permutation(n) if shuffle else everything
                    if bar is not None:
                        bar.reset(total=n)
                        bar.set_description(f"epoch {epoch + 1}/{epochs}")
                    loss_sum, correct = 0.0, 0
                    for i, start in enumerate(range(0, n, batch_size)):
                        idx = order[start : start + batch_size]
                        B = idx.shape[0]
                        xb = np.take(x, idx, axis=0, out=xbuf[:B])  # gather the batch
                        if fbuf is not None:
                            xb = self._as_float(xb, fbuf[:B])
                        if augment is not None:
                            xb = augment(xb, rng)
                        yb = np.take(t, idx, axis=0, out=ybuf[:B])
                        if factor is not None:
                            opt.lr = base_lr * factor(epoch * steps_per_epoch + i, total_steps)
                        self.forward(xb)
                        loss = self._batch_loss(yb)
                        if not math.isfinite(loss):
                            self._diverged(saved, opt, f"loss became {loss}", epoch, i)
                        self.backward(xb, yb)
                        opt.step(self.params, self.grads)
                        loss_sum += loss * B
                        correct += _count_correct(self.layers[-1].a, yb)
                        if bar is not None:
                            bar.update(B)
                    if not np.isfinite(self.params).all():  # the epoch's last step overflowed
                        self._diverged(saved, opt, "the weights overflowed", epoch, i)
                    row: dict[str, Any] = {
                        "epoch": epoch + 1,
                        "loss": loss_sum / n,
                        "accuracy": correct / n,
                        "lr": opt.lr,
                        "seconds": time.perf_counter() - started,
                    }
                    if validation is not None:
                        scores = self.evaluate(x_val, t_val)
                        row["val_loss"], row["val_accuracy"] = scores["loss"], scores["accuracy"]
                    for key, value in row.items():
                        history[key].append(value)
                    self.metadata["_base_lr"] = base_lr
                    self.metadata["epochs_trained"] = epoch + 1
                    if callback is not None and callback(epoch + 1, row) is True:
                        break
            except KeyboardInterrupt:
                self.params[...] = saved[0]
                opt.load_state_dict(saved[1])
                raise TrainingInterrupted(epoch, history) from None
            finally:
                if bar is not None:
                    bar.close()
        self.optimizer = opt
        return history

    def _diverged(self, saved: tuple[Array, dict[str, Any]], opt: Optimizer, what: str,
                  epoch: int, batch: int) -> None:
        """Roll back to the start of the epoch and raise :class:`DivergenceError`."""
        self.params[...] = saved[0]
        opt.load_state_dict(saved[1])
        kept = f"the weights from the end of epoch {epoch}" if epoch else "the initial weights"
        raise DivergenceError(
            f"{what} at epoch {epoch + 1}, batch {batch + 1}: training stopped and {kept} were "
            f"kept; try a smaller learning rate (it was {opt.lr:g})"
        )

    # --- conveniences --------------------------------------------------------------
    def copy(self, dtype: str | np.dtype | None = None) -> Network:
        """An independent copy, optionally in another dtype (e.g. float64 for checks)."""
        clone = Network(
            [Dense(l.n_in, l.n_out, l.activation, W=l.W, b=l.b, init=l.init) for l in self.layers],
            loss=self.loss,
            seed=self.seed,
            dtype=self.dtype if dtype is None else dtype,
        )
        clone.metadata = dict(self.metadata)
        return clone

    def save(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        """Write the network to a safetensors file (atomically); see :mod:`numpynn.serialization`."""
        from .serialization import save

        save(self, path, metadata=metadata)

    def summary(self) -> str:
        """A table of layers, shapes, activations and parameter counts."""
        from ._tables import table

        rows = [[i, f"{l.n_in} -> {l.n_out}", l.activation.name, f"{l.n_in * l.n_out:,}",
                 f"{l.n_out:,}", f"{l.n_params:,}"] for i, l in enumerate(self.layers)]
        return table(["layer", "shape", "activation", "W", "b", "params"], rows,
                     right=(0, 3, 4, 5),
                     footer=f"{self.n_params:,} parameters ({self.dtype}), loss {self.loss.name}")

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Network([{inner}], loss={self.loss.name!r}, dtype={self.dtype.name!r})"


def _classes(rows: Array) -> Array:
    """The class of each row of outputs or targets (B, k): the arg-max, or > ½ for one column."""
    if rows.shape[1] == 1:
        return (rows[:, 0] > 0.5).astype(np.int64)
    return rows.argmax(axis=1)


def _count_correct(a: Array, y: Array) -> int:
    """How many rows of the output a (B, k) pick the class of the target rows y."""
    return int(np.count_nonzero(_classes(a) == _classes(y)))


def _check_count(value: Any, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        kind = "positive" if minimum > 0 else "non-negative"
        raise ValueError(f"{name} must be a {kind} whole number, not {value!r}")


def _schedule(schedule: str | Callable[[int, int], float] | None) -> Callable[[int, int], float] | None:
    if schedule is None or schedule == "constant":
        return None
    if schedule == "cosine":
        return lambda step, total: 0.5 * (1.0 + math.cos(math.pi * step / total))
    if callable(schedule):
        return schedule
    raise ValueError(f"unknown schedule {schedule!r}: use 'constant', 'cosine' or a function")


@contextlib.contextmanager
def _blas_threads(n: int | None) -> Iterator[None]:
    """Limit BLAS threads inside the block (needs threadpoolctl; else a no-op)."""
    if n is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield
