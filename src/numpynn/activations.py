"""Activation functions σ and their derivatives σ'.

Every activation works on a mini-batch in row layout: ``z`` has shape
(B, n), one row per sample, and ``a = σ(z)`` has the same shape.

Backpropagation needs one thing from an activation: given the gradient of the
loss with respect to its output, ``∂C/∂a`` (B, n), return the gradient with
respect to its input, the layer's delta ``δ = ∂C/∂z`` (B, n):

- element-wise activations: ``δ = ∂C/∂a ⊙ σ'(z)`` (⊙ is the element-wise product);
- softmax, whose outputs each depend on every input of the row, needs its
  full Jacobian ``∂a_i/∂z_j = a_i (1[i=j] − a_j)``, so
  ``δ_j = a_j (∂C/∂a_j − Σ_i ∂C/∂a_i a_i)``.

All forms here are numerically stable: no overflow warning and no NaN for
|z| up to 1e4 (and far beyond) in float32 and float64.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from . import _kernels
from ._registry import Registry
from .initializers import INITIALIZERS

Array = np.ndarray


#: The built-in activations by name; each registers itself where it is defined
#: (``linear`` is another name for ``identity``).
ACTIVATIONS: Registry[type[Activation]] = Registry("activation")
A = TypeVar("A", bound="type[Activation]")
_ALIASES = {"identity": ("linear",)}


def register_activation(cls: A) -> A:
    """Class decorator: register an :class:`Activation` subclass under its ``name``, so that
    layers, the CLI's choices, model files and ``nn.<ClassName>`` find it."""
    ACTIVATIONS.add(cls.name, cls, *_ALIASES.get(cls.name, ()))
    return cls


class Activation(ABC):
    """An activation σ: a name, ``forward`` (σ), and ``delta`` (∂C/∂z from ∂C/∂a).

    Subclasses implement ``forward(z, out)`` and, for element-wise activations,
    ``derivative(z, a)`` giving σ'(z) (it may use ``a = σ(z)`` when that is
    cheaper). ``init`` names the weight initialisation that suits it.
    """

    name: str = "activation"
    init: str = "glorot"  # Glorot/Xavier for sigmoid, tanh, softmax; He for ReLU
    elementwise: bool = True

    @abstractmethod
    def forward(self, z: Array, out: Array | None = None) -> Array:
        """a = σ(z); (B, n) -> (B, n). Writes into ``out`` when given."""
        ...

    @abstractmethod
    def derivative(self, z: Array, a: Array) -> Array:
        """σ'(z), element-wise, (B, n). ``a`` is σ(z), already computed."""
        ...

    def delta(self, grad_a: Array, z: Array, a: Array) -> Array:
        """δ = ∂C/∂a ⊙ σ'(z); (B, n). May overwrite and return ``grad_a``."""
        grad_a *= self.derivative(z, a)
        return grad_a

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON values), so that ``type(self)(**config())`` is the same σ."""
        return {}

    #: Why σ cannot be written as ONNX operators (None: :meth:`to_onnx` writes it).
    onnx_unsupported: str | None = None

    def to_onnx(self, graph: Any, z: str) -> str:
        """Add σ's ONNX operator to ``graph`` (see :meth:`numpynn.layers.Layer.to_onnx`) for the
        tensor named ``z``; return the name of a = σ(z). The default has no rule."""
        raise NotImplementedError(f"{self.name} has no ONNX rule")

    def __call__(self, z: Array) -> Array:
        return self.forward(np.asarray(z))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


@register_activation
class Sigmoid(Activation):
    """σ(z) = 1 / (1 + e^{−z}), never overflowing: in float32 from rounded float32 additions,
    products and one division (the same bits on every machine, within 2.5 units in the last
    place: ``_kernels.sigmoid32``), in float64 as ½ tanh(z/2) + ½; σ'(z) = σ(z) (1 − σ(z))."""

    name = "sigmoid"

    def forward(self, z: Array, out: Array | None = None) -> Array:
        return _kernels.sigmoid(z, np.empty_like(z) if out is None else out)

    def derivative(self, z: Array, a: Array) -> Array:
        return a * (1.0 - a)

    def delta(self, grad_a: Array, z: Array, a: Array) -> Array:
        # δ = ∂C/∂a ⊙ a ⊙ (1 − a)
        return _kernels.sigmoid_delta(grad_a, a)

    def to_onnx(self, graph: Any, z: str) -> str:
        return graph.node("Sigmoid", [z])


