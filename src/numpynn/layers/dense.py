"""The dense (fully connected) layer.

Row layout: a mini-batch is a matrix whose rows are samples.

    z = a_prev @ W + b        a_prev (B, n_in), W (n_in, n_out), b (n_out,) -> z (B, n_out)
    a = σ(z)                  (B, n_out)

Backward, the layer's local chain rule, given ∂C/∂a (B, n_out) from the layer above:

    δ = ∂C/∂z = ∂C/∂a ⊙ σ'(z)      (B, n_out)   (softmax: its Jacobian)
    ∇W = a_prevᵀ @ δ               (n_in, n_out)
    ∇b = Σ_rows δ                  (n_out,)
    ∂C/∂a_prev = δ @ Wᵀ            (B, n_in), handed to the layer below

When the loss and this layer's σ fuse (softmax or sigmoid with cross-entropy)
the network computes δ_L = (a − y)/B itself and calls :meth:`Dense.backward_delta`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _kernels, _parallel
from ..activations import Activation
from .base import Array, Layer, Shape, WeightsAndBiases, activation_and_init, register_layer, whole


def _given(value: Array) -> Any:
    """An init that returns a value the user gave (its shape is checked by the network)."""
    return lambda rng, shape: np.asarray(value)


@register_layer
class Dense(WeightsAndBiases, Layer):
    """A fully connected layer ``z = a_prev @ W + b``, ``a = σ(z)``.

    Parameters
    ----------
    n_in, n_out:
        Number of inputs and of units.
    activation:
        A registered name (``"sigmoid"``, ``"relu"``, …: ``numpynn.activations.ACTIVATIONS``)
        or an :class:`~numpynn.activations.Activation`, such as ``Custom(fn, dfn)``.
    W, b:
        Optional initial weights (n_in, n_out) and biases (n_out,); otherwise
        the network initialises them from its seed (``init``: Glorot/Xavier
        uniform for sigmoid, tanh, softmax and identity; He normal for ReLU),
        biases zero.

    Once the layer is part of a :class:`~numpynn.network.Network`, ``W`` and
    ``b`` are views into the network's flat parameter vector; assigning to
    them copies the new values in (the shape must match).
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        activation: str | Activation = "sigmoid",
        *,
        W: Array | None = None,
        b: Array | None = None,
        init: str | None = None,
    ) -> None:
        super().__init__()
        self.n_in, self.n_out = whole("Dense", "n_in", n_in), whole("Dense", "n_out", n_out)
        self.activation, self.init = activation_and_init(activation, init)
        self._initial = (W, b)
        self.x: Array = np.empty((0, self.n_in))  # a_prev of the last forward pass, (B, n_in)
        self.z: Array = np.empty((0, self.n_out))  # z of the last forward pass, (B, n_out)
        self.a: Array = np.empty((0, self.n_out))  # a = σ(z) of the last forward pass, (B, n_out)

    def config(self) -> dict[str, Any]:
        return {"n_in": self.n_in, "n_out": self.n_out, "activation": self.activation, "init": self.init}

    def default_input_shape(self) -> Shape:
        return (self.n_in,)

    def build(self, input_shape: Shape) -> Shape:
        if tuple(input_shape) != (self.n_in,):
            got = f"{input_shape[0]} inputs" if len(input_shape) == 1 else f"inputs of shape {input_shape}"
            hint = "" if len(input_shape) == 1 else " (put a Flatten() before it)"
            raise ValueError(f"expects {self.n_in} inputs per row but gets {got}{hint}")
        W0, b0 = self._initial
        self.add_param("W", (self.n_in, self.n_out), self.init if W0 is None else _given(W0))
        self.add_param("b", (self.n_out,), "zeros" if b0 is None else _given(b0))
        return (self.n_out,)

    # --- forward and backward -----------------------------------------------------
    # A batch of more than DENSE_SHARD rows runs on shards of DENSE_SHARD rows
    # (numpynn._parallel: fixed shards, on numpynn's threads); each shard's ∇W_s, ∇b_s are
    # added to the others' in shard order. A batch of up to DENSE_SHARD rows is one shard:
    # the whole-batch products, with no thread.
    def forward(self, x: Array, training: bool = False) -> Array:
        """a = σ(x @ W + b); (B, n_in) -> (B, n_out). Keeps ``x``, ``z`` and ``a``.

        The returned array is a reusable buffer: it is overwritten by the next
        forward pass of this layer.
        """
        B = x.shape[0]
        dtype = self.params["W"].dtype
        z = self.buffer("z", (B, self.n_out), dtype)
        a = self.buffer("a", (B, self.n_out), dtype)
        self.x, self.z, self.a = x, z, a
        if B <= _parallel.DENSE_SHARD:  # one shard: the whole batch, here
            self._forward_rows(slice(None))
        else:
            parts = _parallel.shards(B, _parallel.DENSE_SHARD)
            _parallel.run(lambda s: self._forward_rows(parts[s]), len(parts))
        return a

    def _forward_rows(self, r: slice) -> None:
        z, a = self.z[r], self.a[r]
        np.matmul(self.x[r], self.params["W"], out=z)  # z = a_prev W + b
        z += self.params["b"]
        self.activation.forward(z, out=a)  # a = σ(z)

    def backward(self, grad_y: Array) -> Array | None:
        """Given ∂C/∂a (B, n_out): δ = ∂C/∂a ⊙ σ'(z), then the rest of :meth:`backward_delta`."""
        def delta(r: slice) -> Array:
            return self.activation.delta(grad_y[r], self.z[r], self.a[r])  # δ_l = ∂C/∂a_l ⊙ σ'(z_l)

        return self._backward(delta, grad_y.shape[0])

    def backward_delta(self, delta: Array) -> Array | None:
        """Given δ = ∂C/∂z (B, n_out), write ∇W and ∇b; return ∂C/∂a_prev = δ Wᵀ (B, n_in)
        (None for the first layer). The returned array is a reusable buffer."""
        return self._backward(lambda r: delta[r], delta.shape[0])

    def _backward(self, delta_of: Any, B: int) -> Array | None:
        """Shard by shard: δ_s = ``delta_of(rows)``, its ∇W_s, ∇b_s and its rows of ∂C/∂a_prev;
        then ∇W = Σ_s ∇W_s and ∇b = Σ_s ∇b_s in shard order."""
        W = self.params["W"]
        g = self.buffer("grad_x", (B, self.n_in), W.dtype) if self.needs_input_grad else None
        if B <= _parallel.DENSE_SHARD:  # one shard: the whole batch, here, straight into ∇θ
            self._backward_rows(slice(None), delta_of, self.grads["W"], self.grads["b"], g)
            return g
        parts = _parallel.shards(B, _parallel.DENSE_SHARD)
        # shard 0 writes ∇θ itself; the others their own partial sums
        grad_W = [self.grads["W"], *self.buffer("grad_W", (len(parts) - 1, *W.shape), W.dtype)]
        grad_b = [self.grads["b"], *self.buffer("grad_b", (len(parts) - 1, self.n_out), W.dtype)]
        _parallel.run(lambda s: self._backward_rows(parts[s], delta_of, grad_W[s], grad_b[s], g), len(parts))
        _parallel.reduce_in_order(grad_W, grad_W[0])  # Σ over shards, in shard order
        _parallel.reduce_in_order(grad_b, grad_b[0])
        return g

    def _backward_rows(self, r: slice, delta_of: Any, grad_W: Array, grad_b: Array, g: Array | None) -> None:
        d = delta_of(r)
        np.matmul(self.x[r].T, d, out=grad_W)  # ∇W_l = a_{l−1}ᵀ δ_l (these rows)
        _kernels.column_sums(d, grad_b)  # ∇b_l = Σ_rows δ_l (these rows)
        if g is not None:
            np.matmul(d, self.params["W"].T, out=g[r])  # ∂C/∂a_{l−1} = δ_l W_lᵀ

    def to_onnx(self, graph: Any, x: str) -> str:
        z = graph.node("Gemm", [x, graph.param("W"), graph.param("b")])  # z = x W + b, W (n_in, n_out)
        return graph.activation(self.activation, z)  # a = σ(z)

    def __repr__(self) -> str:
        return f"Dense({self.n_in}, {self.n_out}, activation={self.activation.name!r})"
