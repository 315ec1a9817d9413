"""A network as an ONNX model: standard operators, one rule per layer type.

The file it writes is what ONNX Runtime (C++, C#, Java, Python, JavaScript in
a browser, phones) and most other inference engines read::

    net.to_onnx("model.onnx")                  # or: numpynn export model.safetensors model.onnx

The model
---------
- **opset** :data:`OPSET` (17, ONNX IR version 8): ONNX Runtime 1.12 and later
  runs it.
- **input** ``"input"``: float32, shape ``(N, *input_shape)`` with a dynamic
  batch ``N``; for the MNIST networks ``(N, 784)``, pixels in [0, 1]. (numpynn's
  ``predict`` also takes uint8 pixels and divides them by 255; the ONNX model
  takes the floats, so divide first.)
- **output** ``"output"``: float32, ``(N, n_out)``: what ``predict`` returns,
  the class probabilities for a softmax output.
- **float32 throughout**: the weights of a float64 network are rounded to
  float32, so the model runs on every engine (many have no float64 kernels);
  its outputs then agree with the float64 ``predict`` to about 1e-6.

Layers → operators
------------------
Each layer and activation writes its own operators, in its own file, beside its
forward and backward passes (:meth:`~numpynn.layers.Layer.to_onnx`,
:meth:`~numpynn.activations.Activation.to_onnx`); one that cannot be exported says
why in ``onnx_unsupported``. The built-in ones, as this release has them: Dense →
``Gemm`` then σ; Conv2D → ``Conv`` then σ; MaxPool2D, AvgPool2D → ``MaxPool``,
``AveragePool``; GlobalAvgPool2D → ``GlobalAveragePool`` then ``Flatten``; Dropout
→ nothing; Flatten, Reshape → ``Flatten``, ``Reshape``; BatchNorm1D/2D →
``BatchNormalization`` then σ; LayerNorm → ``LayerNormalization``; Sequential →
its layers in turn; Residual → block and shortcut, ``Add``, then σ. Activations:
sigmoid, tanh, relu, leaky_relu, softmax → ``Sigmoid``, ``Tanh``, ``Relu``,
``LeakyRelu(alpha)``, ``Softmax(axis=-1)``; identity → nothing. A layer type or
an activation without a rule (your own layer, a
:class:`~numpynn.activations.Custom` activation) is refused with one line
naming it; give your own layer a rule with :func:`register_rule`::

    @register_rule(Scale)
    def _scale(layer, g, x):                     # g: the OnnxGraph being built
        return g.node("Mul", [x, g.param("s")])  # y = x ⊙ s

The ``onnx`` package (and ``onnxruntime`` to run the result) is imported only
here, when a model is exported: ``pip install 'numpynn[onnx]'``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from .._shortcuts import shortcut
from .._version import __version__
from ..activations import Activation
from ..errors import NumpynnError
from ..layers import Layer
from ..layers.base import where
from ..network import Network

if TYPE_CHECKING:
    import onnx

#: The ONNX operator set the exported models use.
OPSET = 17
#: The names of the model's input and output tensors.
INPUT_NAME, OUTPUT_NAME = "input", "output"
#: The element type of every tensor in the exported model.
DTYPE = np.dtype(np.float32)

INSTALL_HINT = "pip install 'numpynn[onnx]'"

Rule = Callable[[Any, "OnnxGraph", str], str]
ActivationRule = Callable[[Any, "OnnxGraph", str], str]
R = TypeVar("R", bound=Callable[..., str])

#: Layer class → rule ``rule(layer, graph, x) -> y``: adds the layer's nodes to the graph
#: for the input tensor named ``x`` and returns the name of its output tensor. Looked
#: up by the exact class, so a subclass of a built-in layer needs a rule of its own.
RULES: dict[type[Layer], Rule] = {}
#: Activation class → rule ``rule(activation, graph, z) -> a``, used by layers with a σ.
ACTIVATION_RULES: dict[type[Activation], ActivationRule] = {}


class ExportError(NumpynnError, ValueError):
    """The network holds something ONNX export cannot express (a layer or activation without a rule)."""


def register_rule(layer_type: type[Layer]) -> Callable[[R], R]:
    """Decorator: export layers of ``layer_type`` with the decorated ``rule(layer, graph, x) -> y``
    (replacing an earlier rule for that type)."""
    if not (isinstance(layer_type, type) and issubclass(layer_type, Layer)):
        raise TypeError(f"register_rule takes a Layer subclass, not {layer_type!r}")

    def add(rule: R) -> R:
        RULES[layer_type] = rule
        return rule

    return add


def register_activation_rule(activation_type: type[Activation]) -> Callable[[R], R]:
    """Decorator: export activations of ``activation_type`` with ``rule(activation, graph, z) -> a``."""

    def add(rule: R) -> R:
        ACTIVATION_RULES[activation_type] = rule
        return rule

    return add


def _onnx() -> Any:
    """The ``onnx`` package, or an ImportError that says how to install it."""
    try:
        import onnx
    except ImportError as e:
        raise ImportError(f"ONNX export needs the onnx package ({e}): {INSTALL_HINT}") from None
    return onnx


class OnnxGraph:
    """The graph being built, as the rules see it: parameters become initializers
    (float32, named ``layers.{i}.{name}`` as in the model file), each :meth:`node`
    one operator whose output tensor is named after the layer and the operator."""

    def __init__(self, onnx: Any) -> None:
        self.onnx = onnx
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.path = "layers.-1"  # the layer being written, by its path in the tree
        self.layer: Layer | None = None
        self._names: set[str] = {INPUT_NAME}

    @property
    def prefix(self) -> str:
        return self.path

    def _unique(self, name: str) -> str:
        base, n = name, 1
        while name in self._names:
            n += 1
            name = f"{base}_{n}"
        self._names.add(name)
        return name

    def param(self, name: str) -> str:
        """The current layer's parameter ``name`` as a float32 initializer; returns its tensor name."""
        assert self.layer is not None
        return self.constant(name, np.asarray(self.layer.params[name], DTYPE))

    def constant(self, name: str, value: Any) -> str:
        """A constant tensor (an initializer) named ``layers.{i}.{name}``; returns its name."""
        tensor_name = self._unique(f"{self.prefix}.{name}")
        array = np.ascontiguousarray(value)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, tensor_name))
        return tensor_name

    def node(self, op: str, inputs: list[str], **attributes: Any) -> str:
        """Add the operator ``op`` on ``inputs``; returns the name of its (one) output tensor."""
        output = self._unique(f"{self.prefix}.{op.lower()}")
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], name=f"{self.prefix}/{op}",
                                                     **attributes))
        return output

    def write(self, layer: Layer, path: str, x: str) -> str:
        """Add ``layer`` (at ``path`` in the tree) for the input tensor ``x``; its output's name."""
        rule = layer_rule(layer)
        if rule is None:
            raise _cannot(f"{where(path)} ({layer.name})", layer,
                          "" if layer.onnx_unsupported else
                          " (give it one with numpynn.export.onnx.register_rule, or a to_onnx method)")
        outer = self.path, self.layer
        self.path, self.layer = path, layer
        try:
            return rule(layer, self, x)
        finally:
            self.path, self.layer = outer

    def children(self, owner: Layer, x: str, layers: list[Layer] | None = None) -> str:
        """A block's children (``layers``, by default all of them) one after another from ``x``."""
        for name, child in owner.named_children():
            if layers is None or any(child is layer for layer in layers):
                x = self.write(child, f"{self.path}.{name}", x)
        return x

    def activation(self, activation: Activation, z: str) -> str:
        """σ applied to the tensor ``z``, by the activation's rule."""
        rule = activation_rule(activation)
        if rule is None:
            layer = self.layer.name if self.layer else "?"
            raise _cannot(f"{where(self.path)} ({layer}): its activation {activation.name!r}", activation,
                          "; use a built-in activation")
        return rule(activation, self, z)


