"""The network: a list of layers over one flat parameter vector θ.

Row layout throughout: ``x`` is (B, *input_shape), one sample per row.

Forward, layer by layer (l = 1 … L):  y_l = f_l(y_{l−1}),  y_0 = x
    (Dense: z_l = a_{l−1} @ W_l + b_l,  a_l = σ_l(z_l))

Backward (C is the mean loss over the batch), each layer's own chain rule in turn:
    ∂C/∂y_L from the loss        (softmax/sigmoid + cross-entropy: δ_L = (a_L − y)/B directly)
    ∂C/∂y_{l−1} = layer_l.backward(∂C/∂y_l),  which also writes ∇θ_l
    (Dense: δ_l = ∂C/∂a_l ⊙ σ'(z_l),  ∇W_l = a_{l−1}ᵀ δ_l,  ∇b_l = Σ_rows δ_l,  ∂C/∂a_{l−1} = δ_l W_lᵀ)

Update: θ ← θ − α ∇θ (SGD) or a better optimiser, over one flat vector θ of
which every layer's parameters are views. Training itself (epochs, batches,
schedules, early stopping) lives in :mod:`numpynn.training`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from . import losses
from ._shortcuts import get as _shortcut
from .activations import Activation, Identity
from .layers import Layer, build_layers, walk
from .layers.tree import lay_out
from .losses import Loss
from .metrics import PIXEL_SCALE, classes, count_correct

Array = np.ndarray

class Network:
    """A feed-forward network: layers applied in order, over one flat θ.

    >>> import numpynn as nn
    >>> net = nn.Network([nn.Dense(2, 2, "sigmoid"), nn.Dense(2, 1, "sigmoid")],
    ...                  loss="squared_error", seed=0)
    >>> net.sizes
    [2, 2, 1]

    Parameters
    ----------
    layers:
        :class:`~numpynn.layers.Layer` objects (Dense, Dropout, Flatten,
        Reshape, your own); each is built for the output shape of the one before.
    loss:
        ``"cross_entropy"`` (softmax or sigmoid output) or ``"squared_error"``.
    input_shape:
        The shape of one sample, without the batch axis; taken from the first
        layer when it implies one (``Dense(784, …)``: ``(784,)``).
    seed:
        Seeds the initial weights and, by default, the mini-batch order and
        dropout masks of :meth:`fit`: the same seed gives the same network and
        the same training, bit for bit.
    dtype:
        ``"float32"`` (default, fast) or ``"float64"`` (for checks).
    params:
        Optional flat initial θ (``n_params``,), e.g. from a file; otherwise
        every layer's parameters are drawn from ``seed``.
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        loss: str | Loss = "cross_entropy",
        input_shape: Sequence[int] | int | None = None,
        seed: int | None = 0,
        dtype: str | np.dtype = "float32",
        params: Array | None = None,
        state: Array | None = None,
    ) -> None:
        layers = list(layers)
        if not layers:
            raise ValueError("a network needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {i} is a {type(layer).__name__}, not a numpynn Layer")
        seen: dict[int, str] = {}
        for path, layer in walk(layers):
            if id(layer) in seen:
                raise ValueError(f"{path} appears twice (it is the layer object of {seen[id(layer)]} "
                                 "too): make a new layer object for each place")
            seen[id(layer)] = path
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, not {dtype!r}")
        self.input_shape = _input_shape(layers[0], input_shape)
        self.output_shape = build_layers(layers, self.input_shape)
        if len(self.output_shape) != 1:
            raise ValueError(f"the last layer gives outputs of shape {self.output_shape} per sample: "
                             "a network ends in one row of outputs (add Flatten() and a Dense layer)")
        for i, layer in enumerate(layers[:-1]):
            act = getattr(layer, "activation", None)
            if isinstance(act, Activation) and not act.elementwise:
                raise ValueError(f"layer {i} uses {act.name}, which only suits the output layer")
        self.layers = layers
        self.loss = losses.get(loss)
        # An output layer that ends in an activation σ_L (Dense) keeps z_L and a_L and takes
        # δ_L = ∂C/∂z_L in backward_delta: the loss reads z_L (a stable log) and may fuse with σ_L.
        last = layers[-1]
        self._head: Any = last if hasattr(last, "backward_delta") else None
        self._activation: Activation = self._head.activation if self._head is not None else Identity()
        if self.n_out == 1 and not self._activation.elementwise:
            raise ValueError("a softmax over a single output is always 1: use a sigmoid output instead")
        self.loss.check_output(self._activation)
        self._fused = self._head is not None and self.loss.fuses_with(self._activation)
        self._output: Array = np.empty((0, self.n_out), self.dtype)  # of the last forward pass
        self.seed = seed
        self.metadata: dict[str, Any] = {}  # training facts, saved with the model
        self.optimizer: Any = None  # the optimiser of the last fit, to continue with
        # θ of the best epoch so far while training with restore_best (checkpoints keep it)
        self.best_params: Array | None = None
        self.best_state: Array | None = None  # and its state, when the network has any
        # θ: every layer's parameters (nested ones too, depth first) as views into one flat
        # vector; ∇θ likewise. State that is not a parameter lies in a flat vector of its own.
        self.params, self.grads, self.state = lay_out(layers, self.dtype, seed, params, state)
        # ∂C/∂x of a layer is only needed when some layer below it has parameters
        below = 0
        for layer in layers:
            layer.needs_input_grad = below > 0
            below += layer.n_params
        self.reseed(0)

    # --- shape facts ------------------------------------------------------------------
    @property
    def sizes(self) -> list[int]:
        """Values per sample after each layer, inputs first: e.g. ``[784, 128, 64, 10]``."""
        return [self.n_in] + [math.prod(layer.output_shape) for layer in self.layers]

    @property
    def n_in(self) -> int:
        """Input values per sample."""
        return math.prod(self.input_shape)

    @property
    def n_out(self) -> int:
        return self.output_shape[0]

    def walk(self) -> list[tuple[str, Layer]]:
        """Every layer of the tree with its path, depth first: ``[("layers.0", …), ("layers.1", block),
        ("layers.1.layers.0", …), …]``; the order of θ and of the model file's tensors."""
        return list(walk(self.layers))

    @property
    def n_params(self) -> int:
        return int(self.params.size)

    def reseed(self, epoch: int, seed: int | None = None) -> None:
        """Give every layer a generator seeded from (seed, epoch, layer index), e.g.
        for dropout masks; :func:`~numpynn.training.fit` calls it at each epoch."""
        seed = self.seed if seed is None else seed
        for i, (_, layer) in enumerate(walk(self.layers)):  # i: the layer's place in the tree
            layer.rng = np.random.default_rng([seed if seed is not None else 0, epoch, _LAYER_STREAM, i])

    # --- inputs and targets -----------------------------------------------------------
    def check_inputs(self, x: Any, name: str = "x") -> Array:
        """Validate inputs (n, *input_shape). uint8 arrays are kept as they are (pixels,
        scaled to [0, 1] batch by batch); anything else becomes ``self.dtype``."""
        x = np.asarray(x)
        shape = self.input_shape
        if x.shape == shape:  # one sample
            x = x.reshape(1, *shape)
        if len(shape) == 1:
            if x.ndim != 2:
                raise ValueError(
                    f"{name} must be a 2-D array (samples, {self.n_in} features), not shape {x.shape}"
                )
            if x.shape[1] != self.n_in:
                raise ValueError(
                    f"{name} has {x.shape[1]} features per row but the first layer expects {self.n_in}"
                )
        elif x.shape[1:] != shape:
            raise ValueError(f"{name} must have shape (samples, {', '.join(map(str, shape))}), "
                             f"not {x.shape}")
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

    def as_float(self, xb: Array, out: Array | None = None) -> Array:
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
        if self.loss.name == "cross_entropy" and not self._activation.elementwise:
            if not np.allclose(y.sum(axis=1), 1.0, atol=1e-3):
                raise ValueError(
                    f"{name}: cross-entropy with a softmax output needs target rows that sum to 1 "
                    "(one-hot rows or probabilities), or integer labels"
                )
        return y

    # --- forward and backward ------------------------------------------------------
    def forward(self, x: Array, training: bool = False) -> Array:
        """The output for a batch x (B, *input_shape) -> (B, n_out); every layer keeps
        what its backward needs. ``training`` turns on dropout and the like.

        Returns the output layer's reusable buffer (copy it to keep it).
        """
        y = x if isinstance(x, np.ndarray) and x.dtype == self.dtype else self.as_float(
            self.check_inputs(x)
        )
        for layer in self.layers:
            y = layer.forward(y, training)  # y_l = f_l(y_{l−1})
        self._output = y
        return y

    def backward(self, y: Array) -> None:
        """Fill ``self.grads`` (every layer's ∇θ_l) after :meth:`forward`; y: target rows (B, n_out)."""
        out = self.layers[-1]
        if self._fused:  # δ_L = (a_L − y)/B: the loss and σ_L fuse
            grad = self._head.backward_delta(self.loss.output_delta(out.z, out.a, y, self._activation))
        else:  # ∂C/∂a_L from the loss; the layer applies its own σ'
            grad = out.backward(self.loss.grad_a(self._output, y))
        for layer in reversed(self.layers[:-1]):
            grad = layer.backward(grad)  # ∂C/∂y_{l−1} = layer_l's chain rule applied to ∂C/∂y_l

    def input_gradient(self, x: Any, grad_output: Any) -> Array:
        """Backpropagate ``grad_output`` = ∂f/∂a_L (B, n_out) to the inputs: ∂f/∂x (B, *input_shape).

        For example the saliency of class c, ∂ log p_c / ∂x, is
        ``net.input_gradient(x, e_c / p_c)``. The parameter gradients of ``f``
        are left in ``self.grads`` as a side effect.
        """
        x = self.as_float(self.check_inputs(x))
        out = self.forward(x)
        grad = np.array(grad_output, dtype=self.dtype).reshape(out.shape)
        needed = [layer.needs_input_grad for layer in self.layers]
        try:
            for layer in reversed(self.layers):
                layer.needs_input_grad = True
                grad = layer.backward(grad)  # ∂f/∂y_{l−1} from ∂f/∂y_l, down to ∂f/∂x
        finally:
            for layer, flag in zip(self.layers, needed, strict=True):
                layer.needs_input_grad = flag
        return np.array(grad)

    def _batch_loss(self, y: Array) -> float:
        """The mean loss of the last forward pass against target rows y."""
        return self.loss_of(*self.last_pass(), y)

    def last_pass(self) -> tuple[Array, Array]:
        """(z_L, a_L) of the last forward pass: what the loss reads (z_L for a stable log;
        the output itself when the last layer keeps no z)."""
        return (self._head.z if self._head is not None else self._output), self._output

    def loss_of(self, z: Array, a: Array, y: Array) -> float:
        """The mean loss of outputs (z_L, a_L) against target rows y."""
        return self.loss.value(z, a, y, self._activation)

    def gradients(self, x: Any, y: Any, training: bool = True) -> tuple[float, list[tuple[Array, ...]]]:
        """The mean loss on (x, y) and its gradients, one tuple per top-level layer in the
        order of its parameters: ``(∇W_l, ∇b_l)`` for Dense, ``()`` for a layer
        without parameters, a tuple of its children's tuples for a block (copies).
        ``training`` as in a training step (dropout on, with masks from each layer's
        ``rng``; batch normalization on the batch's statistics, updating its running ones)."""
        x = self.as_float(self.check_inputs(x))
        y = self.targets(y, x.shape[0])
        self.forward(x, training)
        loss = self._batch_loss(y)
        self.backward(y)
        return loss, [_grads(layer) for layer in self.layers]

    # --- inference ------------------------------------------------------------------
    @property
    def inference_batch(self) -> int:
        """Rows per forward pass in predict and evaluate (when not given): 4,096, or fewer
        when a layer's output is large (a convolution's feature maps), so that the widest
        layer's output for a batch stays under about 2M values (8 MB in float32)."""
        widest = max(math.prod(layer.output_shape) for layer in self.layers)
        return max(16, min(4096, 2**21 // widest))

    def _batches(self, x: Array, batch_size: int | None) -> Iterator[tuple[slice, Array]]:
        batch_size = batch_size or self.inference_batch
        buf = None
        for start in range(0, x.shape[0], batch_size):
            sl = slice(start, min(start + batch_size, x.shape[0]))
            xb = x[sl]
            if xb.dtype == np.uint8:
                if buf is None:
                    buf = np.empty((min(batch_size, x.shape[0]), *self.input_shape), self.dtype)
                xb = self.as_float(xb, buf[: xb.shape[0]])
            yield sl, xb

    def predict(self, x: Any, batch_size: int | None = None) -> Array:
        """Outputs a_L for every row of x: (n, *input_shape) -> (n, n_out); for a
        softmax output, class probabilities. uint8 inputs are pixels 0..255."""
        x = self.check_inputs(x)
        out = np.empty((x.shape[0], self.n_out), self.dtype)
        for sl, xb in self._batches(x, batch_size):
            out[sl] = self.forward(xb)
        return out

    def classify(self, x: Any, batch_size: int | None = None) -> Array:
        """Predicted classes (n,): the arg-max output, or output > ½ for one output."""
        return classes(self.predict(x, batch_size))

    def evaluate(self, x: Any, y: Any, batch_size: int | None = None) -> dict[str, float]:
        """``{"loss": mean loss, "accuracy": fraction correct}`` on (x, y)."""
        x = self.check_inputs(x)
        t = self.targets(y, x.shape[0])
        loss_sum = 0.0
        correct = 0
        for sl, xb in self._batches(x, batch_size):
            out = self.forward(xb)
            loss_sum += self._batch_loss(t[sl]) * (sl.stop - sl.start)
            correct += count_correct(out, t[sl])
        n = x.shape[0]
        return {"loss": loss_sum / n, "accuracy": correct / n}

    def confusion_matrix(self, x: Any, y: Any) -> Array:
        """Counts (k, k): row = true class, column = predicted class."""
        x = self.check_inputs(x)
        true = classes(self.targets(y, x.shape[0]))
        pred = self.classify(x)
        k = max(self.n_out, 2)
        return np.bincount(true * k + pred, minlength=k * k).reshape(k, k)

    # --- training ------------------------------------------------------------------
    def fit(self, x: Any, y: Any, epochs: int = 10, batch_size: int = 64, optimizer: Any = None,
            validation: tuple[Any, Any] | None = None, progress: bool = True,
            **options: Any) -> dict[str, list[Any]]:
        """Train with mini-batch gradient descent; returns the history.

        The same as ``numpynn.training.fit(net, x, y, ...)``; see there for
        every option (``validation_split``, ``early_stopping``, ``schedule``,
        ``augment``, ``initial_epoch``, ``callback``, ...).
        """
        return _shortcut("fit")(self, x, y, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                   validation=validation, progress=progress, **options)

    # --- conveniences --------------------------------------------------------------
    def copy(self, dtype: str | np.dtype | None = None) -> Network:
        """An independent copy (layers rebuilt from their configs), optionally in
        another dtype (e.g. float64 for checks)."""
        clone = Network(
            [type(layer).from_config(layer.config()) for layer in self.layers],
            loss=self.loss,
            input_shape=self.input_shape,
            seed=self.seed,
            dtype=self.dtype if dtype is None else dtype,
            params=self.params,
            state=self.state,
        )
        clone.metadata = dict(self.metadata)
        return clone

    def save(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        """Write the network to a safetensors file (atomically); see :mod:`numpynn.serialization`."""
        _shortcut("save")(self, path, metadata=metadata)

    def to_onnx(self, path: str) -> None:
        """Export to an ONNX file, written atomically: float32, opset 17, input ``"input"``
        (N, *input_shape), output ``"output"`` (N, n_out). Needs ``pip install 'numpynn[onnx]'``;
        see :mod:`numpynn.export.onnx`."""
        _shortcut("to_onnx")(self, path)

    def summary(self) -> str:
        """A table of layers: type, output shape, activation and parameter count; a block's
        layers follow it, indented, numbered by their path inside it (``3.layers.0``)."""
        from ._tables import table

        rows = []
        for path, layer in self.walk():
            where = path.removeprefix("layers.")
            depth = where.count(".layers.") + where.count(".shortcut")
            rows.append([where, "  " * depth + layer.name, "x".join(map(str, layer.output_shape)),
                         _activation_name(layer), f"{layer.n_params:,}"])
        return table(["layer", "type", "output", "activation", "params"], rows, right=(0, 4),
                     title=f"input {'x'.join(map(str, self.input_shape))}",
                     footer=f"{self.n_params:,} parameters ({self.dtype}), loss {self.loss.name}")

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Network([{inner}], loss={self.loss.name!r}, dtype={self.dtype.name!r})"


_LAYER_STREAM = 0x6C61  # keeps the layers' generators apart from the batch-order stream


def _input_shape(first: Layer, given: Sequence[int] | int | None) -> tuple[int, ...]:
    if given is None:
        implied = first.default_input_shape() if isinstance(first, Layer) else None
        if implied is None:
            raise ValueError(f"give input_shape=...: the first layer ({type(first).__name__}) does not "
                             "imply the shape of one sample")
        return tuple(implied)
    shape = (given,) if isinstance(given, (int, np.integer)) else tuple(given)
    if not shape or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1
                            for d in shape):
        raise ValueError(f"input_shape must be positive whole numbers, not {given!r}")
    return tuple(int(d) for d in shape)


def _grads(layer: Layer) -> tuple[Any, ...]:
    """A copy of a layer's ∇θ in the order of its parameters; a block's holds its children's."""
    children = layer.named_children()
    if children:
        return tuple(_grads(child) for _, child in children)
    return tuple(layer.grads[spec.name].copy() for spec in layer.specs)


def _activation_name(layer: Layer) -> str:
    act = getattr(layer, "activation", None)
    return act.name if isinstance(act, Activation) else ""

