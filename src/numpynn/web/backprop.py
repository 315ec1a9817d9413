"""/api/explain's answer: backprop for one drawing, as the page draws it.

:func:`explain_drawing` runs :func:`numpynn.explain.explain` on a float64 copy of the served
network and adds to :meth:`~numpynn.explain.Explanation.as_json` the pictures the page's
"Backprop, step by step" card draws, kept small (see :data:`EXPLAIN_MAPS`,
:data:`EXPLAIN_SIDE`, :data:`EXPLAIN_UNITS`); the answer's fields are documented with the
endpoint in :mod:`numpynn.web.api`. Of :mod:`numpynn.web` it imports only ``_json``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..network import Network
from ._json import ApiError, num, nums

__all__ = ["EXPLAIN_MAPS", "EXPLAIN_SIDE", "EXPLAIN_UNITS", "explain_drawing", "parse_explain"]

#: /api/explain's pictures: maps per layer, their largest side (averaged down), units per layer.
EXPLAIN_MAPS = 8
EXPLAIN_SIDE = 14
EXPLAIN_UNITS = 256


def _shrink(maps: np.ndarray) -> np.ndarray:
    """(C, H, W) maps averaged over k×k blocks so that neither side exceeds EXPLAIN_SIDE."""
    _, h, w = maps.shape
    k = max(1, -(-max(h, w) // EXPLAIN_SIDE))
    if k == 1:
        return maps
    ph, pw = -(-h // k) * k, -(-w // k) * k  # pad with the edge values to whole blocks
    padded = np.pad(maps, ((0, 0), (0, ph - h), (0, pw - w)), mode="edge")
    return padded.reshape(maps.shape[0], ph // k, k, pw // k, k).mean(axis=(2, 4))


def _rows(maps: np.ndarray) -> list[Any]:
    return np.array(nums(maps, 4), dtype=object).reshape(maps.shape).tolist()


def _layer_pictures(trace: Any) -> dict[str, Any]:
    """One layer's output, ∂C/∂output and δ, small enough to send, as the page draws them."""
    out, grad, delta = trace.output, trace.output_grad, trace.delta_z
    extra: dict[str, Any] = {"grad_max": num(np.abs(grad).max()) or 0.0}
    if trace.passes:
        return {**extra, "view": "none", "values": None, "grad": None, "delta": None, "channels": None}
    if out.ndim in (2, 3):
        shape = (-1, *out.shape[-2:])
        out, grad = out.reshape(shape), grad.reshape(shape)
        delta = None if delta is None else delta.reshape(shape)
        strength = np.linalg.norm(grad.reshape(grad.shape[0], -1), axis=1)
        channels = sorted(np.argsort(-strength, kind="stable")[:EXPLAIN_MAPS].tolist())
        return {**extra, "view": "maps", "channels": channels,
                "values": _rows(_shrink(out[channels])), "grad": _rows(_shrink(grad[channels])),
                "delta": None if delta is None else _rows(_shrink(delta[channels]))}
    flat = slice(0, EXPLAIN_UNITS)
    return {**extra, "view": "units", "channels": None, "values": nums(out.ravel()[flat], 4),
            "grad": nums(grad.ravel()[flat], 4),
            "delta": None if delta is None else nums(delta.ravel()[flat], 4)}


def explain_drawing(net: Network, x: np.ndarray, label: int | None = None,
                    lr: float | None = None) -> dict[str, Any]:
    """/api/explain's answer for one input ``x`` (784 values in [0, 1]): see the module docstring.

    Runs :func:`numpynn.explain.explain` on a float64 copy of ``net`` (which it never changes)."""
    from ..explain import explain

    e = explain(net.copy("float64"), np.asarray(x, dtype=np.float64).reshape(net.input_shape), label=label,
                lr=lr)
    out = e.as_json()
    for entry, trace in zip(out["layers"], e.layers, strict=True):
        entry.update({"activation": trace.activation, "passes": trace.passes, "equation": trace.equation,
                      **_layer_pictures(trace), "top": [c.as_dict() for c in trace.top[:3]]})
    pics = e.first_weights
    first = None
    if pics is not None:
        first = {"index": pics.layer, "path": pics.path, "type": pics.type, "kind": pics.kind,
                 "picks": pics.picks, "shape": list(pics.grads.shape[1:]),
                 "grads": [nums(g, 4) for g in pics.grads], "norms": nums(pics.norms, 6)}
    out.update({
        "loss_name": e.loss_name, "lr_rule": e.lr_rule, "rates": [[r, p] for r, p in e.rates],
        "step_equation": e.step_equation,
        "input": nums(e.input, 4), "input_grad": nums(e.input_grad, 4),
        "input_grad_max": num(np.abs(e.input_grad).max()) or 0.0,
        "first_layer": first, "top": [c.as_dict() for c in e.top],
    })
    return out


def parse_explain(payload: Any) -> tuple[dict[str, Any], int | None, float | None]:
    """The body of /api/explain -> (the drawing's fields, for :func:`~numpynn.web.api.parse_image`;
    the label or None; the rate or None)."""
    if not isinstance(payload, dict):
        raise ApiError(400, 'the body must be a JSON object: {"png": "data:image/png;base64,...", '
                            '"label": 3}')
    rest = {k: v for k, v in payload.items() if k not in ("label", "lr")}
    label, lr = payload.get("label"), payload.get("lr")
    if label is not None and (isinstance(label, bool) or not isinstance(label, int)):
        raise ApiError(400, f'"label" must be a digit 0..9 (or null: the one it reads), not {label!r:.40}')
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float))
                           or not math.isfinite(lr) or lr <= 0):
        raise ApiError(400, f'"lr" must be a positive number (or null: chosen), not {lr!r:.40}')
    return rest, label, lr
