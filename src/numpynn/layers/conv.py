"""The 2-D convolution layer, lowered to one matrix product (im2col).

Shapes follow PyTorch: inputs x (B, C, H, W), kernels W (O, C, kh, kw), biases
b (O,), outputs (B, O, Ho, Wo) with Ho = ⌊(H + 2p_h − kh)/s_h⌋ + 1 (likewise Wo).
Like PyTorch's ``Conv2d`` it computes a cross-correlation:

    z[n, o, i, j] = b[o] + Σ_{c, u, v} x_pad[n, c, s_h·i + u, s_w·j + v] · W[o, c, u, v]
    a = σ(z)

Lowering. Each output position (n, i, j) reads one patch of kh·kw·C inputs; as
rows of a matrix ``col`` (B·Ho·Wo, kh·kw·C), and with the kernels as columns of
``Wm`` (kh·kw·C, O), the whole layer is one product:

    z = col @ Wm + b                                  (B·Ho·Wo, O)

Backward, given ∂C/∂a (B, O, Ho, Wo), with δ = ∂C/∂z = ∂C/∂a ⊙ σ'(z) as rows (B·Ho·Wo, O):

    ∇Wm = colᵀ @ δ        ∇W[o, c, u, v] = Σ_{n,i,j} x_pad[n, c, s·i + u, s·j + v] δ[n, o, i, j]:
                          the correlation of the input with δ
    ∇b  = Σ_rows δ
    ∂C/∂col = δ @ Wmᵀ     then col2im: each patch's gradient is added back where the patch
                          came from. With δ̃ the dilated δ (s − 1 zeros between entries
                          at stride s; δ̃ = δ at stride 1), this is the full cross-correlation
                          of δ̃ with the kernel rotated by 180°, i.e. the true (full)
                          convolution of δ̃ with W: ∂C/∂x_pad = δ̃ ⋆_full rot180(W) = δ̃ ∗ W,
                          summed over the output channels (docs/conv.md, section 2).

Memory layout. Arrays are (B, C, H, W) to the caller, as in PyTorch, but this
layer keeps its numbers channels-last in memory (B, H, W, C), as PyTorch's
``channels_last`` format does: then the patches of ``col`` are gathered in one
copy with the channels contiguous, and ``col @ Wm`` comes out in the right
order with no transpose. What it returns is a (B, O, Ho, Wo) *view* of that
memory; the pooling layers and the next convolution read it through the
inverse view at no cost. Values and shapes are PyTorch's in every case.

Threads. Both passes run on shards of 16 samples (numpynn._parallel.IMAGE_SHARD) on
numpynn's threads: a shard gathers its own rows of [col 1] and computes its rows of z, a
and ∂C/∂x, and its partial [∇Wm; ∇b]_s = [col_s 1]ᵀ δ_s; the partials are added in shard
order, so the bits do not depend on the thread count.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import _kernels, _parallel
from ..activations import Activation
from .base import Array, Layer, Shape, WeightsAndBiases, activation_and_init, register_layer, whole


def pair(value: Any, name: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints (each at least ``minimum``) as a pair."""
    values = (value, value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    try:
        a, b = values
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a whole number or a pair of them, not {value!r}") from None
    return whole("the", name, a, minimum), whole("the", name, b, minimum)


def nhwc(x: Array) -> Array:
    """The channels-last view (B, H, W, C) of a (B, C, H, W) array (no copy)."""
    return x.transpose(0, 2, 3, 1)


def nchw(x: Array) -> Array:
    """The (B, C, H, W) view of a channels-last (B, H, W, C) array (no copy)."""
    return x.transpose(0, 3, 1, 2)


def output_size(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    """⌊(size + 2·padding − kernel)/stride⌋ + 1 (may be < 1 for a kernel that does not fit)."""
    return (size + 2 * padding - kernel) // stride + 1


@register_layer
class Conv2D(WeightsAndBiases, Layer):
    """A 2-D convolution (cross-correlation, as PyTorch's ``Conv2d``) followed by σ.

    Parameters
    ----------
    in_channels, out_channels:
        C and O.
    kernel_size, stride, padding:
        Each an int or a pair (rows, columns); padding adds zeros on every side.
    activation:
        As for :class:`~numpynn.layers.Dense` (softmax is refused: it only
        suits an output layer). ``init`` defaults to He for ReLU, else Glorot,
        with fan-in C·kh·kw and fan-out O·kh·kw.

    ``W`` (O, C, kh, kw) and ``b`` (O,) are in PyTorch's layout, so a model
    file's ``layers.{i}.W`` and ``layers.{i}.b`` load straight into
    ``torch.nn.Conv2d``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        activation: str | Activation = "relu",
        *,
        init: str | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = whole("Conv2D", "in_channels", in_channels)
        self.out_channels = whole("Conv2D", "out_channels", out_channels)
        self.kernel_size = pair(kernel_size, "kernel_size", 1)
        self.stride = pair(stride, "stride", 1)
        self.padding = pair(padding, "padding", 0)
        self.activation, self.init = activation_and_init(activation, init)
        if not self.activation.elementwise:
            raise ValueError(f"Conv2D cannot use {self.activation.name}, which only suits the output layer")
        self.z: Array = np.empty((0, self.out_channels))  # z of the last forward pass, rows (B·Ho·Wo, O)
        self.a: Array = np.empty((0, self.out_channels))  # a = σ(z), rows (B·Ho·Wo, O)
        # every kh×kw window of the last forward pass's input, (B, Ho, Wo, C, kh, kw): a strided view
        self.windows: Array = np.empty((0, 0, 0, 0, 0, 0))

    def config(self) -> dict[str, Any]:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": list(self.padding), "activation": self.activation, "init": self.init}

    def build(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 3:
            raise ValueError(f"expects images (channels, height, width) but gets inputs of shape "
                             f"{input_shape} (put a Reshape((1, 28, 28)) before it)")
        C, H, W = input_shape
        if C != self.in_channels:
            raise ValueError(f"expects {self.in_channels} input channels but gets {C}")
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if kh > H + 2 * ph or kw > W + 2 * pw:
            raise ValueError(f"its {kh}x{kw} kernel is larger than the padded "
                             f"{H + 2 * ph}x{W + 2 * pw} input")
        Ho, Wo = output_size(H, kh, sh, ph), output_size(W, kw, sw, pw)
        self.add_param("W", (self.out_channels, C, kh, kw), self.init)
        self.add_param("b", (self.out_channels,), "zeros")
        return (self.out_channels, Ho, Wo)

    # --- forward and backward -----------------------------------------------------
    # Both passes run on shards of IMAGE_SHARD samples (numpynn._parallel: fixed shards, on
    # numpynn's threads); a shard's rows of z, a and ∂C/∂x are its own, its [col 1] is gathered
    # into a buffer of its thread's own (in both passes: gathering it again costs less than
    # reading a whole batch's patches back from memory), and its partial [∇Wm; ∇b] is added to
    # the others' in shard order.
    def forward(self, x: Array, training: bool = False) -> Array:
        """a = σ(conv(x, W) + b); (B, C, H, W) -> (B, O, Ho, Wo), a view of channels-last memory."""
        B = x.shape[0]
        C, H, W = self.input_shape
        O, Ho, Wo = self.output_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        dtype = self.params["W"].dtype
        xp = nhwc(x)  # (B, H, W, C), a view
        padded = None  # zero padding: the borders of this buffer stay 0, the middle is the input
        if ph or pw:
            padded = self.buffer("padded", (B, H + 2 * ph, W + 2 * pw, C), dtype, zeros=True)
        Wb = self._kernel_matrix()
        z = self.buffer("z", (B * Ho * Wo, O), dtype)
        a = self.output_buffer(z)  # z itself for the identity (a conv before a batch norm)
        parts = _parallel.shards(B, _parallel.IMAGE_SHARD)
        # every kh×kw window of the batch, strided: (B, Ho, Wo, C, kh, kw), still a view (made once:
        # a shard takes its samples' rows of it; the backward pass gathers them again)
        source = xp if padded is None else padded
        windows = sliding_window_view(source, (kh, kw), axis=(1, 2))[:, : sh * Ho : sh, : sw * Wo : sw]

        def shard(s: int) -> None:
            n, r = parts[s], self._rows(parts[s])
            if padded is not None:
                padded[n, ph : ph + H, pw : pw + W, :] = xp[n]
            col = self._patches(windows[n], dtype)  # [col 1] of these samples
            np.matmul(col, Wb, out=z[r])  # z = [col 1] [Wm; b] = col Wm + b
            if a is not z:
                self.activation.forward(z[r], out=a[r])  # a = σ(z)

        _parallel.run(shard, len(parts))
        self.windows, self.z, self.a = windows, z, a
        return nchw(a.reshape(B, Ho, Wo, O))

    def _rows(self, samples: slice) -> slice:
        """The rows of z and a that hold these samples (Ho·Wo rows each)."""
        per = self.output_shape[1] * self.output_shape[2]
        return slice(samples.start * per, samples.stop * per)

    def _patches(self, windows: Array, dtype: np.dtype) -> Array:
        """The patch matrix with a column of ones, [col 1] (n·Ho·Wo, kh·kw·C + 1), of the samples
        whose windows (n, Ho, Wo, C, kh, kw) these are, in a buffer of the calling thread's own
        (``_parallel.scratch``, made for IMAGE_SHARD samples): row (n, i, j) is the window at
        (i, j) of sample n in the order (u, v, c), then 1 (the constant input whose weight is the
        bias, so the product adds b and ∇b comes out of ∇W's product). The copy keeps the input's
        contiguous axis innermost: the channels, or with one channel the image rows, in which
        case the matrix is the transposed view of a (kh·kw·C + 1, n·Ho·Wo) buffer (same values,
        4x faster to gather for a 28x28 digit)."""
        n = windows.shape[0]
        C = self.in_channels
        (kh, kw), (_, Ho, Wo) = self.kernel_size, self.output_shape
        K, most = kh * kw * C, _parallel.IMAGE_SHARD
        if C > 1:
            col = _parallel.scratch("conv col", (most, Ho, Wo, K + 1), dtype, fill=1)[:n]
            np.copyto(col[..., :K].reshape(n, Ho, Wo, kh, kw, C), windows.transpose(0, 1, 2, 4, 5, 3))
            return col.reshape(n * Ho * Wo, K + 1)
        col_t = _parallel.scratch("conv col_t", (K + 1, most, Ho, Wo), dtype, fill=1)[:, :n]
        np.copyto(col_t[:K].reshape(kh, kw, n, Ho, Wo), windows[:, :, :, 0].transpose(3, 4, 0, 1, 2))
        return col_t.reshape(K + 1, n * Ho * Wo).T

    def _kernel_matrix(self) -> Array:
        """[Wm; b] (kh·kw·C + 1, O): column o holds kernel o in the order of a patch row
        (u, v, c), then its bias."""
        kh, kw = self.kernel_size
        K = kh * kw * self.in_channels
        Wb = self.buffer("Wb", (K + 1, self.out_channels), self.params["W"].dtype)
        Wb[:K] = self.params["W"].transpose(2, 3, 1, 0).reshape(K, self.out_channels)
        Wb[K] = self.params["b"]
        return Wb

    def backward(self, grad_y: Array) -> Array | None:
        """Given ∂C/∂a (B, O, Ho, Wo): δ = ∂C/∂a ⊙ σ'(z), then the rest of :meth:`backward_delta`."""
        B = grad_y.shape[0]
        O, Ho, Wo = self.output_shape
        g = nhwc(grad_y)  # (B, Ho, Wo, O): rows of δ are contiguous when grad_y came from a pool
        rows = g.reshape(B * Ho * Wo, O) if g.flags.c_contiguous else None
        if rows is None:
            rows = self.buffer("delta", (B * Ho * Wo, O), grad_y.dtype)

        def delta(n: slice) -> Array:
            r = self._rows(n)
            if not g.flags.c_contiguous:
                np.copyto(rows[r].reshape(-1, Ho, Wo, O), g[n])
            return self.activation.delta(rows[r], self.z[r], self.a[r])  # δ = ∂C/∂a ⊙ σ'(z)

        return self._backward(B, delta)

    def backward_delta(self, delta: Array) -> Array | None:
        """Given δ = ∂C/∂z as rows (B·Ho·Wo, O), write ∇W, ∇b; return ∂C/∂x (B, C, H, W)."""
        B = delta.shape[0] // (self.output_shape[1] * self.output_shape[2])
        return self._backward(B, lambda n: delta[self._rows(n)])

    def _backward(self, B: int, delta_of: Any) -> Array | None:
        """Shard by shard: δ_s = ``delta_of(samples)``, its partial [∇Wm; ∇b]_s and its samples'
        ∂C/∂x; then [∇Wm; ∇b] = Σ_s [∇Wm; ∇b]_s in shard order. Returns ∂C/∂x (B, C, H, W)."""
        C, H, W = self.input_shape
        O, Ho, Wo = self.output_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        K = kh * kw * C
        dtype = self.params["W"].dtype
        parts = _parallel.shards(B, _parallel.IMAGE_SHARD)
        partial = self.buffer("grad_Wb", (len(parts), K + 1, O), dtype)
        needs_dx = self.needs_input_grad
        if needs_dx:
            dxp = self.buffer("grad_padded", (B, H + 2 * ph, W + 2 * pw, C), dtype)
            Wm_t = np.ascontiguousarray(self.params["W"].transpose(0, 2, 3, 1)).reshape(O, K)  # Wmᵀ (O, K)

        def shard(s: int) -> None:
            n = parts[s]
            d = delta_of(n)  # δ_s (rows, O)
            col = self._patches(self.windows[n], dtype)  # [col_s 1], gathered again
            # [∇Wm; ∇b]_s = [col_s 1]ᵀ δ_s: ∇W correlates the input with δ, ∇b = Σ_rows δ
            np.matmul(col.T, d, out=partial[s])
            if not needs_dx:
                return
            rows = d.shape[0]
            grad_col = _parallel.scratch("conv grad col", (_parallel.IMAGE_SHARD * Ho * Wo, K), dtype)
            gc = np.matmul(d, Wm_t, out=grad_col[:rows])  # ∂C/∂col = δ Wmᵀ
            dx = dxp[n]
            dx[...] = 0
            # col2im: each patch's gradient added back where the patch came from; summed over
            # (u, v) this is the full cross-correlation of δ, dilated by the stride, with the
            # kernel rotated by 180°: ∂C/∂x_pad = δ̃ ∗ W
            _kernels.col2im(gc.reshape(-1, Ho, Wo, kh, kw, C), dx, sh, sw)

        _parallel.run(shard, len(parts))
        grad_Wb = _parallel.reduce_in_order(partial, partial[0])  # Σ_s in shard order
        self.grads["W"][...] = grad_Wb[:K].reshape(kh, kw, C, O).transpose(3, 2, 0, 1)
        self.grads["b"][...] = grad_Wb[K]
        if not needs_dx:
            return None
        return nchw(dxp[:, ph : ph + H, pw : pw + W, :])  # ∂C/∂x, without the padding

    def to_onnx(self, graph: Any, x: str) -> str:
        (ph, pw) = self.padding  # ONNX pads: [top, left, bottom, right]
        z = graph.node("Conv", [x, graph.param("W"), graph.param("b")], kernel_shape=list(self.kernel_size),
                       strides=list(self.stride), pads=[ph, pw, ph, pw])  # W (O, C, kh, kw), as ONNX wants
        return graph.activation(self.activation, z)  # a = σ(z)

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v}" for k, v, default in (("stride", self.stride, (1, 1)),
                                                          ("padding", self.padding, (0, 0))) if v != default)
        return (f"Conv2D({self.in_channels}, {self.out_channels}, {self.kernel_size}{extra}, "
                f"activation={self.activation.name!r})")
