"""The layer protocol: what every layer, built in or your own, provides.

A layer is a module with its chain rule beside its forward pass::

    build(input_shape) -> output_shape     once, when the network is made: declare
                                           parameters with add_param, state with add_state
    forward(x, training) -> y              x (B, *input_shape) -> y (B, *output_shape)
    backward(grad_y) -> grad_x             ∂C/∂y -> ∂C/∂x, filling self.grads on the way
    config() -> dict                       constructor arguments, to save and rebuild it

``self.params[name]`` and ``self.grads[name]`` are views into the network's
flat parameter vector θ and gradient vector ∇θ, so one optimiser step updates
every layer at once. ``backward`` is the layer's *local* chain rule: it is
given ∂C/∂y for its own output and returns ∂C/∂x for its own input; the
network only chains these calls, from the last layer to the first.

``self.state[name]`` (declared with ``add_state``) is an array a layer keeps
that is not a parameter, e.g. batch normalization's running mean: saved in
model files and checkpoints, never touched by an optimiser. A layer made of
layers (:mod:`~numpynn.layers.blocks`) lists them in :meth:`Layer.named_children`;
the network walks the tree (:func:`walk`), so nested parameters are views into
the same flat θ.

Shapes exclude the batch axis: a Dense layer of 784 inputs has
``input_shape == (784,)`` and receives ``x`` of shape (B, 784).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import numpy as np

from .. import initializers
from .._checks import whole_number
from .._registry import Registry

Array = np.ndarray
Shape = tuple[int, ...]
L = TypeVar("L", bound=type["Layer"])

#: Layer types by class name: what a model file's ``{"type": "Dense", ...}`` resolves to.
LAYERS: Registry[type[Layer]] = Registry("layer type", fold_case=False)


def register_layer(cls: L) -> L:
    """Class decorator: make a :class:`Layer` subclass loadable from model files by its name.

    Defining the same class again (its module and name unchanged, e.g. re-running a
    notebook cell) replaces the earlier definition; another class of the same name
    from elsewhere is refused, so it cannot shadow a built-in layer.
    """
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError(f"register_layer takes a Layer subclass, not {cls!r}")
    old = LAYERS.get(cls.__name__)
    if old is not None and old is not cls and (old.__module__, old.__qualname__) != (
            cls.__module__, cls.__qualname__):
        raise ValueError(f"a layer type named {cls.__name__!r} is already registered (from "
                         f"{old.__module__}): give yours another name")
    LAYERS.add(cls.__name__, cls, replace=True)
    return cls


class ParamSpec(NamedTuple):
    """A parameter declared by :meth:`Layer.add_param`."""

    name: str
    shape: Shape
    init: Callable[[np.random.Generator, Shape], Array]


class StateSpec(NamedTuple):
    """An array of state declared by :meth:`Layer.add_state`."""

    name: str
    shape: Shape
    init: Callable[[np.random.Generator, Shape], Array]


class Layer(ABC):
    """Base class of layers; see the module docstring for the protocol.

    Attributes a network sets: ``input_shape``, ``output_shape`` (from
    :meth:`build`), ``params``/``grads`` (views, once the network has
    allocated θ), ``needs_input_grad`` (False when no layer below has
    parameters, e.g. for the first layer: its ``backward`` may then return None
    instead of ∂C/∂x), and ``rng`` (a generator a
    stochastic layer such as Dropout draws from; the network reseeds it from
    its seed and the epoch, so seeded training is reproducible).
    """

    def __init__(self) -> None:
        self.params: dict[str, Array] = {}
        self.grads: dict[str, Array] = {}
        self.specs: list[ParamSpec] = []
        self.state: dict[str, Array] = {}
        self.state_specs: list[StateSpec] = []
        self.input_shape: Shape = ()
        self.output_shape: Shape = ()
        self.needs_input_grad = True
        self.rng = np.random.default_rng(0)
        self._buffers: dict[str, Array] = {}

    # --- the protocol ---------------------------------------------------------------
    def build(self, input_shape: Shape) -> Shape:
        """Declare parameters (:meth:`add_param`) for inputs of ``input_shape``
        and return the output shape. Raise ``ValueError`` for a shape this
        layer cannot take. The default has no parameters and keeps the shape."""
        return input_shape

    @abstractmethod
    def forward(self, x: Array, training: bool = False) -> Array:
        """y = f(x); (B, *input_shape) -> (B, *output_shape). Keep what backward needs."""

    @abstractmethod
    def backward(self, grad_y: Array) -> Array | None:
        """Given ∂C/∂y (B, *output_shape), write ``self.grads`` and return ∂C/∂x
        (B, *input_shape), or None when ``needs_input_grad`` is False. Called
        after :meth:`forward` on the same batch; may overwrite ``grad_y``."""

    def config(self) -> dict[str, Any]:
        """Constructor arguments, so that ``from_config(config())`` makes the same layer.
        Values should be JSON numbers, strings, lists or dicts (activations are allowed too)."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        return cls(**config)

    #: Why this layer cannot be written as ONNX operators, said by ``numpynn export`` in one
    #: line; None when :meth:`to_onnx` writes it (or when it has no rule at all).
    onnx_unsupported: str | None = None

    def to_onnx(self, graph: Any, x: str) -> str:
        """Add this layer's ONNX operators to ``graph`` for the input tensor named ``x`` and
        return the name of its output tensor. ``graph`` is :class:`numpynn.export.onnx.OnnxGraph`:
        ``graph.node(op, inputs, **attributes)``, ``graph.param(name)`` (a parameter as float32),
        ``graph.constant(name, value)``, ``graph.activation(σ, z)``. The default has no rule."""
        raise NotImplementedError(f"{self.name} has no ONNX rule")

    def default_input_shape(self) -> Shape | None:
        """The input shape this layer implies as the first layer (Dense: ``(n_in,)``), if any."""
        return None

    # --- parameters -------------------------------------------------------------------
    def add_param(self, name: str, shape: Shape | int,
                  init: str | Callable[[np.random.Generator, Shape], Array] = "zeros") -> None:
        """Declare a parameter, called from :meth:`build`.

        ``init`` is ``init(rng, shape) -> values`` or the name of one
        (``"zeros"``, ``"ones"``, ``"glorot"``, ``"he"``). The network draws
        every initial value from its seeded generator, layer by layer, in the
        order of the ``add_param`` calls, then ``self.params[name]`` and
        ``self.grads[name]`` are views of that shape into θ and ∇θ.
        """
        self._check_name(name, shape)
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        self.specs.append(ParamSpec(name, tuple(int(d) for d in shape), initializers.get(init)))

    def add_state(self, name: str, shape: Shape | int,
                  init: str | Callable[[np.random.Generator, Shape], Array] = "zeros") -> None:
        """Declare an array of state, called from :meth:`build`: not a parameter (no gradient,
        no optimiser step), but saved in model files and checkpoints and restored on load and
        resume. ``self.state[name]`` is a view of that shape into the network's flat state
        vector, filled with ``init`` (as in :meth:`add_param`) when the network is made."""
        self._check_name(name, shape)
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        self.state_specs.append(StateSpec(name, tuple(int(d) for d in shape), initializers.get(init)))

    def _check_name(self, name: str, shape: Any) -> None:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"a parameter or state name must be an identifier, not {name!r}")
        if any(spec.name == name for spec in (*self.specs, *self.state_specs)):
            raise ValueError(f"{name!r} is declared twice")
        dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1 for d in dims):
            raise ValueError(f"{name!r} needs a shape of positive whole numbers, not {dims}")

    def named_children(self) -> list[tuple[str, Layer]]:
        """The layers this layer is made of, each with its name in the tree (a block's
        ``("layers.0", …)``, a residual's ``("shortcut", …)``); none for a plain layer."""
        return []

    @property
    def n_params(self) -> int:
        """Parameters of this layer and of the layers it is made of."""
        own = sum(math.prod(spec.shape) for spec in self.specs)
        return own + sum(child.n_params for _, child in self.named_children())

    @property
    def n_state(self) -> int:
        """Values of state of this layer and of the layers it is made of."""
        own = sum(math.prod(spec.shape) for spec in self.state_specs)
        return own + sum(child.n_state for _, child in self.named_children())

    @property
    def name(self) -> str:
        return type(self).__name__

    # --- helpers for subclasses -------------------------------------------------------
    def buffer(self, key: str, shape: Shape, dtype: np.dtype, zeros: bool = False,
               fill: float | None = None) -> Array:
        """A reusable array of ``shape`` (batch first), kept between calls and grown
        when a larger batch comes: no allocation in the training loop. With ``zeros``
        (or ``fill``) it starts as zeros (that value): what the caller never writes keeps it."""
        buf = self._buffers.get(key)
        if buf is None or buf.dtype != dtype or buf.shape[1:] != shape[1:] or buf.shape[0] < shape[0]:
            buf = self._buffers[key] = np.full(shape, 0 if fill is None else fill, dtype) if (
                zeros or fill is not None) else np.empty(shape, dtype)
        return buf[: shape[0]]

    def output_buffer(self, z: Array) -> Array:
        """Where a layer with an ``activation`` puts a = σ(z): ``z`` itself when σ is the identity
        (a = z: nothing to copy; the caller skips σ when the two are one), else its reusable
        ``"a"`` buffer of z's shape."""
        from ..activations import Identity

        if type(getattr(self, "activation", None)) is Identity:
            return z
        return self.buffer("a", z.shape, z.dtype)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{self.name}({args})"