# --- finding a rule ------------------------------------------------------------------------
def _cannot(what: str, thing: Any, choices: str) -> ExportError:
    reason = getattr(thing, "onnx_unsupported", None) or f"{type(thing).__name__} has no ONNX rule"
    return ExportError(f"cannot export {what} to ONNX: {reason}{choices}")


def layer_rule(layer: Layer) -> Rule | None:
    """How ``layer`` is exported: a rule given with :func:`register_rule`, else the layer's own
    :meth:`~numpynn.layers.Layer.to_onnx`; None when it has neither."""
    return _rule(layer, RULES, Layer)


def activation_rule(activation: Activation) -> ActivationRule | None:
    """How σ is exported: a rule given with :func:`register_activation_rule`, else its own
    :meth:`~numpynn.activations.Activation.to_onnx`; None when it has neither."""
    return _rule(activation, ACTIVATION_RULES, Activation)


def _rule(thing: Any, given: dict[Any, Any], base: type) -> Any:
    rule = given.get(type(thing))
    if rule is not None:
        return rule
    if type(thing).to_onnx is not base.to_onnx and thing.onnx_unsupported is None:
        return type(thing).to_onnx
    return None


# --- the model ----------------------------------------------------------------------------
def to_model(net: Network) -> onnx.ModelProto:
    """The network as an ONNX model (opset :data:`OPSET`, float32), checked with
    ``onnx.checker.check_model`` (including shape inference). Raises
    :class:`ExportError` naming the first layer or activation without a rule."""
    onnx = _onnx()
    if not isinstance(net, Network):
        raise TypeError(f"to_model exports a numpynn Network, not {type(net).__name__}")
    helper = onnx.helper
    g = OnnxGraph(onnx)
    x = INPUT_NAME
    for i, layer in enumerate(net.layers):
        x = g.write(layer, f"layers.{i}", x)
    if g.nodes and g.nodes[-1].output[0] == x:  # name the last node's output "output"
        g.nodes[-1].output[0] = OUTPUT_NAME
    else:  # nothing computed the output (e.g. the last step is a Dropout): pass it through
        g.path, g.layer = f"layers.{len(net.layers)}", None
        g.nodes.append(helper.make_node("Identity", [x], [OUTPUT_NAME], name="output/Identity"))
    elem = onnx.TensorProto.FLOAT  # DTYPE
    graph = helper.make_graph(
        g.nodes, "numpynn",
        [helper.make_tensor_value_info(INPUT_NAME, elem, ["N", *net.input_shape])],
        [helper.make_tensor_value_info(OUTPUT_NAME, elem, ["N", *net.output_shape])],
        initializer=g.initializers,
    )
    opset = [helper.make_opsetid("", OPSET)]
    model = helper.make_model(graph, opset_imports=opset, ir_version=helper.find_min_ir_version_for(opset),
                              producer_name="numpynn", producer_version=__version__,
                              doc_string=describe(net))
    facts = {k: v for k, v in net.metadata.items() if not str(k).startswith("_")}
    props = {"numpynn_version": __version__, "loss": net.loss.name, "numpynn_dtype": net.dtype.name}
    if facts:
        props["training"] = json.dumps(facts, default=str)
    helper.set_model_props(model, props)
    onnx.checker.check_model(model, full_check=True)
    return model


def describe(net: Network) -> str:
    """One line about the exported model: its input, output and opset."""
    layers = ", ".join(layer.name for layer in net.layers)
    return (f"numpynn network ({layers}): input {INPUT_NAME!r} float32 (N, "
            f"{', '.join(map(str, net.input_shape))}), output {OUTPUT_NAME!r} float32 (N, "
            f"{', '.join(map(str, net.output_shape))}), ONNX opset {OPSET}")


@shortcut("to_onnx")
def save(net: Network, path: str | os.PathLike[str]) -> None:
    """Export ``net`` to the ONNX file ``path``, written atomically (a temporary file
    beside it, then a rename): the file is the old one or the whole new one, never
    half of one. Nothing is written when the network cannot be exported; a file
    that cannot be written (a missing or read-only folder, a full disk) is a
    :class:`~numpynn.errors.WriteError` naming it."""
    from .._io import atomic_write_bytes, check_writable

    target = Path(path)
    check_writable(target)  # a missing or read-only folder: said before the work
    atomic_write_bytes(target, to_model(net).SerializeToString())
