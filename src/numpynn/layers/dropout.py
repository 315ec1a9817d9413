"""Dropout: during training, each unit is kept with probability 1 − p.

Inverted dropout (Srivastava et al., 2014, as in PyTorch): the kept units are
scaled by 1/(1 − p) while training, so that the expected output equals the
input and nothing changes at inference.

    m_ij = 1[u_ij < 1 − p] / (1 − p),   u_ij ~ U[0, 1)     the mask, (B, n)
    y = x ⊙ m                                              training
    y = x                                                  predict / evaluate

Backward: y_ij = x_ij m_ij, so ∂y_ij/∂x_ij = m_ij and ∂C/∂x = ∂C/∂y ⊙ m. The
layer has no parameters. The masks come from ``self.rng``, which the network
reseeds from its seed and the epoch: seeded training is bit-reproducible, and
a run resumed at an epoch boundary draws the same masks as one never stopped.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Array, Layer, register_layer


@register_layer
class Dropout(Layer):
    """Zero each input with probability ``p`` while training (and scale the rest by 1/(1 − p))."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout p must be a probability in [0, 1), not {p!r}")
        self.p = float(p)
        self.mask: Array | None = None  # m of the last training pass, (B, *shape); None at inference

    def config(self) -> dict[str, Any]:
        return {"p": self.p}

    def to_onnx(self, graph: Any, x: str) -> str:
        return x  # y = x at inference: no operator

    def forward(self, x: Array, training: bool = False) -> Array:
        if not training or self.p == 0.0:
            self.mask = None
            return x  # y = x at inference
        keep = 1.0 - self.p
        u = self.buffer("mask", x.shape, x.dtype)
        self.rng.random(dtype=x.dtype, out=u)  # u ~ U[0, 1)
        kept = np.less(u, x.dtype.type(keep), out=self.buffer("kept", x.shape, np.dtype(bool)))
        self.mask = m = np.multiply(kept, x.dtype.type(1.0 / keep), out=u)  # m = 1[u < 1 − p] / (1 − p)
        return np.multiply(x, m, out=self.buffer("y", x.shape, x.dtype))  # y = x ⊙ m

    def backward(self, grad_y: Array) -> Array | None:
        if not self.needs_input_grad:
            return None
        if self.mask is None:
            return grad_y  # identity
        grad_y *= self.mask  # ∂C/∂x = ∂C/∂y ⊙ m
        return grad_y
