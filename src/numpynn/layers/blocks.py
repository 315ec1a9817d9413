"""Layers made of layers: :class:`Sequential` and :class:`Residual`.

A block is a layer like any other to the network (``build``, ``forward``,
``backward``); inside, it chains its own layers, so blocks nest to any depth.
Its children's parameters are views into the network's one flat θ, laid out
depth first (:func:`~numpynn.layers.base.walk`), so optimisers, checkpoints
and ``gradient_check`` need nothing new.

Residual (He et al., 2016), for a block F and a shortcut S (the identity when
none is given)::

    u = F(x) + S(x),        y = σ(u)
    ∂C/∂u = ∂C/∂y ⊙ σ'(u)
    ∂C/∂x = F'ᵀ ∂C/∂u + S'ᵀ ∂C/∂u     (identity shortcut: + ∂C/∂u itself)

The gradient reaches x along both paths; with the identity shortcut it passes
unchanged, which is why very deep residual networks still learn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _parallel
from .base import LAYERS, Array, Layer, Shape, build_layers, register_layer
from .conv import nchw


def _from_spec(spec: Any) -> Layer:
    """A child layer from its ``{"type": name, "config": {...}}`` (as :meth:`Layer.config` gives it)."""
    if isinstance(spec, Layer):
        return spec
    return LAYERS[spec["type"]].from_config(dict(spec.get("config", {})))


def _spec(layer: Layer) -> dict[str, Any]:
    return {"type": layer.name, "config": layer.config()}


def _layers(layers: Any, owner: str) -> list[Layer]:
    if isinstance(layers, Layer) or not isinstance(layers, Sequence) or isinstance(layers, str):
        raise TypeError(f"{owner} takes a list of layers, not {type(layers).__name__}")
    found = [_from_spec(layer) for layer in layers]
    for i, layer in enumerate(found):
        if not isinstance(layer, Layer):
            raise TypeError(f"{owner}: item {i} is a {type(layer).__name__}, not a numpynn Layer")
    if not found:
        raise ValueError(f"{owner} needs at least one layer")
    return found


class _Block(Layer):
    """What both blocks share: a list of layers run in order, and the tree."""

    def __init__(self, layers: Sequence[Layer]) -> None:
        self.layers: list[Layer] = _layers(layers, type(self).__name__)
        super().__init__()

    def named_children(self) -> list[tuple[str, Layer]]:
        return [(f"layers.{i}", layer) for i, layer in enumerate(self.layers)]

    def default_input_shape(self) -> Shape | None:
        return self.layers[0].default_input_shape()  # a block first in a network: its first layer's

    @property
    def needs_input_grad(self) -> bool:
        return self._needs_input_grad

    @needs_input_grad.setter
    def needs_input_grad(self, flag: bool) -> None:
        # a child needs ∂C/∂x when the block does, or when a layer of the block below it has θ
        self._needs_input_grad = below = bool(flag)
        for layer in self.layers:
            layer.needs_input_grad = below
            below = below or layer.n_params > 0

    def _forward(self, x: Array, training: bool) -> Array:
        for layer in self.layers:
            x = layer.forward(x, training)  # y_l = f_l(y_{l−1}) inside the block
        return x

    def _backward(self, grad: Array) -> Array | None:
        for layer in reversed(self.layers):
            grad = layer.backward(grad)  # each child's own chain rule, last to first
            if grad is None:
                break  # nothing below needs it (the first layers of the network)
        return grad


@register_layer
class Sequential(_Block):
    """Layers applied in order, as one layer: ``Sequential([Conv2D(…), BatchNorm2D(…)])``."""

    def config(self) -> dict[str, Any]:
        return {"layers": [_spec(layer) for layer in self.layers]}

    def build(self, input_shape: Shape) -> Shape:
        return build_layers(self.layers, input_shape)

    def forward(self, x: Array, training: bool = False) -> Array:
        return self._forward(x, training)

    def backward(self, grad_y: Array) -> Array | None:
        return self._backward(grad_y)

    def to_onnx(self, graph: Any, x: str) -> str:
        return graph.children(self, x)

    def __repr__(self) -> str:
        return f"Sequential([{', '.join(map(repr, self.layers))}])"


@register_layer
class Residual(_Block):
    """y = σ(F(x) + S(x)): the block F (a list of layers) beside a shortcut S (a layer;
    None is the identity), added, then the activation σ (``"identity"`` by default)."""

    def __init__(self, block: Sequence[Layer], shortcut: Layer | dict[str, Any] | None = None,
                 activation: Any = "identity") -> None:
        from .. import activations

        super().__init__(block)
        self.shortcut: Layer | None = None if shortcut is None else _from_spec(shortcut)
        if self.shortcut is not None and not isinstance(self.shortcut, Layer):
            raise TypeError(f"Residual shortcut must be a layer or None, not {type(shortcut).__name__}")
        self.activation = activations.get(activation)
        if not self.activation.elementwise:
            raise ValueError(f"Residual activation must be element-wise, not {self.activation.name}")

    def config(self) -> dict[str, Any]:
        return {"block": [_spec(layer) for layer in self.layers],
                "shortcut": None if self.shortcut is None else _spec(self.shortcut),
                "activation": self.activation}

    def named_children(self) -> list[tuple[str, Layer]]:
        return super().named_children() + ([("shortcut", self.shortcut)] if self.shortcut else [])

    @property
    def needs_input_grad(self) -> bool:
        return self._needs_input_grad

    @needs_input_grad.setter
    def needs_input_grad(self, flag: bool) -> None:
        _Block.needs_input_grad.fset(self, flag)  # type: ignore[attr-defined]
        if getattr(self, "shortcut", None) is not None:
            self.shortcut.needs_input_grad = bool(flag)

    def build(self, input_shape: Shape) -> Shape:
        out = build_layers(self.layers, input_shape)
        short = input_shape if self.shortcut is None else build_layers([self.shortcut], input_shape)
        if out != short:
            via = "the identity shortcut" if self.shortcut is None else f"the shortcut ({self.shortcut.name})"
            raise ValueError(f"the block gives {out} per sample but {via} gives {short}: they cannot be "
                             "added (give a shortcut that maps the input to the block's shape)")
        return out

    # The block's own arithmetic runs on the batch's fixed shards of 512 samples (numpynn._parallel;
    # a batch of up to 512 is one shard, on the calling thread: shards of 16 images were no faster
    # on 2 threads); element-wise only, so the bits never depend on the shards or the thread count.
    # Images keep the channels-last memory the convolutions and batch norms write (no transposing
    # copies into the next convolution).
    def _shards(self, t: Array) -> list[slice]:
        return _parallel.shards(t.shape[0], _parallel.DENSE_SHARD)

    def _like(self, key: str, t: Array) -> Array:
        """A reusable buffer of t's shape; for images (B, C, H, W) a view of channels-last memory."""
        if t.ndim == 4:
            B, C, H, W = t.shape
            return nchw(self.buffer(key, (B, H, W, C), t.dtype))
        return self.buffer(key, t.shape, t.dtype)

    def forward(self, x: Array, training: bool = False) -> Array:
        f = self._forward(x, training)  # F(x)
        s = x if self.shortcut is None else self.shortcut.forward(x, training)  # S(x)
        u, a = self._like("u", f), self._like("a", f)
        s = s.reshape(f.shape)
        parts = self._shards(f)

        def add(i: int) -> None:
            r = parts[i]
            np.add(f[r], s[r], out=u[r])  # u = F(x) + S(x)
            self.activation.forward(u[r], out=a[r])  # y = σ(u)

        _parallel.run(add, len(parts))
        self.u, self.a = u, a
        return a

    def backward(self, grad_y: Array) -> Array | None:
        grad_u, parts = self._like("grad_u", self.u), self._shards(self.u)
        # the shortcut gets its own copy of ∂C/∂u: the block's backward may overwrite grad_u in place
        copy = self._like("grad_s", self.u) if self.shortcut is not None or self.needs_input_grad else None

        def delta(i: int) -> None:
            r = parts[i]
            g = grad_u[r]
            np.copyto(g, grad_y[r])
            d = self.activation.delta(g, self.u[r], self.a[r])  # ∂C/∂u = ∂C/∂y ⊙ σ'(u)
            if d is not g:  # an activation whose delta returns a new array
                g[...] = d
            if copy is not None:
                np.copyto(copy[r], g)

        _parallel.run(delta, len(parts))
        if self.shortcut is None:
            grad_s = copy  # S'ᵀ ∂C/∂u = ∂C/∂u
        else:
            grad_s = self.shortcut.backward(copy)  # S'ᵀ ∂C/∂u (its ∇θ on the way)
        grad_f = self._backward(grad_u)  # F'ᵀ ∂C/∂u (each child's ∇θ on the way)
        if not self.needs_input_grad:
            return None
        assert grad_f is not None and grad_s is not None
        grad_f = grad_f.reshape(grad_s.shape)

        def add(i: int) -> None:
            r = parts[i]
            grad_s[r] += grad_f[r]  # ∂C/∂x = F'ᵀ ∂C/∂u + S'ᵀ ∂C/∂u

        _parallel.run(add, len(parts))
        return grad_s

    def to_onnx(self, graph: Any, x: str) -> str:
        f = graph.children(self, x, self.layers)
        s = x if self.shortcut is None else graph.children(self, x, [self.shortcut])
        return graph.activation(self.activation, graph.node("Add", [f, s]))

    def __repr__(self) -> str:
        short = "" if self.shortcut is None else f", shortcut={self.shortcut!r}"
        act = "" if self.activation.name == "identity" else f", activation={self.activation.name!r}"
        return f"Residual([{', '.join(map(repr, self.layers))}]{short}{act})"
