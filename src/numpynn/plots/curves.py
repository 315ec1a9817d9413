"""Training curves: loss and accuracy per epoch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .canvas import TEST_COLOR, TRAIN_COLOR, new_figure

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure


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

    with new_figure((9.0, 3.6)) as fig:
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