def whole(layer: str, name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int, refused (one line naming the layer) unless a whole number >= minimum."""
    return whole_number(value, f"{layer} {name}", minimum)


def activation_and_init(activation: Any, init: str | None) -> tuple[Any, str]:
    """The activation (from its name or itself) and the init that suits it unless one is given."""
    from .. import activations

    act = activations.get(activation)
    init = init or act.init
    if init not in initializers.INITIALIZERS:
        raise ValueError(f"unknown init {init!r}: use one of {', '.join(initializers.INITIALIZERS.names())}")
    return act, init


class WeightsAndBiases:
    """``W``, ``b`` (and ``dW``, ``db``) as attributes, for layers whose parameters are
    named so (Dense, Conv2D). Assigning copies the new values into θ (same shape, finite)."""

    params: dict[str, Array]
    grads: dict[str, Array]

    @property
    def W(self) -> Array:
        """The weights (a view into the network's θ)."""
        return self._param("W")

    @W.setter
    def W(self, value: Array) -> None:
        self._assign("W", value)

    @property
    def b(self) -> Array:
        """The biases (a view into the network's θ)."""
        return self._param("b")

    @b.setter
    def b(self, value: Array) -> None:
        self._assign("b", value)

    @property
    def dW(self) -> Array:
        """∇W of the last backward pass."""
        return self.grads["W"]

    @property
    def db(self) -> Array:
        """∇b of the last backward pass."""
        return self.grads["b"]

    def _param(self, name: str) -> Array:
        if name not in self.params:
            raise RuntimeError(f"this layer has no {name} yet: put it in a Network first")
        return self.params[name]

    def _assign(self, name: str, value: Array) -> None:
        target = self._param(name)
        value = np.asarray(value)
        if value.shape != target.shape:
            raise ValueError(f"{name} must have shape {target.shape}, not {value.shape}")
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{name} contains NaN or infinite values")
        target[...] = value


def build_layers(layers: list[Layer], input_shape: Shape) -> Shape:
    """Call each layer's :meth:`~Layer.build` in order, passing shapes along;
    returns the output shape. A shape a layer cannot take is a ``ValueError``
    naming the layer. No parameter memory is allocated here."""
    shape = input_shape
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(f"layer {i} is a {type(layer).__name__}, not a numpynn Layer")
        if not hasattr(layer, "specs"):
            raise TypeError(f"layer {i} ({type(layer).__name__}) did not call super().__init__()")
        layer.specs, layer.state_specs = [], []
        layer.params, layer.grads, layer.state = {}, {}, {}
        layer.input_shape = shape
        try:
            out = layer.build(shape)
        except ValueError as e:
            source = f"layer {i - 1} ({layers[i - 1].name})" if i else "the input"
            raise ValueError(f"layer {i} ({layer.name}), after {source}: {e}") from None
        if out is None:
            raise TypeError(f"layer {i} ({layer.name}): build must return the output shape")
        out = (out,) if isinstance(out, (int, np.integer)) else tuple(out)
        if not out or not all(isinstance(d, (int, np.integer)) and d >= 1 for d in out):
            raise ValueError(f"layer {i} ({layer.name}): its output shape {out} is empty or not positive")
        layer.output_shape = shape = tuple(int(d) for d in out)
    return shape


def where(path: str) -> str:
    """A layer as messages name it: ``layer 3`` at the top of a network, its path in the tree
    (``layers.3.layers.0``) inside a block."""
    head, _, rest = path.partition(".")
    return f"layer {rest}" if head == "layers" and rest.isdigit() else path
