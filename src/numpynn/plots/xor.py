"""XOR figures: a small network's output surface, its hidden units' lines, and how they move."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..layers import Dense
from .canvas import TRAIN_COLOR, new_figure

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..network import Network

#: Colours of the two XOR classes and of the hidden units' lines.
CLASS0_COLOR = "#2166ac"  # the blue end of RdBu_r (output 0)
CLASS1_COLOR = "#b2182b"  # the red end (output 1)
HIDDEN_COLORS = ("#ffd400", "#3ddc84", "#ff8c00", "#e040fb", "#00e5ff", "#c6ff00")
XOR_RANGE = (-0.25, 1.25)


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

    from ..xor import X, Y

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
    with new_figure((9.4, 4.7) if history else (5.2, 5.2)) as fig:
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
    from ..optimizers import SGD
    from ..xor import X, Y, xor_network

    marks = sorted({int(e) for e in epochs})
    if not marks or marks[0] < 0:
        raise ValueError(f"epochs must be non-negative whole numbers, not {epochs!r}")
    net = xor_network(seed)
    optimizer = SGD(lr=lr)
    done = 0
    with new_figure((2.0 * len(marks) + 0.9, 3.2)) as fig:
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
