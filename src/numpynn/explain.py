"""Backprop you can watch: one forward and one backward pass of a classifier, layer by layer.

:func:`explain` takes a network and one input (as :meth:`Network.predict` reads it), runs
the forward pass in inference mode (dropout off, batch normalization on its running
statistics: ``training=False``), then the backward pass of the loss for one target class K
(by default the class the network predicts), one top-level layer at a time, and records
for each layer what goes in and out:

    y_l = f_l(y_{l−1})                        its output (the activations), kept
    ∂C/∂y_L from the loss                     softmax + cross-entropy: δ_L = (a_L − y)/B
                                              fused into the output layer (docs/math.md §3)
    ∂C/∂y_{l−1} = layer_l.backward(∂C/∂y_l)   the gradient arriving at each layer's output,
                                              kept, and its ∇θ_l on the way (§4, §5, §10)

The numbers are exactly those of :meth:`Network.gradients` with ``training=False`` (the
same layers' own backward calls, in the same order, on the same input). Then one plain
gradient step θ ← θ − R ∇θ (§6) is applied to a *copy* of the network and its new
probabilities are read: the given network never changes (every pass runs on copies).

The result, :class:`Explanation`, holds everything a figure or a page needs: per layer its
output and ∂C/∂output as arrays (and δ = ∂C/∂z for a Dense or Conv2D layer with an
activation), the norms, the largest entries of ∇θ, the first weight layer's ∇W as images
(a dense layer's ten most affected units, each column as 28×28; a convolution's filters),
the probabilities before and after the step. :meth:`Explanation.as_json` is the short,
stable summary (what ``numpynn explain --json`` prints).

>>> import numpynn as nn                                                   # doctest: +SKIP
>>> from numpynn.explain import explain                                    # doctest: +SKIP
>>> e = explain(net, x_test[0], label=3)                                   # doctest: +SKIP
>>> e.prediction, e.loss, e.lr, e.after_step[3] - e.probabilities[3]       # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .activations import Identity
from .layers import Layer, walk
from .metrics import classes
from .network import Network

Array = np.ndarray

__all__ = ["RATES", "TARGET_CHANGE", "Change", "Explanation", "LayerTrace", "WeightPictures", "explain"]

#: The rates tried, smallest first, when no rate is given: the first that moves the target's
#: probability by at least :data:`TARGET_CHANGE` is used.
RATES = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
TARGET_CHANGE = 0.05
#: Entries of ∇θ listed as the largest changes (over the whole network, and per layer).
TOP_K = 10
#: Units (dense) shown of the first weight layer: those whose ∇W column is largest.
UNITS_SHOWN = 10
#: Filters (convolution) shown at most of the first weight layer, by the norm of their ∇W.
FILTERS_SHOWN = 32

_BN = "inference: y = γ (x − μ_run)/√(σ²_run + ε) + β on the running statistics (normalization.md §1, §5)"
# Where each step is derived, for labels: docs/math.md, docs/conv.md, docs/normalization.md.
_EQUATIONS = {
    "head": "δ_L = (a_L − y)/B (math.md §3)",
    "head_unfused": "δ_L = ∂C/∂a_L ⊙ σ'(z_L) (math.md §3)",
    "Dense": "δ = ∂C/∂a ⊙ σ'(z); ∇W = xᵀδ, ∇b = Σ δ; ∂C/∂x = δWᵀ (math.md §4, §5)",
    "Conv2D": "δ = ∂C/∂a ⊙ σ'(z); ∇W = x ⋆ δ; ∂C/∂x = δ̃ ∗ W (conv.md §2)",
    "MaxPool2D": "∂C/∂x: each window's gradient goes to its arg-max (conv.md §7)",
    "AvgPool2D": "∂C/∂x: each window's gradient is shared equally (conv.md §7)",
    "GlobalAvgPool2D": "∂C/∂x = ∂C/∂y / (H·W) at every position (conv.md §7)",
    "BatchNorm1D": _BN,
    "BatchNorm2D": _BN,
    "LayerNorm": "∂C/∂x through the row's own mean and variance (normalization.md §6)",
    "Residual": "u = F(x) + S(x); ∂C/∂x = F'ᵀ∂C/∂u + S'ᵀ∂C/∂u (layers/blocks.py)",
    "Sequential": "each child's own chain rule, last to first (math.md §10)",
    "Dropout": "inference: y = x, ∂C/∂x = ∂C/∂y (math.md §10)",
    "Flatten": "y = x in another shape; ∂C/∂x = ∂C/∂y reshaped (math.md §10)",
    "Reshape": "y = x in another shape; ∂C/∂x = ∂C/∂y reshaped (math.md §10)",
}
_STEP_EQUATION = "θ ← θ − R ∇θ (math.md §6)"


@dataclass(frozen=True)
class Change:
    """One entry of ∇θ: where it is (``path`` in the layer tree, as :meth:`Network.walk` names
    it, the top-level ``layer`` index, the parameter and its index) and its value, with the
    parameter's current value and the change a step at rate R makes, −R·grad."""

    layer: int
    path: str
    param: str
    index: tuple[int, ...]
    grad: float
    value: float

    def as_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "path": self.path, "param": self.param, "index": list(self.index),
                "grad": self.grad, "value": self.value}