@register_activation
class Tanh(Activation):
    """σ(z) = tanh z; σ'(z) = 1 − tanh² z."""

    name = "tanh"

    def forward(self, z: Array, out: Array | None = None) -> Array:
        return np.tanh(z, out=out)

    def derivative(self, z: Array, a: Array) -> Array:
        return 1.0 - a * a

    def to_onnx(self, graph: Any, z: str) -> str:
        return graph.node("Tanh", [z])


@register_activation
class ReLU(Activation):
    """σ(z) = max(z, 0); σ'(z) = 1 for z > 0, else 0."""

    name = "relu"
    init = "he"

    def forward(self, z: Array, out: Array | None = None) -> Array:
        return _kernels.relu(z, np.empty_like(z) if out is None else out)  # a = max(z, 0)

    def derivative(self, z: Array, a: Array) -> Array:
        return (z > 0).astype(z.dtype)

    def delta(self, grad_a: Array, z: Array, a: Array) -> Array:
        # δ = ∂C/∂a ⊙ 1[z > 0] (a product, not a masked assignment: about 15x faster)
        return _kernels.relu_delta(grad_a, z)

    def to_onnx(self, graph: Any, z: str) -> str:
        return graph.node("Relu", [z])


@register_activation
class LeakyReLU(Activation):
    """σ(z) = z for z > 0, else alpha·z; σ'(z) = 1 for z > 0, else alpha (the slope, 0.01 by default)."""

    name = "leaky_relu"
    init = "he"

    def __init__(self, alpha: float = 0.01) -> None:
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)):
            raise ValueError(f"leaky_relu alpha must be a number, not {alpha!r}")
        self.alpha = float(alpha)

    def forward(self, z: Array, out: Array | None = None) -> Array:
        a = np.where(z > 0, z, self.alpha * z)
        if out is None:
            return a
        np.copyto(out, a)
        return out

    def derivative(self, z: Array, a: Array) -> Array:
        return np.where(z > 0, 1.0, self.alpha).astype(z.dtype)

    def config(self) -> dict[str, Any]:
        return {"alpha": self.alpha}

    def __repr__(self) -> str:
        return f"LeakyReLU(alpha={self.alpha})"

    def to_onnx(self, graph: Any, z: str) -> str:
        return graph.node("LeakyRelu", [z], alpha=self.alpha)


@register_activation
class Identity(Activation):
    """σ(z) = z; σ'(z) = 1 (a linear layer, e.g. for regression)."""

    name = "identity"

    def forward(self, z: Array, out: Array | None = None) -> Array:
        if out is None:
            return z.copy()
        np.copyto(out, z)
        return out

    def derivative(self, z: Array, a: Array) -> Array:
        return np.ones_like(z)

    def delta(self, grad_a: Array, z: Array, a: Array) -> Array:
        return grad_a

    def to_onnx(self, graph: Any, z: str) -> str:
        return z  # a = z: no operator


