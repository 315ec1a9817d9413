"""Pooling: the largest (MaxPool2D) or the mean (AvgPool2D) of each window.

Inputs x (B, C, H, W), outputs (B, C, Ho, Wo), Ho = ⌊(H − kh)/s_h⌋ + 1; no
parameters. Both walk the kh·kw offsets (u, v) of a window: for each, the
strided view x[:, :, u::s_h, v::s_w] (cut to Ho × Wo) holds that element of
every window at once, so a pass is kh·kw whole-array operations, never a loop
over windows. Like the convolution, they work on channels-last memory and
return (B, C, Ho, Wo) views of it, and run on shards of the batch on numpynn's
threads (numpynn._parallel).

Max pooling, m = max over the window, with r = the arg-max (the first in
row-major order on ties, as PyTorch):

    y[n, c, i, j] = x[n, c, s_h·i + u*, s_w·j + v*],  (u*, v*) = r[n, c, i, j]
    ∂C/∂x[n, c, s_h·i + u, s_w·j + v] += ∂C/∂y[n, c, i, j] · 1[(u, v) = r[n, c, i, j]]

(δ is routed to the one input that won; where windows overlap, the sums add). Max
pooling's two passes are numpynn._kernels.maxpool and maxpool_backward: the NumPy
reference walks the offsets as above; a C loop takes each window once, with the same bits
(the backward one for windows that do not overlap).

Average pooling: y = (1/(kh·kw)) Σ_{u,v} x[..., s_h·i + u, s_w·j + v], and each
input gets ∂C/∂y / (kh·kw) from every window it is in.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _kernels, _parallel
from .base import Array, Layer, Shape, register_layer
from .conv import nchw, nhwc, output_size, pair


class _Pool2D(Layer):
    """What both poolings share: the window, its checks and the strided views."""

    def __init__(self, kernel_size: int | tuple[int, int] = 2,
                 stride: int | tuple[int, int] | None = None) -> None:
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", 1)

    def config(self) -> dict[str, Any]:
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride)}

    #: The ONNX operator of this pooling.
    onnx_op = ""

    def to_onnx(self, graph: Any, x: str) -> str:
        return graph.node(self.onnx_op, [x], kernel_shape=list(self.kernel_size), strides=list(self.stride))

    def build(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 3:
            raise ValueError(f"expects images (channels, height, width) but gets inputs of shape "
                             f"{input_shape}")
        C, H, W = input_shape
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        Ho, Wo = output_size(H, kh, sh), output_size(W, kw, sw)
        if Ho < 1 or Wo < 1:
            raise ValueError(f"its {kh}x{kw} window does not fit the {H}x{W} input")
        return (C, Ho, Wo)

    def offsets(self, x: Array) -> Any:
        """(k, window element (u, v) of every window): kh·kw strided views (B, Ho, Wo, C), as the
        max-pool kernels walk them (numpynn._kernels.window_views)."""
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        _, Ho, Wo = self.output_shape
        return _kernels.window_views(x, kh, kw, sh, sw, Ho, Wo)

    def _uncovered(self) -> bool:
        """True if some inputs lie in no window (gaps between windows, or a remainder at the edge)."""
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        _, H, W = self.input_shape
        _, Ho, Wo = self.output_shape
        return sh > kh or sw > kw or (Ho - 1) * sh + kh < H or (Wo - 1) * sw + kw < W

    def __repr__(self) -> str:
        stride = "" if self.stride == self.kernel_size else f", stride={self.stride}"
        return f"{self.name}({self.kernel_size}{stride})"


@register_layer
class MaxPool2D(_Pool2D):
    """The largest value of each kh×kw window (stride defaults to the window size)."""

    onnx_op = "MaxPool"

    def forward(self, x: Array, training: bool = False) -> Array:
        C, Ho, Wo = self.output_shape
        m = self.buffer("max", (x.shape[0], Ho, Wo, C), x.dtype)
        self.x = nhwc(x)  # kept: backward finds each window's arg-max by comparing with m
        parts = _parallel.shards(x.shape[0], _parallel.IMAGE_SHARD)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride

        def shard(s: int) -> None:
            n = parts[s]
            _kernels.maxpool(self.x[n], m[n], kh, kw, sh, sw)  # m = max over the window

        _parallel.run(shard, len(parts), self.x[parts[0]].size)  # shards of IMAGE_SHARD samples
        self.max = m
        return nchw(m)

    def backward(self, grad_y: Array) -> Array | None:
        if not self.needs_input_grad:
            return None
        C, H, W = self.input_shape
        B = grad_y.shape[0]
        g = nhwc(grad_y)  # ∂C/∂y (B, Ho, Wo, C)
        shape = g.shape
        dx = self.buffer("grad_x", (B, H, W, C), grad_y.dtype)
        overlapping = self.stride[0] < self.kernel_size[0] or self.stride[1] < self.kernel_size[1]
        clear = overlapping or self._uncovered()
        scratch = (self.buffer("free", shape, np.dtype(bool)), self.buffer("hit", shape, np.dtype(bool)),
                   self.buffer("routed", shape, grad_y.dtype))
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        parts = _parallel.shards(B, _parallel.IMAGE_SHARD)

        def shard(s: int) -> None:
            n = parts[s]
            if clear:
                dx[n] = 0
            # ∂C/∂x: each window's ∂C/∂y to its first arg-max (ties: the first, as PyTorch)
            _kernels.maxpool_backward(self.x[n], self.max[n], g[n], dx[n], kh, kw, sh, sw,
                                      tuple(a[n] for a in scratch))

        _parallel.run(shard, len(parts), dx[parts[0]].size)
        return nchw(dx)


@register_layer
class AvgPool2D(_Pool2D):
    """The mean of each kh×kw window (stride defaults to the window size)."""

    onnx_op = "AveragePool"

    def forward(self, x: Array, training: bool = False) -> Array:
        C, Ho, Wo = self.output_shape
        (kh, kw) = self.kernel_size
        s_all = self.buffer("sum", (x.shape[0], Ho, Wo, C), x.dtype)
        xp = nhwc(x)
        parts = _parallel.shards(x.shape[0], _parallel.IMAGE_SHARD)

        def shard(i: int) -> None:
            n = parts[i]
            s = s_all[n]
            for k, view in self.offsets(xp[n]):
                if k == 0:
                    np.copyto(s, view)
                else:
                    s += view
            s *= x.dtype.type(1.0 / (kh * kw))  # y = (1/(kh·kw)) Σ_window x

        _parallel.run(shard, len(parts), xp[parts[0]].size)
        return nchw(s_all)

    def backward(self, grad_y: Array) -> Array | None:
        if not self.needs_input_grad:
            return None
        C, H, W = self.input_shape
        (kh, kw) = self.kernel_size
        B = grad_y.shape[0]
        g = nhwc(grad_y)
        dx = self.buffer("grad_x", (B, H, W, C), grad_y.dtype)
        parts = _parallel.shards(B, _parallel.IMAGE_SHARD)

        def shard(i: int) -> None:
            n = parts[i]
            share = g[n] * grad_y.dtype.type(1.0 / (kh * kw))  # ∂C/∂y / (kh·kw)
            dx[n] = 0
            for _, view in self.offsets(dx[n]):
                view += share  # every input gets its share from each window it is in

        _parallel.run(shard, len(parts), dx[parts[0]].size)
        return nchw(dx)


@register_layer
class GlobalAvgPool2D(Layer):
    """The mean of each feature map: (B, C, H, W) -> (B, C), y_c = (1/HW) Σ_{h,w} x_{c,h,w}.

    Backward spreads each ∂C/∂y_c evenly over its map: ∂C/∂x_{c,h,w} = ∂C/∂y_c / (HW).
    """

    def build(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 3:
            raise ValueError(f"expects images (channels, height, width) but gets inputs of shape "
                             f"{input_shape}")
        return (input_shape[0],)

    def forward(self, x: Array, training: bool = False) -> Array:
        B, C = x.shape[:2]
        y = self.buffer("y", (B, C), x.dtype)
        np.add.reduce(x.reshape(B, C, -1), axis=2, out=y)
        y *= x.dtype.type(1.0 / (x.shape[2] * x.shape[3]))  # y_c = (1/HW) Σ x_c
        return y

    def backward(self, grad_y: Array) -> Array | None:
        if not self.needs_input_grad:
            return None
        C, H, W = self.input_shape
        g = self.buffer("grad_x", (grad_y.shape[0], C, H, W), grad_y.dtype)
        np.multiply(grad_y[:, :, None, None], grad_y.dtype.type(1.0 / (H * W)), out=g)  # ∂C/∂x = ∂C/∂y / HW
        return g

    def to_onnx(self, graph: Any, x: str) -> str:
        return graph.node("Flatten", [graph.node("GlobalAveragePool", [x])], axis=1)  # (N, C, 1, 1) -> (N, C)
