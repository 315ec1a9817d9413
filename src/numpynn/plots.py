"""Figures: learning curves, confusion matrices, mistakes, weights and XOR surfaces.

Every function returns a :class:`matplotlib.figure.Figure` built directly (not
through ``pyplot``), so nothing touches pyplot's global state: figures work
headless, in scripts and in Jupyter (where a returned figure is shown), and
are garbage-collected like any other object. Save one with
:func:`save_figure` (atomic PNG) or ``fig.savefig(...)``.

matplotlib is optional (``pip install 'numpynn[plots]'``) and is imported
only when a figure is made; ``import numpynn.plots`` alone does not load it.

>>> from numpynn import plots                                  # doctest: +SKIP
>>> net, history = numpynn.recipes.train_classifier(data)      # doctest: +SKIP
>>> plots.save_figure(plots.learning_curves(history), "curves.png")  # doctest: +SKIP
>>> plots.write_training_plots("figures", net, history, data)  # doctest: +SKIP
['learning_curves.png', 'confusion_matrix.png', 'misclassified.png', 'first_layer_weights.png']
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._io import atomic_write, make_folder
from .layers import Conv2D, Dense, Reshape

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .datasets import Dataset
    from .network import Network

__all__ = [
    "confusion_matrix",
    "conv_filters",
    "feature_maps",
    "first_layer_weights",
    "learning_curves",
    "misclassified",
    "save_figure",
    "sweep_results",
    "write_model_plots",
    "write_training_plots",
    "xor_snapshots",
    "xor_surface",
]

MISSING = "plots need matplotlib: pip install 'numpynn[plots]'"

#: Colours used throughout: train and test series, the two XOR classes.
TRAIN_COLOR = "#1f77b4"
TEST_COLOR = "#d62728"
CLASS0_COLOR = "#2166ac"  # the blue end of RdBu_r (output 0)
CLASS1_COLOR = "#b2182b"  # the red end (output 1)
HIDDEN_COLORS = ("#ffd400", "#3ddc84", "#ff8c00", "#e040fb", "#00e5ff", "#c6ff00")

# one look for every figure, applied only while a figure is built (rc_context)
_STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.titleweight": "regular",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "figure.titlesize": 11,
    "figure.titleweight": "bold",
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "image.interpolation": "nearest",
}

XOR_RANGE = (-0.25, 1.25)

#: The files :func:`write_training_plots` / :func:`write_model_plots` may write.
LEARNING_CURVES = "learning_curves.png"
CONFUSION_MATRIX = "confusion_matrix.png"
MISCLASSIFIED = "misclassified.png"
FIRST_LAYER_WEIGHTS = "first_layer_weights.png"
CONV_FILTERS = "conv_filters.png"
FEATURE_MAPS = "feature_maps.png"


# --- matplotlib, lazily --------------------------------------------------------------
def _matplotlib() -> Any:
    """Import matplotlib (or say how to install it); use Agg when there is no display."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError(MISSING) from None
    if (
        sys.platform.startswith("linux")
        and not os.environ.get("MPLBACKEND")
        and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        and "matplotlib.pyplot" not in sys.modules
    ):
        matplotlib.use("Agg")  # headless: never try a GUI backend
    return matplotlib


def _show_in_jupyter(figure_class: type) -> None:
    """In IPython/Jupyter, display returned figures as PNG even when pyplot (which
    normally registers that) was never imported. Leaves an existing printer alone."""
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython is not None else None
    formatters = getattr(getattr(shell, "display_formatter", None), "formatters", None)
    if not formatters or "image/png" not in formatters:
        return
    png = formatters["image/png"]
    if figure_class not in png.type_printers:
        png.for_type(figure_class, lambda fig: _render(fig, dpi=100))


