"""Views of a trained classifier: its confusion matrix, its mistakes, its weights, its feature maps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..layers import Conv2D, Dense, Reshape
from ..metrics import classes
from .canvas import load_matplotlib, new_figure, text_color, tile_grid, tile_mosaic

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from ..network import Network


# --- confusion matrix ----------------------------------------------------------------
def confusion_matrix(
    matrix: Any, labels: Sequence[Any] | None = None, title: str | None = None
) -> Figure:
    """A confusion matrix (rows = true class, columns = predicted) with the count
    in every cell. Correct cells (the diagonal) are shaded blue by the class's
    recall, mistakes red by their count, so errors stand out; each row's recall
    is written at the right and the overall accuracy in the title.

    ``matrix`` is what :meth:`Network.confusion_matrix` returns.
    """
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValueError(f"a confusion matrix must be square (k, k), not shape {m.shape}")
    if m.dtype.kind not in "biuf" or np.any(m < 0) or not np.all(np.isfinite(m)):
        raise ValueError("a confusion matrix holds non-negative counts")
    k = m.shape[0]
    labels = [str(v) for v in (range(k) if labels is None else labels)]
    if len(labels) != k:
        raise ValueError(f"{len(labels)} labels for a {k}x{k} matrix")
    total = m.sum()
    rows = m.sum(axis=1)
    recall = np.divide(np.diag(m), rows, out=np.zeros(k), where=rows > 0)
    off = m.astype(float).copy()
    np.fill_diagonal(off, 0)
    worst = off.max()

    mpl = load_matplotlib()
    blues, reds = mpl.colormaps["Blues"], mpl.colormaps["Reds"]
    colours = np.ones((k, k, 4))
    for i in range(k):
        for j in range(k):
            if i == j:
                colours[i, j] = blues(0.15 + 0.75 * recall[i]) if rows[i] else (0.95, 0.95, 0.95, 1)
            elif m[i, j]:
                colours[i, j] = reds(0.12 + 0.78 * m[i, j] / worst)

    side = min(12.0, max(4.5, 0.48 * k + 1.9))
    with new_figure((side + 0.9, side)) as fig:
        ax = fig.subplots()
        ax.imshow(colours, aspect="equal")
        ax.set_axisbelow(False)  # the white cell borders go over the cells
        size = 8 if k <= 10 else max(4, 8 - (k - 10) // 3)
        for i in range(k):
            for j in range(k):
                count = m[i, j]
                text = f"{count:g}" if m.dtype.kind == "f" else f"{int(count)}"
                ax.text(j, i, text, ha="center", va="center", fontsize=size,
                        color=text_color(colours[i, j]) if count else "#b0b0b0",
                        fontweight="bold" if i == j else "normal")
        ax.set_xticks(range(k), labels)
        ax.set_yticks(range(k), labels)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_xticks(np.arange(k + 1) - 0.5, minor=True)
        ax.set_yticks(np.arange(k + 1) - 0.5, minor=True)
        ax.grid(which="minor", color="white", linewidth=1.5)
        ax.tick_params(which="minor", length=0)
        right = ax.secondary_yaxis("right")
        right.set_yticks(range(k), [f"{100 * r:.1f}%" if n else "–" for r, n in zip(recall, rows,
                                                                                   strict=True)])
        right.tick_params(length=0)
        right.set_ylabel("recall (correct / true class)")
        right.spines["right"].set_visible(False)
        accuracy = np.trace(m) / total if total else 0.0
        if title is None:
            title = "Confusion matrix"
        fig.suptitle(f"{title}: accuracy {100 * accuracy:.2f}% "
                     f"({int(np.trace(m)):,} / {int(total):,})")
    return fig


# --- misclassified images ------------------------------------------------------------
def misclassified(
    net: Network,
    x: Any,
    y: Any,
    n: int = 36,
    image_shape: tuple[int, int] = (28, 28),
    labels: Sequence[Any] | None = None,
    title: str | None = None,
) -> Figure:
    """Up to ``n`` images the network gets wrong, most confident mistakes first,
    each titled ``true 3 → 5 (87%)``: the true class, the predicted class and
    the probability the network gave its (wrong) answer."""
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n!r}")
    x = np.asarray(x)
    rows, cols = image_shape
    if x.ndim != 2 or x.shape[1] != rows * cols:
        raise ValueError(f"x must be (n, {rows * cols}) for {rows}x{cols} images, not {x.shape}")
    true = np.asarray(y)
    true = classes(true) if true.ndim == 2 else true.astype(np.int64)
    if true.shape != (x.shape[0],):
        raise ValueError(f"y has {true.shape[0]} labels but x has {x.shape[0]} rows")
    probs = net.predict(x)
    pred = classes(probs)
    confidence = (np.where(pred == 1, probs[:, 0], 1.0 - probs[:, 0]) if net.n_out == 1
                  else probs[np.arange(len(pred)), pred])
    wrong = np.flatnonzero(pred != true)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")]
    shown = wrong[:n]
    name = (lambda c: str(c)) if labels is None else (lambda c: str(labels[c]))
    vmax = 255 if x.dtype == np.uint8 else max(1.0, float(np.max(x)))

    count = max(1, len(shown))
    grid_rows, grid_cols = tile_grid(count, max_cols=9)
    with new_figure((1.25 * grid_cols + 0.3, 1.38 * grid_rows + 0.55)) as fig:
        if len(shown) == 0:
            ax = fig.subplots()
            ax.text(0.5, 0.5, "no misclassified images", ha="center", va="center")
            ax.set_axis_off()
        else:
            axes = fig.subplots(grid_rows, grid_cols, squeeze=False)
            for ax, i in zip(axes.flat, shown, strict=False):
                ax.imshow(x[i].reshape(rows, cols), cmap="gray_r", vmin=0, vmax=vmax)
                ax.set_title(f"true {name(true[i])} → {name(pred[i])} ({100 * confidence[i]:.0f}%)",
                             fontsize=7.5, pad=2)
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_visible(True)
                    spine.set_color("#cccccc")
            for ax in axes.flat[len(shown):]:
                fig.delaxes(ax)
        if title is None:
            title = "Misclassified images"
        fig.suptitle(f"{title}: {len(wrong):,} of {x.shape[0]:,} wrong "
                     f"({100 * len(wrong) / x.shape[0]:.1f}%)"
                     + (f", {len(shown)} most confident shown" if len(wrong) > len(shown) else ""))
    return fig


# --- first-layer weights -------------------------------------------------------------
def first_layer_weights(
    net: Network,
    n: int = 64,
    image_shape: tuple[int, int] = (28, 28),
    shared_scale: bool = True,
    title: str | None = None,
) -> Figure:
    """The incoming weights of the first ``n`` hidden units, each as an image
    tile (``image_shape``), on a diverging colormap centred on 0: red pixels
    excite the unit, blue ones inhibit it. The tiles form one mosaic image.

    With ``shared_scale`` every tile uses the same range, ± the 99.5th
    percentile of ``|W|`` (weak units look pale); otherwise each tile is
    scaled to its own largest weight, which shows every unit's pattern.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n!r}")
    rows, cols = image_shape
    if not isinstance(net.layers[0], Dense):
        raise ValueError(f"the first layer is a {net.layers[0].name}, not a Dense layer with a "
                         "weight per pixel")
    W = np.asarray(net.layers[0].W, dtype=np.float64)
    if W.shape[0] != rows * cols:
        raise ValueError(f"the first layer has {W.shape[0]} inputs, not {rows}x{cols} = "
                         f"{rows * cols} pixels")
    units = min(n, W.shape[1])
    tiles = W[:, :units].T.reshape(units, rows, cols)
    if shared_scale:
        limit = float(np.percentile(np.abs(tiles), 99.5)) or 1.0
        label = "weight"
    else:
        tiles = tiles / np.maximum(np.abs(tiles).max(axis=(1, 2), keepdims=True), 1e-12)
        limit, label = 1.0, "weight / the unit's largest |weight|"
    grid_rows, grid_cols = tile_grid(units, max_cols=16)
    mosaic = tile_mosaic(tiles, grid_cols)

    mpl = load_matplotlib()
    cmap = mpl.colormaps["RdBu_r"].with_extremes(bad="white")
    tile = 0.78 if grid_cols > 8 else 0.95
    with new_figure((tile * grid_cols + 1.0, tile * grid_rows * rows / cols + 0.6)) as fig:
        ax = fig.subplots()
        image = ax.imshow(mosaic, cmap=cmap, vmin=-limit, vmax=limit)
        ax.set_axis_off()
        cbar = fig.colorbar(image, ax=ax, shrink=0.6, aspect=30, pad=0.02,
                            extend="both" if shared_scale else "neither")
        cbar.set_label(label)
        cbar.ax.tick_params(labelsize=7)
        if title is None:
            title = (f"First-layer weights: {units} of {W.shape[1]} hidden units "
                     f"({W.shape[0]} inputs → {W.shape[1]})")
        fig.suptitle(title)
    return fig


