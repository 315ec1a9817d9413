"""Normalization: BatchNorm1D, BatchNorm2D (Ioffe & Szegedy, 2015) and LayerNorm (Ba et al., 2016).

Batch normalization, per channel c, over the n values of that channel in the batch
(n = B for BatchNorm1D on (B, F); n = B·H·W for BatchNorm2D on (B, C, H, W)):

    μ_B  = (1/n) Σ x                         the batch mean
    σ²_B = (1/n) Σ (x − μ_B)²                the biased batch variance
    x̂    = (x − μ_B) / √(σ²_B + ε)           (σ_B below stands for √(σ²_B + ε))
    z    = γ x̂ + β,   a = σ(z)               γ (gamma), β (beta): parameters, one per channel

While training, the running statistics follow the batches (as PyTorch defines momentum):

    running_mean ← (1 − m)·running_mean + m·μ_B
    running_var  ← (1 − m)·running_var  + m·σ²_B·n/(n − 1)     (the unbiased variance)

and at inference (``training=False``: predict, evaluate) x̂ = (x − running_mean)/√(running_var + ε),
a fixed affine map of x. Backward, given ∂C/∂a, with g = δ = ∂C/∂z = ∂C/∂a ⊙ σ'(z)
(docs/normalization.md derives it through μ_B and σ²_B):

    ∇γ = Σ g ⊙ x̂,   ∇β = Σ g                                  (sums over batch and positions)
    ∂C/∂x = (γ/σ_B)·(g − mean(g) − x̂·mean(g ⊙ x̂))           training
    ∂C/∂x = g·γ/√(running_var + ε)                           inference

LayerNorm is the same algebra over the other axis: the statistics of each sample over its F
features, γ and β one per feature, the same at training and inference, no running statistics:

    ∂C/∂x = (1/σ)·(ĝ − mean_F(ĝ) − x̂·mean_F(ĝ ⊙ x̂)),   ĝ = g ⊙ γ

(γ varies along the normalized axis here, so it stays inside as ĝ). BatchNorm2D works on
channels-last memory, as Conv2D does: it reads a convolution's output with no copy and returns
a (B, C, H, W) view of (B, H, W, C) buffers. Values and shapes are PyTorch's (``BatchNorm1d``,
``BatchNorm2d``, ``LayerNorm``) in every case.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _kernels, _parallel
from ..activations import Activation
from .base import Array, Layer, Shape, register_layer, whole
from .conv import nchw, nhwc

#: The fewest values (rows × columns) a block of a batch norm's columns is given before its passes
#: use another thread. The passes are bound by memory, not arithmetic: on 2 cores a second thread
#: gained at most 10% on 3.2 M values (batch 256 of 16×28×28) and lost below about 1 M
#: (docs/benchmarks.md), so a batch of 64 such images stays on one thread.
NORM_BLOCK_MIN = 1 << 20


def _probability(layer: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{layer} momentum must be a number in [0, 1], not {value!r}")
    return float(value)


def _positive(layer: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not value > 0.0:
        raise ValueError(f"{layer} eps must be a positive number, not {value!r}")
    return float(value)


def _elementwise(layer: str, activation: Any) -> Activation:
    from .. import activations

    act = activations.get(activation)
    if not act.elementwise:
        raise ValueError(f"{layer} cannot use {act.name}, which only suits the output layer")
    return act


class _BatchNorm(Layer):
    """What both batch normalizations share: the statistics per channel and the chain rule
    through them, on "wide rows" (B, P·C): each sample's values channels last, P positions of
    C channels (P = 1 for BatchNorm1D, H·W for BatchNorm2D). A vector per channel is tiled P
    times along a row, so every step is a whole-array operation with a long inner loop, and
    a sum per channel is one over the batch (rows), then one over the P positions."""

    def __init__(self, channels: int, momentum: float, eps: float, activation: Any, what: str) -> None:
        super().__init__()
        self.channels = whole(self.name, what, channels)
        self.momentum = _probability(self.name, momentum)
        self.eps = _positive(self.name, eps)
        self.activation = _elementwise(self.name, activation)
        self.training = False  # the mode of the last forward pass
        self.xhat: Array = np.empty((0, self.channels))  # x̂ of the last forward pass, wide rows (B, P·C)
        self.inv_std: Array = np.ones(self.channels)  # 1/σ_B (training) or 1/√(running_var + ε), (C,)
        self.z: Array = np.empty((0, self.channels))  # z = γ x̂ + β, wide rows
        self.a: Array = np.empty((0, self.channels))  # a = σ(z), wide rows

    # --- the layout: BatchNorm2D overrides these three ---------------------------------------
    @property
    def positions(self) -> int:
        """P, the values of each channel in one sample."""
        return 1

    def _wide(self, x: Array, key: str) -> Array:
        """x as wide rows (B, P·C): a view when its memory is channels last, else a copy into
        the buffer ``key``."""
        return x

    def _unwide(self, w: Array) -> Array:
        """Wide rows (B, P·C) as the layer's shape (B, F) or (B, C, H, W), a view."""
        return w

    # --- per-channel helpers ----------------------------------------------------------------
    def _tile(self, v: Array) -> Array:
        """A vector per channel (C,) along a wide row: (P·C,)."""
        return v if self.positions == 1 else np.tile(v, self.positions)

    def _per_channel(self, w: Array) -> Array:
        """A sum over the batch along a wide row (P·C,) summed over the P positions: (C,)."""
        return w.reshape(self.positions, self.channels).sum(axis=0)

    def _blocks(self, rows: int, width: int) -> list[tuple[int, int]]:
        """The wide rows' columns cut into blocks [c0, c1), one per thread that gets at least
        :data:`NORM_BLOCK_MIN` values. A column's statistics are sums over all the rows (added in
        row order) and touch no other column, so each block is a whole piece of work with nothing
        to add up afterwards, and the bits are the same however the columns are split: the thread
        count may choose the blocks (numpynn._parallel)."""
        n = max(1, min(_parallel.threads(), rows * width // NORM_BLOCK_MIN))
        per_block = -(-width // n)  # ⌈width/n⌉ columns
        step = -(-per_block // 16) * 16  # rounded up to whole 64-byte lines of float32
        return [(c, min(c + step, width)) for c in range(0, width, step)]

    def _each_block(self, rows: int, width: int) -> Any:
        """``each_block(kernel)``: ``kernel(c0, c1)`` for every block of :meth:`_blocks`, on
        numpynn's threads."""
        blocks = self._blocks(rows, width)
        return lambda kernel: _parallel.run(lambda k: kernel(*blocks[k]), len(blocks))

    def _declare(self) -> None:
        self.add_param("gamma", (self.channels,), "ones")
        self.add_param("beta", (self.channels,), "zeros")
        self.add_state("running_mean", (self.channels,), "zeros")
        self.add_state("running_var", (self.channels,), "ones")

    def forward(self, x: Array, training: bool = False) -> Array:
        """a = σ(γ x̂ + β), x̂ from the batch's statistics (training) or the running ones.
        Keeps x̂, 1/σ, z and a; the returned array is a reusable buffer. Each pass runs on blocks
        of columns (see :meth:`_blocks`), on numpynn's threads; σ on the calling thread."""
        gamma, beta = self.params["gamma"], self.params["beta"]
        dtype = gamma.dtype
        xw = self._wide(x, "x")  # (B, P·C)
        B, width = xw.shape
        n = B * self.positions  # values per channel
        xhat = self.buffer("xhat", xw.shape, dtype)
        z = self.buffer("z", xw.shape, dtype)
        a = self.output_buffer(z)  # z itself for the identity
        each_block = self._each_block(B, width)
        if training:
            if n == 1:
                raise ValueError(f"{self.name} needs more than 1 value per channel when training, but "
                                 f"gets a batch of 1 of shape {tuple(x.shape[1:])}: train on batches of 2 "
                                 "or more (pick a batch_size that leaves no last batch of 1)")
            sums = self.buffer("sums", (width,), dtype)  # a sum over the batch per column
            each_block(lambda c0, c1: _kernels.column_sums(xw, sums, c0, c1))  # Σ x
            mean = self._per_channel(sums) / n  # μ_B = (1/n) Σ x
            mu = self._tile(mean)
            # x̂ holds x − μ_B for now; z is the reference's scratch
            each_block(lambda c0, c1: _kernels.centre(xw, xhat, mu, sums, c0, c1, z))  # Σ (x − μ_B)²
            var = self._per_channel(sums) / n  # σ²_B  (biased)
            inv_std = 1.0 / np.sqrt(var + self.eps)  # 1/σ_B = 1/√(σ²_B + ε)
            m = self.momentum
            running_mean, running_var = self.state["running_mean"], self.state["running_var"]
            running_mean *= 1.0 - m  # running_mean ← (1 − m)·running_mean + m·μ_B
            running_mean += m * mean
            running_var *= 1.0 - m  # running_var ← (1 − m)·running_var + m·σ²_B·n/(n − 1)
            running_var += (m * n / (n - 1)) * var
        else:
            inv_std = 1.0 / np.sqrt(self.state["running_var"] + self.eps)  # 1/√(running_var + ε)
            np.subtract(xw, self._tile(self.state["running_mean"]), out=xhat)  # x − running_mean
        scale, gamma_t, beta_t = self._tile(inv_std), self._tile(gamma), self._tile(beta)
        # x̂ = (x − μ)/σ, z = γ x̂ + β
        each_block(lambda c0, c1: _kernels.normalize(xhat, z, scale, gamma_t, beta_t, c0, c1))
        if a is not z:
            self.activation.forward(z, out=a)  # a = σ(z)
        self.training, self.xhat, self.inv_std, self.z, self.a = training, xhat, inv_std, z, a
        return self._unwide(a)

    def backward(self, grad_y: Array) -> Array | None:
        """Given ∂C/∂a, write ∇γ, ∇β and return ∂C/∂x (a reusable buffer), in the mode of the
        last forward pass: through the batch's statistics, or the fixed affine map. The sums
        and ∂C/∂x run on blocks of columns (see :meth:`_blocks`)."""
        g = self._wide(grad_y, "grad_y")  # ∂C/∂a, overwritten by δ below
        B, width = g.shape
        each_block = self._each_block(B, width)
        d = self.activation.delta(g, self.z, self.a)  # g = δ = ∂C/∂a ⊙ σ'(z)
        if d is not g:  # an activation that returns a new array
            g[...] = d
        sums = self.buffer("sums", (width,), g.dtype)  # Σ g per column
        sums_x = self.buffer("sums_x", (width,), g.dtype)  # Σ g ⊙ x̂ per column
        grad_x = self.buffer("grad_x", g.shape, g.dtype)
        xhat = self.xhat
        # Σ g and Σ g ⊙ x̂ per column (grad_x is the reference's scratch)
        each_block(lambda c0, c1: _kernels.grad_sums(g, xhat, sums, sums_x, c0, c1, grad_x))
        grad_gamma, grad_beta = self.grads["gamma"], self.grads["beta"]
        grad_gamma[...] = self._per_channel(sums_x)  # ∇γ = Σ g ⊙ x̂
        grad_beta[...] = self._per_channel(sums)  # ∇β = Σ g
        if not self.needs_input_grad:
            return None
        scale = self._tile(self.params["gamma"] * self.inv_std)  # γ/σ
        if not self.training:
            np.multiply(g, scale, out=grad_x)  # ∂C/∂x = g·γ/√(running_var + ε)
            return self._unwide(grad_x)
        n = B * self.positions
        mean_gx, mean_g = self._tile(grad_gamma / n), self._tile(grad_beta / n)  # mean(g ⊙ x̂), mean(g)
        # ∂C/∂x = (γ/σ_B)·(g − mean(g) − x̂·mean(g ⊙ x̂))
        each_block(lambda c0, c1: _kernels.input_grad(g, xhat, mean_g, mean_gx, scale, grad_x, c0, c1))
        return self._unwide(grad_x)

    def to_onnx(self, graph: Any, x: str) -> str:
        y = graph.node("BatchNormalization", [  # y = γ (x − mean)/√(var + ε) + β, per channel (axis 1)
            x, graph.param("gamma"), graph.param("beta"),
            graph.constant("running_mean", self.state["running_mean"].astype(np.float32)),
            graph.constant("running_var", self.state["running_var"].astype(np.float32))], epsilon=self.eps)
        return graph.activation(self.activation, y)  # a = σ(y)

    def _extra(self) -> str:
        return "".join(f", {k}={v!r}" for k, v, default in (
            ("momentum", self.momentum, 0.1), ("eps", self.eps, 1e-5),
            ("activation", self.activation.name, "identity")) if v != default)


@register_layer
class BatchNorm1D(_BatchNorm):
    """Batch normalization of rows (B, F), per feature over the batch (PyTorch's ``BatchNorm1d``),
    then σ: ``a = σ(γ x̂ + β)``.

    Parameters
    ----------
    num_features:
        F, the features per row (checked against the input).
    momentum:
        The weight of each batch in the running statistics (PyTorch's convention: 0.1).
    eps:
        ε, added to the variance.
    activation:
        An element-wise σ applied after the affine step (``"identity"`` by default).

    Parameters ``gamma`` (ones) and ``beta`` (zeros); state ``running_mean`` (zeros) and
    ``running_var`` (ones), used by predict and evaluate, never changed by an optimiser.
    """

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5,
                 activation: str | Activation = "identity") -> None:
        super().__init__(num_features, momentum, eps, activation, "num_features")

    @property
    def num_features(self) -> int:
        return self.channels

    def config(self) -> dict[str, Any]:
        return {"num_features": self.channels, "momentum": self.momentum, "eps": self.eps,
                "activation": self.activation}

    def default_input_shape(self) -> Shape:
        return (self.channels,)

    def build(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 1:
            raise ValueError(f"expects rows of {self.channels} features but gets inputs of shape "
                             f"{tuple(input_shape)} (use BatchNorm2D for images, or a Flatten() before it)")
        if input_shape[0] != self.channels:
            raise ValueError(f"BatchNorm1D has num_features={self.channels} but gets {input_shape[0]} "
                             "features per row")
        self._declare()
        return tuple(input_shape)

    def __repr__(self) -> str:
        return f"BatchNorm1D({self.channels}{self._extra()})"


@register_layer
class BatchNorm2D(_BatchNorm):
    """Batch normalization of images (B, C, H, W), per channel over the batch and every position
    (PyTorch's ``BatchNorm2d``), then σ; the arguments are those of :class:`BatchNorm1D`, with
    C = ``num_channels``. Returns a (B, C, H, W) view of channels-last memory, as Conv2D does."""

    def __init__(self, num_channels: int, momentum: float = 0.1, eps: float = 1e-5,
                 activation: str | Activation = "identity") -> None:
        super().__init__(num_channels, momentum, eps, activation, "num_channels")

    @property
    def num_channels(self) -> int:
        return self.channels

    def config(self) -> dict[str, Any]:
        return {"num_channels": self.channels, "momentum": self.momentum, "eps": self.eps,
                "activation": self.activation}

    def build(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 3:
            raise ValueError(f"expects images (channels, height, width) but gets inputs of shape "
                             f"{tuple(input_shape)} (use BatchNorm1D for rows of features)")
        if input_shape[0] != self.channels:
            raise ValueError(f"BatchNorm2D has num_channels={self.channels} but gets {input_shape[0]} "
                             "channels")
        self._declare()
        return tuple(input_shape)

    @property
    def positions(self) -> int:
        return self.input_shape[1] * self.input_shape[2]  # H·W

    def _wide(self, x: Array, key: str) -> Array:
        xs = nhwc(x)  # (B, C, H, W) -> (B, H, W, C), a view
        if not xs.flags.c_contiguous:  # channels-first memory (e.g. from Reshape, or Flatten's ∂C/∂y)
            copy = self.buffer(key, xs.shape, xs.dtype)
            np.copyto(copy, xs)
            xs = copy
        return xs.reshape(xs.shape[0], -1)  # (B, H·W·C), a view

    def _unwide(self, w: Array) -> Array:
        C, H, W = self.input_shape
        return nchw(w.reshape(w.shape[0], H, W, C))  # (B, H·W·C) -> (B, C, H, W), a view

    def __repr__(self) -> str:
        return f"BatchNorm2D({self.channels}{self._extra()})"


@register_layer
class LayerNorm(Layer):
    """Layer normalization of rows (B, F): each sample over its own F features (PyTorch's
    ``LayerNorm(F)``), ``y = γ ⊙ (x − μ)/√(σ² + ε) + β`` with γ (gamma, ones) and β (beta,
    zeros) one per feature. The same at training and inference: no running statistics."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = whole("LayerNorm", "num_features", num_features)
        self.eps = _positive("LayerNorm", eps)
        self.xhat: Array = np.empty((0, self.num_features))  # x̂ of the last forward pass (B, F)
        self.inv_std: Array = np.empty((0, 1))  # 1/σ of each row (B, 1)

    def config(self) -> dict[str, Any]:
        return {"num_features": self.num_features, "eps": self.eps}

    def default_input_shape(self) -> Shape:
        return (self.num_features,)

    def build(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 1:
            raise ValueError(f"expects rows of {self.num_features} features but gets inputs of shape "
                             f"{tuple(input_shape)} (put a Flatten() before it)")
        if input_shape[0] != self.num_features:
            raise ValueError(f"LayerNorm has num_features={self.num_features} but gets {input_shape[0]} "
                             "features per row")
        self.add_param("gamma", (self.num_features,), "ones")
        self.add_param("beta", (self.num_features,), "zeros")
        return tuple(input_shape)

    def forward(self, x: Array, training: bool = False) -> Array:
        """y = γ x̂ + β with each row's statistics; (B, F) -> (B, F), a reusable buffer."""
        B, F = x.shape
        dtype = self.params["gamma"].dtype
        xhat = self.buffer("xhat", (B, F), dtype)
        np.subtract(x, np.mean(x, axis=1, keepdims=True, dtype=dtype), out=xhat)  # x − μ, μ = (1/F) Σ_f x
        var = np.einsum("bf,bf->b", xhat, xhat) / F  # σ² = (1/F) Σ_f (x − μ)²  (biased)
        inv_std = self.buffer("inv_std", (B, 1), dtype)
        np.sqrt(var[:, None] + self.eps, out=inv_std)
        np.divide(1.0, inv_std, out=inv_std)  # 1/σ = 1/√(σ² + ε), per row
        xhat *= inv_std  # x̂ = (x − μ)/σ
        y = np.multiply(xhat, self.params["gamma"], out=self.buffer("y", (B, F), dtype))  # y = γ x̂ + β
        y += self.params["beta"]
        self.xhat, self.inv_std = xhat, inv_std
        return y

    def backward(self, grad_y: Array) -> Array | None:
        """Given g = ∂C/∂y (B, F), write ∇γ, ∇β and return ∂C/∂x (B, F), a reusable buffer."""
        g, xhat = grad_y, self.xhat
        np.einsum("bf,bf->f", g, xhat, out=self.grads["gamma"])  # ∇γ = Σ_rows g ⊙ x̂
        np.sum(g, axis=0, out=self.grads["beta"])  # ∇β = Σ_rows g
        if not self.needs_input_grad:
            return None
        F = g.shape[1]
        gh = np.multiply(g, self.params["gamma"], out=self.buffer("grad_x", g.shape, g.dtype))  # ĝ = g ⊙ γ
        mean_gh = np.mean(gh, axis=1, keepdims=True)  # mean_F(ĝ)
        mean_ghx = np.einsum("bf,bf->b", gh, xhat)[:, None] / F  # mean_F(ĝ ⊙ x̂)
        gh -= mean_gh  # ĝ − mean_F(ĝ)
        gh -= np.multiply(xhat, mean_ghx, out=self.buffer("xhat_m", g.shape, g.dtype))  # − x̂·mean_F(ĝ ⊙ x̂)
        gh *= self.inv_std  # ∂C/∂x = (1/σ)·(ĝ − mean_F(ĝ) − x̂·mean_F(ĝ ⊙ x̂))
        return gh

    def to_onnx(self, graph: Any, x: str) -> str:
        return graph.node("LayerNormalization", [x, graph.param("gamma"), graph.param("beta")],
                          axis=-1, epsilon=self.eps)  # y = γ (x − μ)/√(σ² + ε) + β over the features

    def __repr__(self) -> str:
        return f"LayerNorm({self.num_features}{'' if self.eps == 1e-5 else f', eps={self.eps!r}'})"