def _render(fig: Figure, dpi: int = 120, fmt: str = "png") -> bytes:
    """The figure rendered in memory."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi, facecolor="white")
    return buffer.getvalue()


@contextlib.contextmanager
def _figure(figsize: tuple[float, float]) -> Iterator[Figure]:
    """A new Figure with an Agg canvas and constrained layout, built in the
    numpynn style (the style is scoped to the block: rcParams are left alone)."""
    mpl = _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    _show_in_jupyter(Figure)
    with mpl.rc_context(_STYLE):
        fig = Figure(figsize=figsize, layout="constrained")
        FigureCanvasAgg(fig)
        yield fig


def _text_color(rgba: Sequence[float]) -> str:
    """Black or white, whichever reads better on a background colour."""
    r, g, b = rgba[:3]
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 else "white"


def _grid(n: int, max_cols: int = 12) -> tuple[int, int]:
    """Rows and columns for n tiles, close to square and at most ``max_cols`` wide."""
    cols = min(max_cols, max(1, math.ceil(math.sqrt(n))))
    return math.ceil(n / cols), cols


def _as_labels(y: Any, n_out: int) -> np.ndarray:
    """Class labels (n,) from labels or target rows."""
    y = np.asarray(y)
    if y.ndim == 2:
        return y.argmax(axis=1) if y.shape[1] > 1 else (y[:, 0] > 0.5).astype(np.int64)
    return y.astype(np.int64)


# --- learning curves -----------------------------------------------------------------
def learning_curves(
    history: Mapping[str, Sequence[float]], val_label: str = "test", title: str | None = None
) -> Figure:
    """Loss (left) and accuracy in % (right) per epoch, for training and, when the
    history has ``val_loss`` / ``val_accuracy``, the held-out set (labelled
    ``val_label``); the best held-out epoch is marked.

    ``history`` is what :meth:`Network.fit` returns.
    """
    loss = [float(v) for v in history.get("loss", [])]
    if not loss:
        raise ValueError("the history holds no epochs (no 'loss' values)")
    epochs = list(history.get("epoch") or range(1, len(loss) + 1))
    if len(epochs) != len(loss):
        raise ValueError(f"history has {len(epochs)} epochs but {len(loss)} loss values")
    acc = [100.0 * float(v) for v in history.get("accuracy", [])]
    val_loss = [float(v) for v in history.get("val_loss") or []]
    val_acc = [100.0 * float(v) for v in history.get("val_accuracy") or []]
    marker = "o" if len(epochs) <= 30 else None
    line = {"marker": marker, "markersize": 3.5, "linewidth": 1.6}

    with _figure((9.0, 3.6)) as fig:
        ax_loss, ax_acc = fig.subplots(1, 2)
        ax_loss.plot(epochs, loss, color=TRAIN_COLOR, label="train", **line)
        if val_loss:
            ax_loss.plot(epochs[: len(val_loss)], val_loss, color=TEST_COLOR, label=val_label, **line)
        values = [v for v in loss + val_loss if v > 0]
        if values and max(values) / min(values) > 30:
            ax_loss.set_yscale("log")
        ax_loss.set_title("Loss")
        ax_loss.set_ylabel("mean loss per sample")

        if acc:
            ax_acc.plot(epochs[: len(acc)], acc, color=TRAIN_COLOR, label="train", **line)
        if val_acc:
            ax_acc.plot(epochs[: len(val_acc)], val_acc, color=TEST_COLOR, label=val_label, **line)
            best = int(np.argmax(val_acc))
            ax_acc.plot(epochs[best], val_acc[best], marker="*", markersize=13, color=TEST_COLOR,
                        markeredgecolor="black", markeredgewidth=0.6, linestyle="none", zorder=5,
                        clip_on=False,
                        label=f"best {val_label}: {val_acc[best]:.2f}% (epoch {epochs[best]})")
        ax_acc.set_title("Accuracy")
        ax_acc.set_ylabel("accuracy (%)")
        shown = acc + val_acc
        if shown:  # start the axis near the curves, not at 0, and never pass 100
            low, high = min(shown), max(shown)
            pad = max(1.0, 0.08 * (high - low))
            ax_acc.set_ylim(max(0.0, low - pad), min(100.0, high + pad) + (0.3 if high > 99 else 0))
        for ax in (ax_loss, ax_acc):
            ax.set_xlabel("epoch")
            ax.grid(True)
            ax.xaxis.get_major_locator().set_params(integer=True)
            if len(epochs) == 1:
                ax.set_xlim(epochs[0] - 1, epochs[0] + 1)
        ax_loss.legend(loc="upper right")  # losses fall, accuracies rise
        ax_acc.legend(loc="lower right")
        if title is None:
            last = f", final {val_label} accuracy {val_acc[-1]:.2f}%" if val_acc else ""
            title = f"Learning curves: {len(epochs)} epoch{'s' if len(epochs) != 1 else ''}{last}"
        fig.suptitle(title)
    return fig


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

    mpl = _matplotlib()
    blues, reds = mpl.colormaps["Blues"], mpl.colormaps["Reds"]
    colours = np.ones((k, k, 4))
    for i in range(k):
        for j in range(k):
            if i == j:
                colours[i, j] = blues(0.15 + 0.75 * recall[i]) if rows[i] else (0.95, 0.95, 0.95, 1)
            elif m[i, j]:
                colours[i, j] = reds(0.12 + 0.78 * m[i, j] / worst)

    side = min(12.0, max(4.5, 0.48 * k + 1.9))
    with _figure((side + 0.9, side)) as fig:
        ax = fig.subplots()
        ax.imshow(colours, aspect="equal")
        ax.set_axisbelow(False)  # the white cell borders go over the cells
        size = 8 if k <= 10 else max(4, 8 - (k - 10) // 3)
        for i in range(k):
            for j in range(k):
                count = m[i, j]
                text = f"{count:g}" if m.dtype.kind == "f" else f"{int(count)}"
                ax.text(j, i, text, ha="center", va="center", fontsize=size,
                        color=_text_color(colours[i, j]) if count else "#b0b0b0",
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
    true = _as_labels(y, net.n_out)
    if true.shape != (x.shape[0],):
        raise ValueError(f"y has {true.shape[0]} labels but x has {x.shape[0]} rows")
    probs = net.predict(x)
    if net.n_out == 1:
        pred = (probs[:, 0] > 0.5).astype(np.int64)
        confidence = np.where(pred == 1, probs[:, 0], 1.0 - probs[:, 0])
    else:
        pred = probs.argmax(axis=1)
        confidence = probs[np.arange(len(pred)), pred]
    wrong = np.flatnonzero(pred != true)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")]
    shown = wrong[:n]
    name = (lambda c: str(c)) if labels is None else (lambda c: str(labels[c]))
    vmax = 255 if x.dtype == np.uint8 else max(1.0, float(np.max(x)))

    count = max(1, len(shown))
    grid_rows, grid_cols = _grid(count, max_cols=9)
    with _figure((1.25 * grid_cols + 0.3, 1.38 * grid_rows + 0.55)) as fig:
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
    grid_rows, grid_cols = _grid(units, max_cols=16)
    mosaic = _mosaic(tiles, grid_cols)

    mpl = _matplotlib()
    cmap = mpl.colormaps["RdBu_r"].with_extremes(bad="white")
    tile = 0.78 if grid_cols > 8 else 0.95
    with _figure((tile * grid_cols + 1.0, tile * grid_rows * rows / cols + 0.6)) as fig:
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


def _mosaic(tiles: np.ndarray, grid_cols: int) -> np.ndarray:
    """Tiles (n, rows, cols) side by side, ``grid_cols`` to a row, with blank (NaN) gaps."""
    n, rows, cols = tiles.shape
    grid_rows = -(-n // grid_cols)
    gap = max(1, rows // 14)  # blank pixels between tiles
    mosaic = np.full((grid_rows * (rows + gap) - gap, grid_cols * (cols + gap) - gap), np.nan)
    for j in range(n):
        top, left = (rows + gap) * (j // grid_cols), (cols + gap) * (j % grid_cols)
        mosaic[top : top + rows, left : left + cols] = tiles[j]
    return mosaic


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
    mosaic = _mosaic(tiles, grid_cols)
    mpl = _matplotlib()
    cmap = mpl.colormaps["RdBu_r"].with_extremes(bad="white")
    grid_rows = -(-O * C // grid_cols)
    with _figure((0.75 * grid_cols + 1.2, 0.75 * grid_rows + 0.7)) as fig:
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
    h = net._as_float(net._check_x(x.reshape(1, -1) if x.ndim == 1 else x[:1]))
    for layer in net.layers:
        h = layer.forward(h)
        if len(layer.output_shape) == 3 and not isinstance(layer, Reshape):
            stages.append((f"{layer.name} {'x'.join(map(str, layer.output_shape))}", np.array(h[0])))
    if not stages:
        raise ValueError("the network has no layer with feature maps (channels x height x width)")
    mpl = _matplotlib()
    widest = max(min(maps.shape[0], 16) for _, maps in stages)
    with _figure((0.7 * widest + 1.6, 1.0 + 0.75 * sum(-(-m.shape[0] // 16) for _, m in stages))) as fig:
        grid = fig.add_gridspec(len(stages), 2, width_ratios=[1, widest * 0.9])
        ax = fig.add_subplot(grid[:, 0])
        side = int(round(np.sqrt(x.size)))
        ax.imshow(np.asarray(x, dtype=np.float64).reshape(side, -1), cmap="gray_r")
        ax.set_title("input", fontsize=8)
        ax.set_axis_off()
        for row, (name, maps) in enumerate(stages):
            ax = fig.add_subplot(grid[row, 1])
            top = np.abs(maps).max() or 1.0
            ax.imshow(_mosaic(maps / top, min(maps.shape[0], 16)), cmap=mpl.colormaps["gray"], vmin=0, vmax=1)
            ax.set_title(name, fontsize=8, loc="left")
            ax.set_axis_off()
        fig.suptitle(title or "Feature maps of one digit")
    return fig


# --- XOR -----------------------------------------------------------------------------
def _xor_grid(net: Network, steps: int = 241) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if net.n_in != 2 or net.n_out != 1:
        raise ValueError(f"the XOR plots need a network with 2 inputs and 1 output, not "
                         f"{net.n_in} -> {net.n_out}")
    t = np.linspace(*XOR_RANGE, steps)
    g1, g2 = np.meshgrid(t, t)
    out = net.predict(np.column_stack([g1.ravel(), g2.ravel()]).astype(net.dtype))[:, 0]
    return g1, g2, out.reshape(g1.shape)


def _hidden_line(w1: float, w2: float, b: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Points of w1·x1 + w2·x2 + b = 0 across the plotted square (None: no line)."""
    lo, hi = XOR_RANGE
    if abs(w2) >= abs(w1):
        if w2 == 0:
            return None
        x1 = np.array([lo - 1, hi + 1])
        return x1, -(w1 * x1 + b) / w2
    x2 = np.array([lo - 1, hi + 1])
    return -(w2 * x2 + b) / w1, x2


