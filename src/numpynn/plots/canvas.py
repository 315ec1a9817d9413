"""The canvas every figure is drawn on: matplotlib imported lazily, one style, one way to save.

Figures are built directly (not through ``pyplot``), so nothing touches pyplot's global
state; matplotlib is imported only when a figure is made.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._io import atomic_write

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

MISSING = "plots need matplotlib: pip install 'numpynn[plots]'"

#: Colours used throughout: train and test series.
TRAIN_COLOR = "#1f77b4"
TEST_COLOR = "#d62728"

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


def available() -> bool:
    """Whether matplotlib can be imported (found, not imported): figures can be made."""
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def load_matplotlib() -> Any:
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
        png.for_type(figure_class, lambda fig: render(fig, dpi=100))


def render(fig: Figure, dpi: int = 120, fmt: str = "png") -> bytes:
    """The figure rendered in memory."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi, facecolor="white")
    return buffer.getvalue()


@contextlib.contextmanager
def new_figure(figsize: tuple[float, float]) -> Iterator[Figure]:
    """A new Figure with an Agg canvas and constrained layout, built in the
    numpynn style (the style is scoped to the block: rcParams are left alone)."""
    mpl = load_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    _show_in_jupyter(Figure)
    with mpl.rc_context(_STYLE):
        fig = Figure(figsize=figsize, layout="constrained")
        FigureCanvasAgg(fig)
        yield fig


def text_color(rgba: Sequence[float]) -> str:
    """Black or white, whichever reads better on a background colour."""
    r, g, b = rgba[:3]
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 else "white"


def tile_grid(n: int, max_cols: int = 12) -> tuple[int, int]:
    """Rows and columns for n tiles, close to square and at most ``max_cols`` wide."""
    cols = min(max_cols, max(1, math.ceil(math.sqrt(n))))
    return math.ceil(n / cols), cols


def tile_mosaic(tiles: np.ndarray, grid_cols: int) -> np.ndarray:
    """Tiles (n, rows, cols) side by side, ``grid_cols`` to a row, with blank (NaN) gaps."""
    n, rows, cols = tiles.shape
    grid_rows = -(-n // grid_cols)
    gap = max(1, rows // 14)  # blank pixels between tiles
    mosaic = np.full((grid_rows * (rows + gap) - gap, grid_cols * (cols + gap) - gap), np.nan)
    for j in range(n):
        top, left = (rows + gap) * (j // grid_cols), (cols + gap) * (j % grid_cols)
        mosaic[top : top + rows, left : left + cols] = tiles[j]
    return mosaic


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 120) -> str:
    """Write ``fig`` to ``path`` atomically: rendered in memory first, then
    written beside ``path`` and renamed over it, so an error leaves no partial
    file (and any old file intact). PNG, or SVG / PDF for those suffixes.
    Returns the path as a string."""
    path = os.fspath(path)
    suffix = Path(path).suffix.lower()
    fmt = suffix[1:] if suffix in (".svg", ".pdf") else "png"
    data = render(fig, dpi, fmt)  # an error here leaves the file system untouched
    with atomic_write(path) as f:
        f.write(data)
    return path