@register_activation
class Softmax(Activation):
    """a_j = e^{z_j} / Σ_k e^{z_k}, row by row, computed from z − max(z) so it
    never overflows (float32: e^x from float32 additions and products, ``_kernels.softmax``).
    Not element-wise: ``delta`` applies the full Jacobian
    ``∂a_i/∂z_j = a_i (1[i=j] − a_j)``. Paired with cross-entropy the network
    skips this and uses ``δ_L = (a − y)/B`` directly (``CrossEntropy.output_delta``;
    B rows in the batch, the loss being their mean), which needs target rows
    that sum to 1 (docs/math.md, section 3)."""

    name = "softmax"
    elementwise = False

    def forward(self, z: Array, out: Array | None = None) -> Array:
        return _kernels.softmax(z, np.empty_like(z) if out is None else out)

    def derivative(self, z: Array, a: Array) -> Array:
        raise TypeError(
            "softmax has no element-wise derivative: use Softmax.delta (its Jacobian) instead"
        )

    def delta(self, grad_a: Array, z: Array, a: Array) -> Array:
        # δ = Jᵀ ∂C/∂a with J_ij = a_i (1[i=j] − a_j):  δ_j = a_j (g_j − Σ_i g_i a_i)
        grad_a -= np.sum(grad_a * a, axis=-1, keepdims=True)
        grad_a *= a
        return grad_a

    def to_onnx(self, graph: Any, z: str) -> str:
        return graph.node("Softmax", [z], axis=-1)  # over each sample's outputs, as numpynn


class Custom(Activation):
    """A user-defined activation from a function and its derivative, both
    element-wise NumPy functions of z (the classic ``addLayer(nodes, fn, dfn)``).

    >>> swish = Custom(lambda z: z / (1 + np.exp(-z)),
    ...                lambda z: (1 + np.exp(-z) + z * np.exp(-z)) / (1 + np.exp(-z)) ** 2,
    ...                name="swish")
    """

    def __init__(
        self,
        fn: Callable[[Array], Array],
        dfn: Callable[[Array], Array],
        name: str = "custom",
        init: str = "glorot",
    ) -> None:
        if not callable(fn) or not callable(dfn):
            raise TypeError("a custom activation needs two callables: fn(z) and its derivative dfn(z)")
        if init not in INITIALIZERS:
            raise ValueError(f"unknown init {init!r}: use one of {', '.join(INITIALIZERS.names())}")
        self.fn, self.dfn, self.name, self.init = fn, dfn, str(name), init

    onnx_unsupported = "a user-defined activation is Python code, which ONNX operators cannot hold"

    def forward(self, z: Array, out: Array | None = None) -> Array:
        a = np.asarray(self.fn(z), dtype=z.dtype)
        if a.shape != z.shape:
            raise ValueError(f"custom activation {self.name!r} returned shape {a.shape} for {z.shape}")
        if out is None:
            return a
        np.copyto(out, a)
        return out

    def derivative(self, z: Array, a: Array) -> Array:
        d = np.asarray(self.dfn(z), dtype=z.dtype)
        if d.shape != z.shape:
            raise ValueError(f"derivative of {self.name!r} returned shape {d.shape} for {z.shape}")
        return d

    def __repr__(self) -> str:
        return f"Custom(name={self.name!r})"




def get(activation: str | Activation | dict[str, Any]) -> Activation:
    """An :class:`Activation` from its registered name (``"sigmoid"``, ``"relu"``, …: see
    :data:`ACTIVATIONS`), its :func:`spec`, or an instance."""
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        return ACTIVATIONS[activation]()
    if isinstance(activation, dict) and isinstance(activation.get(SPEC_KEY), str):
        params = {k: v for k, v in activation.items() if k != SPEC_KEY}
        if params.pop("custom", False):
            raise ValueError(f"{activation[SPEC_KEY]!r} is a user-defined activation: pass the object itself")
        return ACTIVATIONS[activation[SPEC_KEY]](**params)
    raise TypeError(
        f"activation must be a name or an Activation, not {type(activation).__name__}"
    )


#: The key that marks an activation's spec in a model file's layer configs.
SPEC_KEY = "__activation__"


def spec(activation: Activation) -> dict[str, Any]:
    """A JSON description of an activation: ``{"__activation__": "leaky_relu", "alpha": 0.01}``;
    a user-defined one is ``{"__activation__": "swish", "custom": true}`` (code is never stored)."""
    builtin = ACTIVATIONS.get(activation.name)
    if builtin is None or type(activation) is not builtin:
        return {SPEC_KEY: activation.name, "custom": True}
    return {SPEC_KEY: activation.name, **activation.config()}