def _draw_xor(ax: Axes, net: Network, *, small: bool = False) -> Any:
    """Output surface, decision boundary, hidden units' lines and the 4 points on ``ax``."""
    from matplotlib import patheffects
    from matplotlib.lines import Line2D

    from .xor import X, Y

    g1, g2, out = _xor_grid(net, 121 if small else 241)
    surface = ax.contourf(g1, g2, out, levels=np.linspace(0, 1, 21), cmap="RdBu_r", vmin=0, vmax=1)
    width = 1.1 if small else 1.6
    ax.contour(g1, g2, out, levels=[0.5], colors="black", linewidths=width, zorder=3)
    handles = [Line2D([], [], color="black", linewidth=width, label="output = 0.5")]
    if len(net.layers) >= 2 and isinstance(net.layers[0], Dense):
        first = net.layers[0]
        outline = [patheffects.withStroke(linewidth=width + 1.2, foreground="#222222")]
        for j in range(first.n_out):
            line = _hidden_line(float(first.W[0, j]), float(first.W[1, j]), float(first.b[j]))
            if line is None:
                continue
            (drawn,) = ax.plot(*line, color=HIDDEN_COLORS[j % len(HIDDEN_COLORS)], linestyle=(0, (4, 2)),
                               linewidth=width, zorder=4, path_effects=outline,
                               label=f"hidden unit {j + 1}: z = 0")
            handles.append(drawn)
    outputs = net.predict(X.astype(net.dtype))[:, 0]
    for target in (0, 1):
        rows = Y[:, 0] == target
        ax.scatter(X[rows, 0], X[rows, 1], s=40 if small else 110, zorder=6, linewidths=1.2,
                   marker="o" if target else "s", color=CLASS1_COLOR if target else CLASS0_COLOR,
                   edgecolors="black", label=f"target {target}",
                   path_effects=[patheffects.withStroke(linewidth=3.5, foreground="white")])
    handles += ax.collections[-2:]
    if not small:
        for (x1, x2), target, output in zip(X, Y[:, 0], outputs, strict=True):
            ax.annotate(f"target {target:.0f}\noutput {output:.2f}", (x1, x2),
                        xytext=(0, -13 if x2 < 0.5 else 13), textcoords="offset points",
                        ha="center", va="top" if x2 < 0.5 else "bottom", fontsize=7.5, zorder=7,
                        bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "none",
                              "alpha": 0.85})
    ax.set_xlim(*XOR_RANGE)
    ax.set_ylim(*XOR_RANGE)
    ax.set_aspect("equal")
    ticks = [0, 0.5, 1]
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    return surface, handles