@dataclass
class LayerTrace:
    """One top-level layer in the two passes, for one sample (no batch axis on the arrays).

    ``output``: y_l, its output (output_shape); ``output_grad``: ∂C/∂y_l, the gradient arriving
    at its output (same shape); ``delta_z``: δ = ∂C/∂z for a Dense or Conv2D layer whose
    activation is not the identity (for the output layer of a softmax + cross-entropy network,
    the fused δ_L = (a_L − y)/B), else None; ``output_grad_norm`` = ‖∂C/∂y_l‖;
    ``param_grad_norm`` = ‖∇θ_l‖ over all its parameters, nested ones too (0 for none);
    ``top``: its largest |∇θ| entries; ``passes``: its output holds its input's numbers
    (Reshape, Flatten, Dropout at inference); ``equation``: the step's formula and where it is
    derived, for a label."""

    index: int
    type: str
    activation: str | None
    output_shape: tuple[int, ...]
    n_params: int
    output: Array
    output_grad: Array
    delta_z: Array | None
    output_grad_norm: float
    param_grad_norm: float
    top: list[Change]
    passes: bool
    equation: str


@dataclass
class WeightPictures:
    """The first weight layer's ∇W (and W) as pictures.

    ``kind == "units"`` (Dense): ``picks`` are the units whose ∇W column has the largest norm,
    largest first; ``grads[k]`` and ``weights[k]`` are that unit's column of ∇W and W in the
    input's picture shape (28×28 for 784 inputs; else one row). ``kind == "filters"``
    (Conv2D): ``picks`` are (output channel, input channel) pairs, by filter order (all of
    them up to :data:`FILTERS_SHOWN`; with more, the largest by norm), each kh×kw.
    ``norms[k]`` is ‖grads[k]‖."""

    layer: int
    path: str
    type: str
    kind: str
    picks: list[Any]
    grads: Array
    weights: Array
    norms: list[float]