def _first_conv(net: Network) -> Conv2D:
    for layer in net.layers:
        if isinstance(layer, Conv2D):
            return layer
    raise ValueError("the network has no Conv2D layer")


def conv_filters(net: Network, title: str | None = None) -> Figure:
    """The kernels of the first convolution, one tile per (output, input) channel pair,
    on a diverging colormap centred on 0 (red: the filter responds to ink there)."""
    conv = _first_conv(net)
    W = np.asarray(conv.W, dtype=np.float64)  # (O, C, kh, kw)
    O, C, kh, kw = W.shape
    tiles = W.reshape(O * C, kh, kw)
    limit = float(np.abs(tiles).max()) or 1.0
    grid_cols = min(O * C, 8 if C == 1 else C)
    mosaic = tile_mosaic(tiles, grid_cols)
    mpl = load_matplotlib()
    cmap = mpl.colormaps["RdBu_r"].with_extremes(bad="white")
    grid_rows = -(-O * C // grid_cols)
    with new_figure((0.75 * grid_cols + 1.2, 0.75 * grid_rows + 0.7)) as fig:
        ax = fig.subplots()
        image = ax.imshow(mosaic, cmap=cmap, vmin=-limit, vmax=limit)
        ax.set_axis_off()
        cbar = fig.colorbar(image, ax=ax, shrink=0.7, aspect=25, pad=0.03)
        cbar.set_label("weight")
        cbar.ax.tick_params(labelsize=7)
        fig.suptitle(title or f"First convolution: {O} filters of {kh}x{kw}"
                     + ("" if C == 1 else f" over {C} channels"))
    return fig


def feature_maps(net: Network, x: Any, title: str | None = None) -> Figure:
    """One input (a row of pixels) and the feature maps each convolution and pooling
    layer makes of it: one grey tile per channel, brighter = larger."""
    x = np.asarray(x)
    stages = []
    h = net.as_float(net.check_inputs(x.reshape(1, -1) if x.ndim == 1 else x[:1]))
    for layer in net.layers:
        h = layer.forward(h)
        if len(layer.output_shape) == 3 and not isinstance(layer, Reshape):
            stages.append((f"{layer.name} {'x'.join(map(str, layer.output_shape))}", np.array(h[0])))
    if not stages:
        raise ValueError("the network has no layer with feature maps (channels x height x width)")
    mpl = load_matplotlib()
    widest = max(min(maps.shape[0], 16) for _, maps in stages)
    with new_figure((0.7 * widest + 1.6, 1.0 + 0.75 * sum(-(-m.shape[0] // 16) for _, m in stages))) as fig:
        grid = fig.add_gridspec(len(stages), 2, width_ratios=[1, widest * 0.9])
        ax = fig.add_subplot(grid[:, 0])
        side = int(round(np.sqrt(x.size)))
        ax.imshow(np.asarray(x, dtype=np.float64).reshape(side, -1), cmap="gray_r")
        ax.set_title("input", fontsize=8)
        ax.set_axis_off()
        for row, (name, maps) in enumerate(stages):
            ax = fig.add_subplot(grid[row, 1])
            top = np.abs(maps).max() or 1.0
            ax.imshow(tile_mosaic(maps / top, min(maps.shape[0], 16)), cmap=mpl.colormaps["gray"],
                      vmin=0, vmax=1)
            ax.set_title(name, fontsize=8, loc="left")
            ax.set_axis_off()
        fig.suptitle(title or "Feature maps of one digit")
    return fig