def xor_surface(net: Network, history: Mapping[str, Sequence[float]] | None = None,
                title: str | None = None) -> Figure:
    """The output of a 2-input, 1-output network over [−0.25, 1.25]² (colour),
    its decision boundary (output = 0.5, black), the line where each first-layer
    unit's z = w1·x1 + w2·x2 + b is 0 (dashed) and the four XOR points coloured
    by target. With ``history`` (from :meth:`Network.fit`) a second panel
    shows the loss per epoch.
    """
    with _figure((9.4, 4.7) if history else (5.2, 5.2)) as fig:
        if history:
            ax, ax_loss = fig.subplots(1, 2, width_ratios=[1.15, 1])
        else:
            ax = fig.subplots()
        surface, handles = _draw_xor(ax, net)
        ax.set_xlabel("$x_1$")
        ax.set_ylabel("$x_2$")
        ax.set_title("Network output and hidden units' lines")
        fig.legend(handles=handles, loc="outside lower center", ncol=5 if history else 3,
                   frameon=False, handlelength=2.6)
        cbar = fig.colorbar(surface, ax=ax, shrink=0.85, pad=0.02, ticks=[0, 0.25, 0.5, 0.75, 1])
        cbar.set_label("network output")
        if history:
            loss = list(history.get("loss", []))
            epochs = list(history.get("epoch") or range(1, len(loss) + 1))
            ax_loss.plot(epochs, loss, color=TRAIN_COLOR, linewidth=1.6)
            if loss and min(loss) > 0:
                ax_loss.set_yscale("log")
            ax_loss.set_xlabel("epoch")
            ax_loss.set_ylabel("loss (squared error)")
            ax_loss.set_title(f"Loss: {loss[-1]:.2g} after {epochs[-1]} epochs" if loss else "Loss")
            ax_loss.grid(True)
            fig.get_layout_engine().set(wspace=0.08)
        fig.suptitle(title or f"XOR with a {'-'.join(map(str, net.sizes))} network")
    return fig