@dataclass
class Explanation:
    """What :func:`explain` found; see the module docstring. Arrays are float64 copies.

    Figure contract (everything a drawing needs, nothing recomputed): ``input`` (the sample as
    the network reads it, input_shape) and ``input_grad`` (∂C/∂x, same shape);
    ``layers`` (:class:`LayerTrace`, network order: draw from the last to the first for the
    backward flow); ``first_weights`` (:class:`WeightPictures` or None); ``probabilities``
    and ``after_step`` (bars before and after the step), ``label``, ``prediction``, ``lr``,
    ``lr_rule`` (why that rate: a sentence), ``rates`` ([(R, p_K after a step at R)] for
    each rate tried; empty when ``lr`` was given), ``loss``, ``loss_name``, ``top``
    (the largest |∇θ| entries of the whole network), ``step_equation``.
    """

    prediction: int
    label: int
    loss: float
    loss_name: str
    probabilities: Array
    after_step: Array
    lr: float
    lr_rule: str
    rates: list[tuple[float, float]]
    input: Array
    input_grad: Array
    layers: list[LayerTrace]
    first_weights: WeightPictures | None
    top: list[Change]
    step_equation: str = _STEP_EQUATION

    def as_json(self) -> dict[str, Any]:
        """The summary, JSON-ready: ``{"prediction", "label", "loss", "probabilities",
        "after_step", "lr", "layers": [{"index", "type", "output_shape", "output_grad_norm",
        "param_grad_norm"}, ...]}``, one entry per top-level layer in network order."""
        return {
            "prediction": self.prediction,
            "label": self.label,
            "loss": float(self.loss),
            "probabilities": [float(p) for p in self.probabilities],
            "after_step": [float(p) for p in self.after_step],
            "lr": float(self.lr),
            "layers": [{"index": t.index, "type": t.type, "output_shape": list(t.output_shape),
                        "output_grad_norm": float(t.output_grad_norm),
                        "param_grad_norm": float(t.param_grad_norm)} for t in self.layers],
        }


# ----------------------------------------------------------------------------- checks


def check_classifier(net: Network) -> None:
    """Refuse, in one line, a network that does not end in a softmax over 2 or more classes."""
    if not isinstance(net, Network):
        raise TypeError(f"explain needs a numpynn Network, not {type(net).__name__}")
    last = net.layers[-1]
    act = getattr(getattr(last, "activation", None), "name", None)
    if net.n_out < 2 or act != "softmax" or not hasattr(last, "backward_delta"):
        ends = f"{net.n_out} {act + ' ' if act else ''}output{'s' if net.n_out != 1 else ''}"
        raise ValueError(f"explain needs a classifier that ends in a softmax over 2 or more classes; "
                         f"this one ends in {ends} ({last.name}) with {net.loss.name} loss")


def _label(value: Any, n: int) -> int:
    ok = not isinstance(value, bool) and isinstance(value, (int, np.integer))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        ok, value = True, int(value)
    if not ok or not 0 <= value < n:
        raise ValueError(f"the label must be a class 0..{n - 1}, not {value!r}")
    return int(value)


def _rate(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
            math.isfinite(float(value)) and float(value) > 0):
        raise ValueError(f"the learning rate must be a positive number, not {value!r}")
    return float(value)


# ----------------------------------------------------------------------------- the passes


def _tree(layer: Layer, i: int) -> list[tuple[str, Layer]]:
    """Top-level layer ``i`` and the layers it is made of, with their paths (``layers.i…``)."""
    return [(f"layers.{i}{path[len('layers.0'):]}", sub) for path, sub in walk([layer])]


def _param_grads(layer: Layer, i: int) -> list[tuple[str, str, Array, Array]]:
    """(path, name, ∇θ, θ) of every parameter of top-level layer ``i`` and its children, in θ's order."""
    return [(path, spec.name, sub.grads[spec.name], sub.params[spec.name])
            for path, sub in _tree(layer, i) for spec in sub.specs]


def _top(entries: list[tuple[str, str, Array, Array]], index: int, k: int) -> list[Change]:
    """The k entries of largest |∇θ| among ``entries`` (ties: θ's order)."""
    found: list[tuple[float, int, Change]] = []
    order = 0
    for path, name, grad, value in entries:
        flat = np.abs(grad).ravel()
        take = min(k, flat.size)
        if take == 0:
            continue
        picks = np.argpartition(-flat, take - 1)[:take] if take < flat.size else np.arange(flat.size)
        for p in picks:
            at = tuple(int(i) for i in np.unravel_index(int(p), grad.shape))
            found.append((float(flat[p]), order + int(p), Change(index, path, name, at, float(grad[at]),
                                                                   float(value[at]))))
        order += flat.size
    found.sort(key=lambda item: (-item[0], item[1]))
    return [change for _, _, change in found[:k]]


