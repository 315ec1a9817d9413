"""The dense (fully connected) layer.

Row layout: a mini-batch is a matrix whose rows are samples.

    z = a_prev @ W + b        a_prev (B, n_in), W (n_in, n_out), b (n_out,) -> z (B, n_out)
    a = σ(z)                  (B, n_out)

Backward, given this layer's delta δ = ∂C/∂z (B, n_out):

    ∇W = a_prevᵀ @ δ          (n_in, n_out)
    ∇b = Σ_rows δ             (n_out,)
    ∂C/∂a_prev = δ @ Wᵀ       (B, n_in), which the layer below turns into its
                              own delta with its σ': δ_prev = (δ Wᵀ) ⊙ σ'(z_prev)
"""

from __future__ import annotations

import numpy as np

from . import activations
from .activations import Activation

Array = np.ndarray


class Dense:
    """A fully connected layer ``z = a_prev @ W + b``, ``a = σ(z)``.

    Parameters
    ----------
    n_in, n_out:
        Number of inputs and of units.
    activation:
        A name (``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"leaky_relu"``,
        ``"identity"``, ``"softmax"``) or an :class:`~numpynn.activations.Activation`,
        such as ``Custom(fn, dfn)``.
    W, b:
        Optional initial weights (n_in, n_out) and biases (n_out,); otherwise
        the network initialises them from its seed (Glorot/Xavier uniform for
        sigmoid, tanh, softmax and identity; He normal for ReLU), biases zero.

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
        for name, value in (("n_in", n_in), ("n_out", n_out)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"Dense {name} must be a positive whole number, not {value!r}")
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.activation = activations.get(activation)
        self.init = init or self.activation.init
        if self.init not in ("glorot", "he"):
            raise ValueError(f"unknown init {self.init!r}: use 'glorot' or 'he'")
        self._initial = (W, b)
        self._W: Array | None = None
        self._b: Array | None = None
        self.dW: Array = np.empty((0, 0))  # ∇W, a view into the network's gradient vector
        self.db: Array = np.empty(0)  # ∇b
        self.z: Array = np.empty((0, self.n_out))  # z of the last forward pass, (B, n_out)
        self.a: Array = np.empty((0, self.n_out))  # a = σ(z) of the last forward pass, (B, n_out)
        self._zbuf: Array | None = None
        self._abuf: Array | None = None
        self._gbuf: Array | None = None

    # --- parameters ---------------------------------------------------------------
    @property
    def n_params(self) -> int:
        return self.n_in * self.n_out + self.n_out

    @property
    def W(self) -> Array:
        """Weights, (n_in, n_out)."""
        if self._W is None:
            raise RuntimeError("this layer has no weights yet: put it in a Network first")
        return self._W

    @W.setter
    def W(self, value: Array) -> None:
        self._assign(self.W, value, "W")

    @property
    def b(self) -> Array:
        """Biases, (n_out,)."""
        if self._b is None:
            raise RuntimeError("this layer has no biases yet: put it in a Network first")
        return self._b

    @b.setter
    def b(self, value: Array) -> None:
        self._assign(self.b, value, "b")

    @staticmethod
    def _assign(target: Array, value: Array, name: str) -> None:
        value = np.asarray(value)
        if value.shape != target.shape:
            raise ValueError(f"{name} must have shape {target.shape}, not {value.shape}")
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{name} contains NaN or infinite values")
        target[...] = value

    def bind(self, params: Array, grads: Array, rng: np.random.Generator) -> None:
        """Take ``W``, ``b`` (and ``dW``, ``db``) as views of the flat slices
        ``params`` and ``grads`` (each of length ``n_params``) and initialise them."""
        k = self.n_in * self.n_out
        self._W = params[:k].reshape(self.n_in, self.n_out)
        self._b = params[k:]
        self.dW = grads[:k].reshape(self.n_in, self.n_out)
        self.db = grads[k:]
        W0, b0 = self._initial
        if self.init == "he":  # He normal: N(0, 2/n_in)
            w = rng.normal(0.0, np.sqrt(2.0 / self.n_in), size=(self.n_in, self.n_out))
        else:  # Glorot/Xavier uniform: U(−r, r), r = √(6/(n_in + n_out))
            r = np.sqrt(6.0 / (self.n_in + self.n_out))
            w = rng.uniform(-r, r, size=(self.n_in, self.n_out))
        self.W = w if W0 is None else W0
        self.b = np.zeros(self.n_out) if b0 is None else b0

    # --- forward and backward -----------------------------------------------------
    def _buffers(self, batch: int, dtype: np.dtype) -> tuple[Array, Array]:
        """Views (batch, n_out) of reusable z and a buffers, grown when needed."""
        if self._zbuf is None or self._zbuf.shape[0] < batch or self._zbuf.dtype != dtype:
            self._zbuf = np.empty((batch, self.n_out), dtype)
            self._abuf = np.empty((batch, self.n_out), dtype)
        assert self._abuf is not None
        return self._zbuf[:batch], self._abuf[:batch]

    def forward(self, a_prev: Array) -> Array:
        """a = σ(a_prev @ W + b); (B, n_in) -> (B, n_out). Keeps ``z`` and ``a``.

        The returned array is a reusable buffer: it is overwritten by the next
        forward pass of this layer.
        """
        z, a = self._buffers(a_prev.shape[0], self.W.dtype)
        np.matmul(a_prev, self.W, out=z)  # z = a_prev W + b
        z += self.b
        self.activation.forward(z, out=a)  # a = σ(z)
        self.z, self.a = z, a
        return a

    def backward(self, delta: Array, a_prev: Array, input_grad: bool = True) -> Array | None:
        """Given δ (B, n_out), write ∇W and ∇b; return ∂C/∂a_prev = δ Wᵀ (B, n_in).

        With ``input_grad=False`` (the first layer) the last product is skipped.
        The returned array is a reusable buffer.
        """
        np.matmul(a_prev.T, delta, out=self.dW)  # ∇W = a_{l−1}ᵀ δ_l
        np.sum(delta, axis=0, out=self.db)  # ∇b = Σ_rows δ_l
        if not input_grad:
            return None
        B = delta.shape[0]
        if self._gbuf is None or self._gbuf.shape[0] < B or self._gbuf.dtype != delta.dtype:
            self._gbuf = np.empty((B, self.n_in), delta.dtype)
        return np.matmul(delta, self.W.T, out=self._gbuf[:B])  # ∂C/∂a_{l−1} = δ_l W_lᵀ

    def __repr__(self) -> str:
        return f"Dense({self.n_in}, {self.n_out}, activation={self.activation.name!r})"