def xor_snapshots(
    seed: int = 0,
    epochs: Sequence[int] = (0, 25, 50, 75, 100, 200, 1000),
    lr: float = 20.0,
    title: str | None = None,
) -> Figure:
    """A strip of XOR decision surfaces while a fresh 2-2-1 network learns
    (:func:`numpynn.xor.xor_network` with ``seed``; full-batch SGD, learning
    rate ``lr``), one panel per epoch count in ``epochs``: watch the two
    hidden units' lines (dashed) move until they fence off the two 1s."""
    from .optimizers import SGD
    from .xor import X, Y, xor_network

    marks = sorted({int(e) for e in epochs})
    if not marks or marks[0] < 0:
        raise ValueError(f"epochs must be non-negative whole numbers, not {epochs!r}")
    net = xor_network(seed)
    optimizer = SGD(lr=lr)
    done = 0
    with _figure((2.0 * len(marks) + 0.9, 3.2)) as fig:
        axes = fig.subplots(1, len(marks), squeeze=False)[0]
        surface = None
        for ax, epoch in zip(axes, marks, strict=True):
            if epoch > done:
                net.fit(X, Y, epochs=epoch, batch_size=4, optimizer=optimizer, shuffle=False,
                        progress=False, initial_epoch=done)
                done = epoch
            surface, handles = _draw_xor(ax, net, small=True)
            loss = net.evaluate(X, Y)["loss"]
            ax.set_title(f"epoch {epoch}\nloss {loss:.3g}", fontsize=9)
            ax.tick_params(labelsize=7)
            if ax is not axes[0]:
                ax.set_yticklabels([])
        cbar = fig.colorbar(surface, ax=list(axes), shrink=0.8, pad=0.01, ticks=[0, 0.5, 1])
        cbar.set_label("output")
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False,
                   handlelength=2.6)
        fig.suptitle(title or f"XOR: a 2-2-1 network learning (seed {seed}, full-batch SGD, "
                              f"learning rate {lr:g})")
    return fig


