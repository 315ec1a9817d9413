"""Sweep figures: every trial's validation accuracy by each swept option, and per epoch."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .canvas import TEST_COLOR, TRAIN_COLOR, new_figure, save_figure

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from ..sweep import SweepResult


def sweep_results(
    table: Sequence[Mapping[str, Any]], swept: Sequence[str], title: str | None = None
) -> Figure:
    """A sweep at a glance: for each swept option, every trial's validation accuracy
    against the option's value (the best trial starred, the mean of each value joined
    by a line); last, the validation accuracy of every trial per epoch, overlaid, the
    best in red. ``table`` is :attr:`numpynn.sweep.SweepResult.table`."""
    from ..sweep import format_value, rank

    rows = sorted((r for r in table if r.get("val_accuracy") is not None), key=lambda r: r["trial"])
    if not rows:
        raise ValueError("no trial of the sweep finished with a validation score")
    best = min(rows, key=rank)
    panels = len(swept) + 1
    cols = min(panels, 4)
    with new_figure((3.2 * cols, 3.0 * math.ceil(panels / cols))) as fig:
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


def write_sweep_figure(result: SweepResult, path: str | os.PathLike[str] | None = None) -> str | None:
    """Draw a finished sweep (:func:`sweep_results`) into ``path`` (default: ``sweep.png`` in
    the sweep's ``out`` folder), set ``result.figure`` to it and return it; None, writing
    nothing, when no trial has a validation score or there is no ``path`` and no ``out``."""
    from ..sweep import FIGURE

    if result.best is None or (path is None and result.out is None):
        return None
    target = Path(result.out) / FIGURE if path is None else path
    result.figure = save_figure(sweep_results(result.table, result.swept), target)
    return result.figure
