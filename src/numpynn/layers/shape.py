"""Layers that only change the shape of each sample: Flatten and Reshape.

They move no numbers, so their backward is the same reshape undone:
∂C/∂x = reshape(∂C/∂y, (B, *input_shape)). Both return views, never copies.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import Array, Layer, Shape, register_layer


@register_layer
class Flatten(Layer):
    """(B, d1, d2, …) -> (B, d1·d2·…), e.g. a convolution's feature maps to a dense layer's rows."""

    def build(self, input_shape: Shape) -> Shape:
        return (math.prod(input_shape),)

    def forward(self, x: Array, training: bool = False) -> Array:
        return x.reshape(x.shape[0], -1)  # y = x as rows

    def to_onnx(self, graph: Any, x: str) -> str:
        return graph.node("Flatten", [x], axis=1)  # (N, d1, d2, …) -> (N, d1·d2·…)

    def backward(self, grad_y: Array) -> Array | None:
        if not self.needs_input_grad:
            return None
        return grad_y.reshape(grad_y.shape[0], *self.input_shape)  # ∂C/∂x = ∂C/∂y reshaped back


@register_layer
class Reshape(Layer):
    """(B, *input_shape) -> (B, *shape), e.g. ``Reshape((1, 28, 28))`` turns 784 pixels into an image."""

    def __init__(self, shape: Shape) -> None:
        super().__init__()
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape):
            raise ValueError(f"Reshape needs a shape of positive whole numbers, not {shape!r}")
        self.shape = shape

    def config(self) -> dict[str, Any]:
        return {"shape": list(self.shape)}

    def build(self, input_shape: Shape) -> Shape:
        if math.prod(input_shape) != math.prod(self.shape):
            raise ValueError(f"cannot reshape {math.prod(input_shape)} values per sample "
                             f"(shape {input_shape}) to {self.shape}")
        return self.shape

    def forward(self, x: Array, training: bool = False) -> Array:
        return x.reshape(x.shape[0], *self.shape)  # y = x, seen as (B, *shape)

    def to_onnx(self, graph: Any, x: str) -> str:
        shape = graph.constant("shape", np.array([0, *self.shape], np.int64))  # 0: keep N
        return graph.node("Reshape", [x, shape])

    def backward(self, grad_y: Array) -> Array | None:
        if not self.needs_input_grad:
            return None
        return grad_y.reshape(grad_y.shape[0], *self.input_shape)  # ∂C/∂x = ∂C/∂y reshaped back