# --- sweeps --------------------------------------------------------------------------
def sweep_results(
    table: Sequence[Mapping[str, Any]], swept: Sequence[str], title: str | None = None
) -> Figure:
    """A sweep at a glance: for each swept option, every trial's validation accuracy
    against the option's value (the best trial starred, the mean of each value joined
    by a line); last, the validation accuracy of every trial per epoch, overlaid, the
    best in red. ``table`` is :attr:`numpynn.sweep.SweepResult.table`."""
    from .sweep import format_value

    rows = sorted((r for r in table if r.get("val_accuracy") is not None), key=lambda r: r["trial"])
    if not rows:
        raise ValueError("no trial of the sweep finished with a validation score")
    best = min(rows, key=lambda r: (-r["val_accuracy"], r["val_loss"], r["trial"]))
    panels = len(swept) + 1
    cols = min(panels, 4)
    with _figure((3.2 * cols, 3.0 * math.ceil(panels / cols))) as fig:
        axes = np.atleast_1d(fig.subplots(math.ceil(panels / cols), cols)).ravel()
        for ax, name in zip(axes, swept, strict=False):
            labels: list[str] = []
            for r in rows:
                if format_value(r["options"].get(name)) not in labels:
                    labels.append(format_value(r["options"].get(name)))
            xs = [labels.index(format_value(r["options"].get(name))) for r in rows]
            ys = [100 * r["val_accuracy"] for r in rows]
            ax.scatter(xs, ys, s=14, color=TRAIN_COLOR, alpha=0.6, zorder=3)
            means = [np.mean([y for x, y in zip(xs, ys, strict=True) if x == i]) for i in range(len(labels))]
            ax.plot(range(len(labels)), means, color=TRAIN_COLOR, linewidth=1.2, label="mean")
            ax.plot(labels.index(format_value(best["options"].get(name))), 100 * best["val_accuracy"],
                    marker="*", markersize=12, color=TEST_COLOR, markeredgecolor="black",
                    markeredgewidth=0.6, linestyle="none", zorder=5, label="best")
            ax.set_xticks(range(len(labels)), labels, rotation=30 if len(labels) > 4 else 0)
            ax.margins(x=0.2, y=0.15)
            ax.set_xlabel(name)
            ax.set_ylabel("validation accuracy (%)")
            ax.set_title(f"By {name}")
            ax.grid(True)
        ax = axes[len(swept)]
        for r in rows:
            curve = [100 * v for v in r["history"].get("val_accuracy", [])]
            if r is not best:
                ax.plot(range(1, len(curve) + 1), curve, color="0.6", linewidth=0.8, alpha=0.6)
        curve = [100 * v for v in best["history"].get("val_accuracy", [])]
        ax.plot(range(1, len(curve) + 1), curve, color=TEST_COLOR, linewidth=1.8,
                label=f"best: {100 * best['val_accuracy']:.2f}%")
        # fit the data: from a little under the lowest final score (early epochs below it run
        # off the bottom) to a little over the highest point of any curve, within 0-100%
        low = min(100 * r["val_accuracy"] for r in rows)
        high = max([100 * v for r in rows for v in r["history"].get("val_accuracy", [])]
                   + [100 * r["val_accuracy"] for r in rows])
        pad = max(0.1 * (high - low), 0.2)
        ax.set_ylim(max(0.0, low - 2 * pad), min(100.3, high + pad))
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel("validation accuracy (%)")
        ax.set_title("Every trial, per epoch")
        ax.grid(True)
        ax.legend(loc="lower right")
        for ax in axes[panels:]:
            ax.set_visible(False)
        fig.suptitle(title or f"Sweep: {len(rows)} trials scored on the validation split")
    return fig