def _delta_z(layer: Layer, grad: Array) -> Array | None:
    """δ = ∂C/∂z = ∂C/∂a ⊙ σ'(z) of a Dense or Conv2D layer with an activation, as its own
    ``backward`` computes it first (on a copy); None for any other layer."""
    act = getattr(layer, "activation", None)
    if layer.name not in ("Dense", "Conv2D") or act is None or isinstance(act, Identity):
        return None
    z, a = layer.z, layer.a  # type: ignore[attr-defined]
    if layer.name == "Dense":
        return np.array(act.delta(grad.copy(), z, a))
    rows = np.ascontiguousarray(grad.transpose(0, 2, 3, 1)).reshape(z.shape)  # channels last, as z
    delta = act.delta(rows, z, a)
    return np.array(delta.reshape(grad.shape[0], *grad.shape[2:], grad.shape[1]).transpose(0, 3, 1, 2))


def _softmax_grad(z: Array, target: Array) -> Array:
    """∂C/∂a_L = −y/(B a_L) of cross-entropy after a softmax, with a_L from z_L in float64
    (log a = z − logsumexp(z)), so that a tiny probability stays finite (1/a capped at e^700)."""
    z64 = z.astype(np.float64)
    shifted = z64 - z64.max(axis=1, keepdims=True)
    log_a = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    grad = np.zeros_like(z64)
    hot = target > 0
    grad[hot] = -target[hot] * np.exp(np.minimum(-log_a[hot], 700.0)) / z.shape[0]
    return grad


def _passes(x: Array, y: Array) -> bool:
    return x.size == y.size and np.array_equal(x.reshape(-1), y.reshape(-1))


