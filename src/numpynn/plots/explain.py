"""Backprop you can watch, as one figure: an :class:`~numpynn.explain.Explanation` drawn top to bottom.

Read down for the forward pass, up for the backward pass. The rows, in the network's order:

- the input as the network sees it, and ∂C/∂x beside it;
- one row per top-level layer that changes its input (Reshape, Flatten and Dropout at
  inference pass their numbers on and are not drawn): its activations y_l on the left, on the
  right δ_l = ∂C/∂z_l for a Dense or Conv2D layer with an activation (the fused
  δ_L = (a_L − y)/B for the output layer), else the gradient ∂C/∂y_l arriving at its output.
  Units are a bar strip (a grid past :data:`MAX_BARS`); feature maps a few channels
  (:data:`MAPS_SHOWN`, those of largest ‖δ‖), activations and δ of the same channels;
- after the first weight layer's row, its ∇W as pictures: the ten units whose ∇W column is
  largest (a dense layer: each 28×28) or the ten filters of largest ‖∇W‖ (a convolution);
- the probabilities before and after one plain step θ ← θ − R∇θ.

Each row's title names its equation (:attr:`LayerTrace.equation`, :attr:`Explanation.step_equation`).
Nothing is recomputed: everything drawn is on the Explanation.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from .canvas import load_matplotlib, new_figure, save_figure, tile_mosaic

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from ..explain import Explanation, LayerTrace

__all__ = ["MAPS_SHOWN", "MAX_BARS", "WEIGHTS_SHOWN", "explain_figure", "write_explain_figure"]

#: Channels of a layer's feature maps drawn (those whose δ has the largest norm).
MAPS_SHOWN = 8
#: Units up to this many are a bar strip; more are a grid of cells.
MAX_BARS = 256
#: Pictures of the first weight layer's ∇W drawn (units or filters, the largest ‖∇W‖ first).
WEIGHTS_SHOWN = 10

_WIDTH = 11.0
_INK = "#4d4d4d"
_UP, _DOWN = "#d62728", "#1f77b4"  # positive, negative (as RdBu_r)
_BEFORE, _AFTER = "#9e9e9e", "#2ca02c"


def drawn_layers(e: Explanation) -> list[LayerTrace]:
    """The layers that get a row: all but those that pass their input on."""
    return [t for t in e.layers if not t.passes]


def explain_figure(e: Explanation, title: str | None = None) -> Figure:
    """The figure of one :func:`numpynn.explain.explain`: see the module docstring."""
    rows: list[tuple[float, Any]] = [(1.9, lambda sf: _input_row(sf, e))]
    weights = e.first_weights
    for t in drawn_layers(e):
        rows.append((1.4 if len(t.output_shape) == 3 else 1.6, lambda sf, t=t: _layer_row(sf, e, t)))
        if weights is not None and t.index == weights.layer:
            rows.append((1.55, lambda sf: _weights_row(sf, e)))
    rows.append((2.1, lambda sf: _step_row(sf, e)))
    skipped = sorted({t.type for t in e.layers if t.passes})
    note = ("read down: the forward pass y_l = f_l(y_l−1);  read up: the backward pass, ∂C/∂y_l−1 from "
            "∂C/∂y_l by layer l's chain rule" + (f"  ({', '.join(skipped)}: pass their input on, not drawn)"
                                                 if skipped else ""))
    rows.insert(0, (0.2, lambda sf: sf.text(0.5, 0.5, note, ha="center", va="center", fontsize=8.5,
                                            color=_INK)))
    p = e.probabilities
    title = title or (f"Backprop you can watch: predicted {e.prediction} (p = {p[e.prediction]:.3f}), "
                      f"target K = {e.label} (p = {p[e.label]:.3f}), loss C = −ln p(K) = {e.loss:.3f}")
    with new_figure((_WIDTH, sum(h for h, _ in rows) + 0.7)) as fig:
        fig.suptitle(title)
        subs = fig.subfigures(len(rows), 1, height_ratios=[h for h, _ in rows], hspace=0.01)
        for sub, (_, draw) in zip(np.atleast_1d(subs), rows, strict=True):
            draw(sub)
    return fig


def write_explain_figure(e: Explanation, path: str | os.PathLike[str], title: str | None = None) -> str:
    """Draw :func:`explain_figure` and write it to ``path`` atomically (:func:`save_figure`)."""
    return save_figure(explain_figure(e, title), path)


# ----------------------------------------------------------------------------- the rows


def _row_title(sub: Any, text: str) -> None:
    sub.suptitle(text, x=0.01, ha="left", fontsize=9.5, fontweight="bold")


def _input_row(sub: Any, e: Explanation) -> None:
    _row_title(sub, f"the input x {tuple(e.input.shape)} and ∂C/∂x, the gradient that arrives at it")
    ax_x, ax_g = sub.subplots(1, 2)
    shape = _picture(e.input.size)
    if shape is None:  # not a square picture: bars
        _bars(ax_x, e.input, _INK)
        _bars(ax_g, e.input_grad, None)
    else:
        ax_x.imshow(e.input.reshape(shape), cmap="gray_r", vmin=0, vmax=max(1.0, float(e.input.max())))
        _diverging(ax_g, e.input_grad.reshape(shape))
        for ax in (ax_x, ax_g):
            ax.set_axis_off()
    ax_x.set_title("x: the image as the network reads it (values 0..1)", fontsize=8.5)
    ax_g.set_title(f"∂C/∂x  (red: more ink there raises C; ‖∂C/∂x‖ = {_norm(e.input_grad):.3g})",
                   fontsize=8.5)


def _layer_row(sub: Any, e: Explanation, t: LayerTrace) -> None:
    kind = t.type + (f" {t.activation}" if t.activation else "")
    _row_title(sub, f"layer {t.index}: {kind} → {t.output_shape}   ·   {t.equation}")
    delta, name = _delta(e, t)
    ax_y, ax_d = sub.subplots(1, 2)
    if len(t.output_shape) == 3:
        picks = _channels(delta)
        _maps(ax_y, t.output[picks])
        _diverging(ax_d, tile_mosaic(delta[picks], len(picks)))
        ax_d.set_axis_off()
        channels = t.output_shape[0]
        which = (f"channels {', '.join(map(str, picks))} of {channels}" if len(picks) < channels
                 else f"all {channels} channels")
        ax_y.set_title(f"y_{t.index}: {which}", fontsize=8.5)
    else:
        _units(ax_y, t.output, _INK, e.label if t.index == len(e.layers) - 1 else None)
        _units(ax_d, delta, None, None)
        what = "probabilities a_L" if t.index == len(e.layers) - 1 else "activations"
        ax_y.set_title(f"y_{t.index}: {what}, {t.output.size} units", fontsize=8.5)
    ax_d.set_title(f"{name}   (‖·‖ = {_norm(delta):.3g}; ‖∇θ‖ = {t.param_grad_norm:.3g})", fontsize=8.5)


def _weights_row(sub: Any, e: Explanation) -> None:
    w = e.first_weights
    assert w is not None
    order = sorted(range(len(w.picks)), key=lambda k: -w.norms[k])[:WEIGHTS_SHOWN]
    what = "units" if w.kind == "units" else "filters"
    size = "×".join(map(str, w.grads.shape[1:]))
    equation = next(t.equation for t in e.layers if t.index == w.layer)
    _row_title(sub, f"∇W of layer {w.layer} ({w.type}, {w.path}): the {len(order)} {what} of largest ‖∇W‖, "
                    f"each {size}   ·   {equation.split('; ', 1)[-1]}")
    axes = np.atleast_1d(sub.subplots(1, WEIGHTS_SHOWN))
    limit = max(float(np.abs(w.grads[order]).max()), 1e-12)
    inputs = w.kind == "filters" and len({int(c) for _, c in w.picks}) > 1  # name (o, c) pairs
    for ax, k in zip(axes, order, strict=False):
        _diverging(ax, w.grads[k], limit)
        pick = w.picks[k]
        label = f"unit {pick}" if w.kind == "units" else f"filter {pick[0]}{f'·{pick[1]}' if inputs else ''}"
        ax.set_title(f"{label}\n‖∇W‖ {w.norms[k]:.2g}", fontsize=7.5)
    for ax in axes[len(order):]:  # fewer pictures than places: keep each one's width
        ax.remove()


def _step_row(sub: Any, e: Explanation) -> None:
    _row_title(sub, f"one step on a copy   ·   {e.step_equation}   ·   {e.lr_rule}")
    ax = sub.subplots()
    k = np.arange(e.probabilities.size)
    ax.bar(k - 0.2, e.probabilities, 0.4, color=_BEFORE, label="before the step")
    ax.bar(k + 0.2, e.after_step, 0.4, color=_AFTER, label=f"after one step at R = {e.lr:g}")
    ax.set_xticks(k, [_class_name(i, e) for i in k])
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("probability")
    ax.legend(loc="best")
    K = e.label
    ax.set_title(f"the probabilities before and after θ ← θ − R∇θ: p({K}) {e.probabilities[K]:.3f} → "
                 f"{e.after_step[K]:.3f}, p({e.prediction}) {e.probabilities[e.prediction]:.3f} → "
                 f"{e.after_step[e.prediction]:.3f}", fontsize=8.5)


# ----------------------------------------------------------------------------- the pieces


def _delta(e: Explanation, t: LayerTrace) -> tuple[np.ndarray, str]:
    """What the right panel shows: δ_l = ∂C/∂z_l where the layer has one, else ∂C/∂y_l."""
    last = t.index == len(e.layers) - 1
    if t.delta_z is not None:
        fused = last and "a_L − y" in t.equation
        return t.delta_z, "δ_L = (a_L − y)/B" if fused else f"δ_{t.index} = ∂C/∂z_{t.index}"
    return t.output_grad, f"∂C/∂y_{t.index}, arriving from above"


def _channels(delta: np.ndarray) -> list[int]:
    """Up to :data:`MAPS_SHOWN` channels, those of largest ‖δ_c‖, in channel order."""
    norms = np.linalg.norm(delta.reshape(delta.shape[0], -1), axis=1)
    return sorted(int(c) for c in np.argsort(-norms, kind="stable")[:MAPS_SHOWN])


def _maps(ax: Any, maps: np.ndarray) -> None:
    """Feature maps side by side: grey when all ≥ 0 (darker = larger), else red/blue around 0."""
    mosaic = tile_mosaic(maps, maps.shape[0])
    if float(np.nanmin(mosaic)) < 0:
        _diverging(ax, mosaic)
    else:
        mpl = load_matplotlib()
        ax.imshow(mosaic, cmap=mpl.colormaps["gray_r"].with_extremes(bad="white"), vmin=0,
                  vmax=max(float(np.nanmax(mosaic)), 1e-12))
    ax.set_axis_off()


def _diverging(ax: Any, values: np.ndarray, limit: float | None = None) -> None:
    """``values`` on red (positive) / blue (negative), centred on 0; NaN (gaps) white."""
    mpl = load_matplotlib()
    if limit is None:
        limit = max(float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 0.0, 1e-12)
    ax.imshow(values, cmap=mpl.colormaps["RdBu_r"].with_extremes(bad="white"), vmin=-limit, vmax=limit)
    ax.set_axis_off()


def _units(ax: Any, values: np.ndarray, color: str | None, mark: int | None) -> None:
    """A layer's units: a bar strip (red/blue by sign when ``color`` is None), or a grid past MAX_BARS."""
    values = values.ravel()
    if values.size > MAX_BARS:
        cols = 32
        grid = np.full(-(-values.size // cols) * cols, np.nan)
        grid[: values.size] = values
        if color is None or values.min() < 0:
            _diverging(ax, grid.reshape(-1, cols))
        else:
            ax.imshow(grid.reshape(-1, cols), cmap="gray_r", vmin=0, vmax=max(float(values.max()), 1e-12))
            ax.set_axis_off()
        return
    _bars(ax, values, color)
    if values.size <= 10:
        ax.set_xticks(range(values.size))
    if mark is not None:
        ax.get_xticklabels()[mark].set_fontweight("bold")


def _bars(ax: Any, values: np.ndarray, color: str | None) -> None:
    values = values.ravel()
    colors = color or [_UP if v > 0 else _DOWN for v in values]
    width = 0.85 if values.size <= 64 else 1.0
    ax.bar(np.arange(values.size), values, width=width, color=colors, linewidth=0)
    ax.axhline(0, color=_INK, linewidth=0.6)
    ax.set_xlim(-0.7, values.size - 0.3)
    ax.margins(y=0.08)
    ax.tick_params(labelsize=7)


def _class_name(k: int, e: Explanation) -> str:
    tags = [tag for tag, yes in (("K", k == e.label), ("pred.", k == e.prediction)) if yes]
    return f"{k}" + (f"\n{', '.join(tags)}" if tags else "")


def _picture(n: int) -> tuple[int, int] | None:
    side = int(round(np.sqrt(n)))
    return (side, side) if side * side == n else None


def _norm(a: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64).ravel()))