# --- writing -------------------------------------------------------------------------
def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 120) -> str:
    """Write ``fig`` to ``path`` atomically: rendered in memory first, then
    written beside ``path`` and renamed over it, so an error leaves no partial
    file (and any old file intact). PNG, or SVG / PDF for those suffixes.
    Returns the path as a string."""
    path = os.fspath(path)
    suffix = Path(path).suffix.lower()
    fmt = suffix[1:] if suffix in (".svg", ".pdf") else "png"
    data = _render(fig, dpi, fmt)  # an error here leaves the file system untouched
    with atomic_write(path) as f:
        f.write(data)
    return path


def write_model_plots(out_dir: str | os.PathLike[str], net: Network, data: Dataset) -> list[str]:
    """The figures of a trained classifier on ``data``'s test split, written to
    ``out_dir`` (created if needed): ``confusion_matrix.png``,
    ``misclassified.png`` and, when the first layer reads the images'
    pixels, ``first_layer_weights.png``; for a convnet ``conv_filters.png`` and
    ``feature_maps.png`` (of the first test image). Returns the file names written."""
    out = make_folder(out_dir)
    what = f"{data.name} test set"
    written = []
    save_figure(confusion_matrix(net.confusion_matrix(data.x_test, data.y_test),
                                 title=f"Confusion matrix, {what}"), out / CONFUSION_MATRIX)
    written.append(CONFUSION_MATRIX)
    save_figure(misclassified(net, data.x_test, data.y_test, image_shape=data.image_shape,
                              title=f"Misclassified, {what}"), out / MISCLASSIFIED)
    written.append(MISCLASSIFIED)
    rows, cols = data.image_shape
    first = net.layers[0]
    if isinstance(first, Dense) and first.n_in == rows * cols:  # it reads pixels: its weights are images
        save_figure(first_layer_weights(net, image_shape=data.image_shape), out / FIRST_LAYER_WEIGHTS)
        written.append(FIRST_LAYER_WEIGHTS)
    if any(isinstance(layer, Conv2D) for layer in net.layers):  # a convnet: its filters, its maps
        save_figure(conv_filters(net), out / CONV_FILTERS)
        digit = data.x_test[0]
        save_figure(feature_maps(net, digit, title=f"Feature maps of a test {data.y_test[0]}"),
                    out / FEATURE_MAPS)
        written += [CONV_FILTERS, FEATURE_MAPS]
    return written


def write_training_plots(
    out_dir: str | os.PathLike[str], net: Network, history: Mapping[str, Sequence[float]],
    data: Dataset,
) -> list[str]:
    """Everything :func:`write_model_plots` writes, after ``learning_curves.png``
    from the training ``history``. Returns the file names written."""
    out = make_folder(out_dir)
    # the history's val_* columns are the validation split of the training data, not the test set
    save_figure(learning_curves(history, val_label="validation"), out / LEARNING_CURVES)
    return [LEARNING_CURVES, *write_model_plots(out, net, data)]