def _first_weights(net: Network) -> WeightPictures | None:
    """∇W of the first layer (depth first) that has a 2-D or 4-D ``W``, as pictures."""
    for i, top in enumerate(net.layers):
        for path, layer in _tree(top, i):
            W = layer.params.get("W")
            if W is None or W.ndim not in (2, 4):
                continue
            G = layer.grads["W"]
            if W.ndim == 2:  # Dense (n_in, n_out): one column per unit
                norms = np.linalg.norm(G.astype(np.float64), axis=0)
                picks = [int(u) for u in np.argsort(-norms, kind="stable")[:UNITS_SHOWN]]
                shape = _picture_shape(W.shape[0], net)
                grads = np.stack([G[:, u].astype(np.float64).reshape(shape) for u in picks])
                weights = np.stack([W[:, u].astype(np.float64).reshape(shape) for u in picks])
                return WeightPictures(i, path, layer.name, "units", picks, grads, weights,
                                      [float(norms[u]) for u in picks])
            O, C, kh, kw = W.shape  # Conv2D (O, C, kh, kw): one kh×kw filter per (o, c)
            g = G.astype(np.float64).reshape(O * C, kh, kw)
            norms = np.linalg.norm(g.reshape(O * C, -1), axis=1)
            order = list(range(O * C)) if O * C <= FILTERS_SHOWN else sorted(
                np.argsort(-norms, kind="stable")[:FILTERS_SHOWN].tolist())
            return WeightPictures(i, path, layer.name, "filters", [[k // C, k % C] for k in order],
                                  g[order], W.astype(np.float64).reshape(O * C, kh, kw)[order],
                                  [float(norms[k]) for k in order])
    return None


def _picture_shape(n: int, net: Network) -> tuple[int, ...]:
    side = math.isqrt(n)
    if side * side == n:
        return (side, side)
    return (1, n)


def _probabilities(net: Network, x: Array) -> Array:
    return np.array(net.predict(x)[0], dtype=np.float64)


def explain(net: Network, image_x: Any, label: int | None = None, lr: float | None = None) -> Explanation:
    """One forward and backward pass of ``net`` on one sample, layer by layer; see the module docstring.

    ``image_x``: one sample as :meth:`Network.predict` reads it (e.g. (784,) floats in [0, 1],
    or uint8 pixels). ``label``: the target class K (default: the predicted one). ``lr``: the
    rate R of the step θ ← θ − R∇θ shown (default: the smallest of :data:`RATES` that moves
    p_K by at least :data:`TARGET_CHANGE`; the one that moves it most when none does). The
    network is never changed: every pass runs on copies. A network that is not a softmax
    classifier, a label outside the classes, a bad rate or more than one sample: ``ValueError``
    of one line.
    """
    check_classifier(net)
    x = net.check_inputs(image_x, "the input")
    if x.shape[0] != 1:
        raise ValueError(f"explain takes one sample, not {x.shape[0]}")
    rate = None if lr is None else _rate(lr)
    work = net.copy()
    x = np.array(work.as_float(x), dtype=work.dtype)

    # forward, layer by layer, in inference mode: keep every output
    inputs, outputs = [], []
    y = x
    for layer in work.layers:
        inputs.append(y)
        y = np.array(layer.forward(y, training=False))
        outputs.append(y)
    probs = np.array(outputs[-1][0], dtype=np.float64)
    prediction = int(classes(outputs[-1])[0])
    label = prediction if label is None else _label(label, work.n_out)
    target = work.targets(np.array([label]), 1)
    head = work.layers[-1]
    loss = work.loss_of(head.z, head.a, target)  # type: ignore[attr-defined]
    fused = work.loss.fuses_with(head.activation)  # type: ignore[attr-defined]

    arriving, deltas, input_grad = _backward(work, outputs[-1], target, fused)
    traces, everything = [], []
    for i, layer in enumerate(work.layers):
        entries = _param_grads(layer, i)
        everything += [(i, entry) for entry in entries]
        key = ("head" if fused else "head_unfused") if i == len(work.layers) - 1 else layer.name
        passes = _passes(inputs[i], outputs[i])
        traces.append(_trace(i, layer, entries, outputs[i], arriving[i], deltas[i], passes, key))
    chosen, after_step, rule, rates = _step(work, x, label, probs, rate)
    return Explanation(
        prediction=prediction, label=label, loss=float(loss), loss_name=work.loss.name,
        probabilities=probs, after_step=after_step, lr=chosen, lr_rule=rule, rates=rates,
        input=x[0].astype(np.float64), input_grad=input_grad, layers=traces,
        first_weights=_first_weights(work), top=_top_all(everything),
    )


def _backward(work: Network, output: Array, target: Array,
              fused: bool) -> tuple[list[Array], list[Array | None], Array]:
    """The backward pass, layer by layer, after the forward pass: the gradient arriving at each
    top-level layer's output, each δ = ∂C/∂z, and ∂C/∂x; ∇θ is left in ``work.grads``. Every
    layer computes ∂C/∂x meanwhile (``needs_input_grad``, restored after)."""
    n = len(work.layers)
    head = work.layers[-1]
    work.grads[...] = 0
    arriving: list[Array] = [np.empty(0)] * n
    deltas: list[Array | None] = [None] * n
    needed = [layer.needs_input_grad for layer in work.layers]
    try:
        for layer in work.layers:
            layer.needs_input_grad = True
        if fused:  # δ_L = (a_L − y)/B, as Network.backward; ∂C/∂a_L = −y/(B a_L) arrives
            arriving[-1] = _softmax_grad(head.z, target)  # type: ignore[attr-defined]
            delta = work.loss.output_delta(head.z, head.a, target, head.activation)  # type: ignore[attr-defined]
            deltas[-1] = np.array(delta)
            grad = head.backward_delta(delta)  # type: ignore[attr-defined]
        else:  # ∂C/∂a_L from the loss; the layer applies its own σ'
            g = work.loss.grad_a(output, target)
            arriving[-1] = np.array(g)
            deltas[-1] = _delta_z(head, g)
            grad = head.backward(g)
        for i in range(n - 2, -1, -1):
            layer = work.layers[i]
            arriving[i] = np.array(grad)
            deltas[i] = _delta_z(layer, np.array(grad))
            grad = layer.backward(grad)  # ∂C/∂y_{l−1} = layer_l's chain rule applied to ∂C/∂y_l
        return arriving, deltas, np.array(grad, dtype=np.float64)[0]
    finally:
        for layer, flag in zip(work.layers, needed, strict=True):
            layer.needs_input_grad = flag


def _trace(i: int, layer: Layer, entries: list[tuple[str, str, Array, Array]], output: Array, arriving: Array,
           delta: Array | None, passes: bool, key: str) -> LayerTrace:
    """One layer's :class:`LayerTrace` from its batch-of-one arrays and its ∇θ entries."""
    sq = sum(float(np.sum(np.square(g, dtype=np.float64))) for _, _, g, _ in entries)
    return LayerTrace(
        index=i, type=layer.name, activation=getattr(getattr(layer, "activation", None), "name", None),
        output_shape=tuple(layer.output_shape), n_params=layer.n_params,
        output=output[0].astype(np.float64), output_grad=np.asarray(arriving[0], np.float64),
        delta_z=None if delta is None else np.asarray(delta[0], np.float64),
        output_grad_norm=float(np.linalg.norm(np.asarray(arriving, np.float64).ravel())),
        param_grad_norm=math.sqrt(sq), top=_top(entries, i, TOP_K), passes=passes,
        equation=_EQUATIONS.get(key, "its own backward: ∂C/∂x = (∂y/∂x)ᵀ ∂C/∂y (math.md §10)"),
    )


def _step(work: Network, x: Array, label: int, probs: Array,
          rate: float | None) -> tuple[float, Array, str, list[tuple[float, float]]]:
    """One plain step θ ← θ − R∇θ on a copy of ``work`` (whose grads hold ∇θ): (R, the
    probabilities after it, why that R, [(R, p_K after)] for each rate tried)."""
    grads = work.grads.copy()
    stepped = work.copy()
    theta = work.params

    def after(r: float) -> Array:
        np.subtract(theta, work.dtype.type(r) * grads, out=stepped.params)
        return _probabilities(stepped, x)

    if rate is not None:
        return rate, after(rate), f"R = {rate:g}, as given", []
    results = [(r, after(r)) for r in RATES]
    moved = [abs(float(p[label]) - float(probs[label])) for _, p in results]
    tried = ", ".join(f"{r:g}" for r in RATES)
    first = next((k for k, m in enumerate(moved) if m >= TARGET_CHANGE), None)
    if first is not None:
        rule = (f"R = {RATES[first]:g}: the smallest of {tried} that moves p({label}) by at least "
                f"{TARGET_CHANGE:g}")
    else:
        first = int(np.argmax(moved))
        rule = (f"R = {RATES[first]:g}: none of {tried} moves p({label}) by {TARGET_CHANGE:g}; this one "
                "moves it most")
    return RATES[first], results[first][1], rule, [(r, float(p[label])) for r, p in results]


def _top_all(entries: list[tuple[int, tuple[str, str, Array, Array]]]) -> list[Change]:
    """The largest |∇θ| entries of the whole network, each tagged with its top-level layer."""
    changes = [change for i, entry in entries for change in _top([entry], i, TOP_K)]
    changes.sort(key=lambda c: -abs(c.grad))  # stable: ties keep θ's order
    return changes[:TOP_K]
