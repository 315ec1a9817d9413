"""Tests for numpynn.plots: every figure builds headless, saves as a valid PNG,
atomically, and the module itself does not import matplotlib."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402

import numpynn as nn  # noqa: E402
from numpynn import datasets, plots  # noqa: E402
from numpynn.optimizers import SGD  # noqa: E402
from numpynn.xor import X, Y, xor_network  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def data() -> datasets.Dataset:
    return datasets.load("mnist-sample")


@pytest.fixture(scope="module")
def trained(data: datasets.Dataset) -> tuple[nn.Network, dict]:
    """A 784-32-10 network after one epoch on 2,000 sample images (about 85% right)."""
    net = nn.Network([nn.Dense(784, 32, "relu"), nn.Dense(32, 10, "softmax")], seed=0)
    history = net.fit(data.x_train[:2000], data.y_train[:2000], epochs=1, batch_size=32,
                      optimizer=nn.Adam(lr=3e-3), validation=(data.x_test, data.y_test),
                      progress=False)
    return net, history


@pytest.fixture(scope="module")
def xor_net() -> tuple[nn.Network, dict]:
    net = xor_network(0)
    history = net.fit(X, Y, epochs=300, batch_size=4, optimizer=SGD(lr=20), shuffle=False,
                      progress=False)
    return net, history


def _texts(fig: Figure) -> list[str]:
    """Every text in the figure: titles, annotations, tick labels, legends."""
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]


# --------------------------------------------------------------------------- import


def test_import_does_not_load_matplotlib() -> None:
    code = "import sys, numpynn.plots; assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_missing_matplotlib_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    with pytest.raises(ImportError, match=r"pip install 'numpynn\[plots\]'"):
        plots.confusion_matrix(np.eye(2, dtype=int))


def test_figures_show_in_jupyter_without_pyplot(monkeypatch: pytest.MonkeyPatch) -> None:
    """In an IPython session a returned figure displays as PNG, pyplot or not."""

    class PNGFormatter:
        def __init__(self) -> None:
            self.type_printers: dict[type, object] = {}

        def for_type(self, typ: type, func: object) -> None:
            self.type_printers[typ] = func

    png = PNGFormatter()
    shell = SimpleNamespace(display_formatter=SimpleNamespace(formatters={"image/png": png}))
    ipython = SimpleNamespace(get_ipython=lambda: shell, version_info=(8, 24, 0))
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    fig = plots.confusion_matrix(np.eye(2, dtype=int))
    printer = png.type_printers[Figure]
    assert printer(fig).startswith(PNG_SIGNATURE)
    png.type_printers[Figure] = "theirs"  # an existing printer (matplotlib-inline's) is kept
    plots.confusion_matrix(np.eye(2, dtype=int))
    assert png.type_printers[Figure] == "theirs"


# --------------------------------------------------------------------------- learning curves


def test_learning_curves_with_validation() -> None:
    history = {"epoch": [1, 2, 3, 4], "loss": [0.9, 0.5, 0.3, 0.2], "accuracy": [0.7, 0.85, 0.9, 0.93],
               "lr": [1e-3] * 4, "seconds": [1.0] * 4,
               "val_loss": [0.6, 0.4, 0.35, 0.37], "val_accuracy": [0.8, 0.88, 0.91, 0.90]}
    fig = plots.learning_curves(history)
    assert isinstance(fig, Figure)
    ax_loss, ax_acc = fig.axes
    assert [line.get_label() for line in ax_loss.lines] == ["train", "test"]
    assert len(ax_acc.lines) == 3  # train, test, best-epoch marker
    best = ax_acc.lines[2]
    assert list(best.get_xdata()) == [3] and list(best.get_ydata()) == pytest.approx([91.0])
    assert "best test: 91.00% (epoch 3)" in best.get_label()
    assert list(ax_acc.lines[0].get_ydata()) == pytest.approx([70, 85, 90, 93])  # in %
    assert ax_loss.get_xlabel() == "epoch" and "%" in ax_acc.get_ylabel()
    assert "90.00%" in fig._suptitle.get_text()


def test_learning_curves_train_only_and_single_epoch() -> None:
    fig = plots.learning_curves({"loss": [0.5], "accuracy": [0.8]})
    ax_loss, ax_acc = fig.axes
    assert len(ax_loss.lines) == 1 and len(ax_acc.lines) == 1
    with pytest.raises(ValueError, match="no epochs"):
        plots.learning_curves({"loss": []})


# --------------------------------------------------------------------------- confusion matrix


def test_confusion_matrix_annotations() -> None:
    rng = np.random.default_rng(0)
    m = rng.integers(0, 5, size=(10, 10)) + np.diag(rng.integers(50, 100, size=10))
    fig = plots.confusion_matrix(m)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.texts) == 100
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t for t in ax.texts}
    assert all(cells[i, j].get_text() == str(m[i, j]) for i in range(10) for j in range(10))
    # dark diagonal cells get white text
    assert cells[0, 0].get_color() == "white"
    accuracy = 100 * np.trace(m) / m.sum()
    assert f"{accuracy:.2f}%" in fig._suptitle.get_text()
    recall = 100 * np.diag(m) / m.sum(axis=1)
    texts = _texts(fig)
    assert all(f"{r:.1f}%" in texts for r in recall)


def test_confusion_matrix_labels_and_checks() -> None:
    fig = plots.confusion_matrix([[3, 1], [0, 4]], labels=["cat", "dog"])
    assert {"cat", "dog"} <= set(_texts(fig))
    assert len(fig.axes[0].texts) == 4
    with pytest.raises(ValueError, match="square"):
        plots.confusion_matrix(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="labels"):
        plots.confusion_matrix(np.eye(3), labels=["a"])
    with pytest.raises(ValueError, match="non-negative"):
        plots.confusion_matrix([[1, -1], [0, 1]])


# --------------------------------------------------------------------------- images


def test_misclassified_grid(trained: tuple, data: datasets.Dataset) -> None:
    net, _ = trained
    x, y = data.x_test[:500], data.y_test[:500]
    fig = plots.misclassified(net, x, y, n=12)
    titles = [ax.get_title() for ax in fig.axes]
    assert len(titles) == 12
    wrong = np.count_nonzero(net.classify(x) != y)
    assert wrong > 12
    for title in titles:
        true, pred = title.removeprefix("true ").split(" (")[0].split(" → ")
        assert true != pred
    confidences = [int(t.rsplit("(", 1)[1].rstrip("%)")) for t in titles]
    assert confidences == sorted(confidences, reverse=True)  # most confident first
    assert f"{wrong} of 500 wrong" in fig._suptitle.get_text()


def test_misclassified_none_wrong(trained: tuple, data: datasets.Dataset) -> None:
    net, _ = trained
    right = net.classify(data.x_test) == data.y_test
    fig = plots.misclassified(net, data.x_test[right][:20], data.y_test[right][:20])
    assert len(fig.axes) == 1
    assert "no misclassified images" in _texts(fig)


def test_first_layer_weights(trained: tuple) -> None:
    net, _ = trained
    fig = plots.first_layer_weights(net, n=64)  # only 32 units: all of them
    image_axes = [ax for ax in fig.axes if ax.images]
    (image,) = image_axes[0].images
    mosaic = image.get_array()
    assert mosaic.shape == (6 * 28 + 5 * 2, 6 * 28 + 5 * 2)  # 32 tiles, 6 per row, 2-pixel gaps
    tile = np.asarray(mosaic[:28, 30:58])
    assert np.allclose(tile, net.layers[0].W[:, 1].reshape(28, 28))
    lo, hi = image.get_clim()
    assert lo == -hi  # centred on 0
    assert "32 of 32 hidden units" in fig._suptitle.get_text()
    per_unit = plots.first_layer_weights(net, n=4, shared_scale=False).axes[0].images[0]
    assert per_unit.get_clim() == (-1.0, 1.0)
    with pytest.raises(ValueError, match="inputs"):
        plots.first_layer_weights(net, image_shape=(20, 20))


# --------------------------------------------------------------------------- XOR


def test_xor_surface(xor_net: tuple) -> None:
    net, history = xor_net
    fig = plots.xor_surface(net)
    ax = fig.axes[0]
    hidden = [line for line in ax.lines if line.get_label().startswith("hidden unit")]
    assert len(hidden) == 2
    # each dashed line is where that hidden unit's z = w1·x1 + w2·x2 + b is 0
    W, b = net.layers[0].W, net.layers[0].b
    for j, line in enumerate(hidden):
        points = np.column_stack([line.get_xdata(), line.get_ydata()])
        assert np.allclose(points @ W[:, j] + b[j], 0, atol=1e-9)
    assert len(ax.collections[-2].get_offsets()) + len(ax.collections[-1].get_offsets()) == 4
    assert len(fig.axes) == 2  # the surface and its colour bar
    with_history = plots.xor_surface(net, history)
    assert len(with_history.axes) == 3
    assert "300 epochs" in with_history.axes[1].get_title()
    with pytest.raises(ValueError, match="2 inputs and 1 output"):
        plots.xor_surface(nn.Network([nn.Dense(3, 1, "sigmoid")]))


def test_xor_snapshots() -> None:
    fig = plots.xor_snapshots(seed=0, epochs=(0, 10, 40))
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert [t.split("\n")[0] for t in titles] == ["epoch 0", "epoch 10", "epoch 40"]
    # the last panel's loss is that of a network trained for 40 epochs in one go
    net = xor_network(0)
    net.fit(X, Y, epochs=40, batch_size=4, optimizer=SGD(lr=20), shuffle=False, progress=False)
    assert titles[-1].split("\n")[1] == f"loss {net.evaluate(X, Y)['loss']:.3g}"
    with pytest.raises(ValueError, match="non-negative"):
        plots.xor_snapshots(epochs=(-1, 5))


# --------------------------------------------------------------------------- saving


def test_save_figure_writes_png(tmp_path: Path) -> None:
    from PIL import Image

    fig = plots.confusion_matrix(np.eye(3, dtype=int) * 5)
    path = tmp_path / "cm.png"
    assert plots.save_figure(fig, path, dpi=50) == str(path)
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    width, height = fig.get_size_inches() * 50
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (round(width), round(height))
    assert sorted(os.listdir(tmp_path)) == ["cm.png"]


def test_save_figure_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fig = plots.confusion_matrix(np.eye(2, dtype=int))
    path = tmp_path / "plot.png"
    path.write_bytes(b"old figure")

    def broken(target: io.BytesIO, **kwargs: object) -> None:
        target.write(PNG_SIGNATURE + b"half a figure")
        raise RuntimeError("renderer failed")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(RuntimeError, match="renderer failed"):
        plots.save_figure(fig, path)
    assert path.read_bytes() == b"old figure"
    with pytest.raises(RuntimeError):
        plots.save_figure(fig, tmp_path / "new.png")
    assert sorted(os.listdir(tmp_path)) == ["plot.png"]  # no new file, no temporary left


# --------------------------------------------------------------------------- writing sets


def test_write_training_plots(tmp_path: Path, trained: tuple, data: datasets.Dataset) -> None:
    from PIL import Image

    net, history = trained
    out = tmp_path / "figures" / "run1"
    written = plots.write_training_plots(out, net, history, data)
    assert written == ["learning_curves.png", "confusion_matrix.png", "misclassified.png",
                       "first_layer_weights.png"]
    assert sorted(os.listdir(out)) == sorted(written)
    for name in written:
        with Image.open(out / name) as image:
            assert image.format == "PNG" and min(image.size) > 200


def test_write_model_plots_without_history(tmp_path: Path, trained: tuple, data: datasets.Dataset,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    net, _ = trained
    saved: dict[str, Figure] = {}
    monkeypatch.setattr(plots.writing, "save_figure", lambda fig, path: saved.setdefault(Path(path).name, fig))
    out = tmp_path / "model"
    written = plots.write_model_plots(out, net, data)  # rendering is tested above
    assert written == ["confusion_matrix.png", "misclassified.png", "first_layer_weights.png"]
    assert list(saved) == written and out.is_dir()
    assert len(saved["confusion_matrix.png"].axes[0].texts) == 100
    assert "mnist-sample test set" in saved["misclassified.png"]._suptitle.get_text()


def test_sweep_figure_fits_its_axes_to_the_scores() -> None:
    """Every trial between 85% and 89%: the per-epoch panel spans about that, not up to 100%."""
    rows = []
    for trial, (lr, final) in enumerate([(1e-3, 0.852), (3e-3, 0.874), (1e-2, 0.889), (3e-2, 0.861)]):
        curve = list(np.linspace(0.850, final, 5))
        rows.append({"trial": trial, "options": {"lr": lr}, "val_accuracy": final, "val_loss": 1 - final,
                     "history": {"epoch": [1, 2, 3, 4, 5], "val_accuracy": curve}, "error": None})
    fig = plots.sweep_results(rows, ["lr"])
    per_epoch = fig.axes[1]
    assert per_epoch.get_title() == "Every trial, per epoch"
    bottom, top = per_epoch.get_ylim()
    points = [y for line in per_epoch.get_lines() for y in line.get_ydata()]
    assert bottom <= min(points) and max(points) <= top  # every point shows
    assert 80 <= bottom and top <= 90, (bottom, top)  # and the panel is about the scores
    by_lr = fig.axes[0]
    assert by_lr.get_ylim()[1] <= 90 and by_lr.get_ylim()[0] >= 80


def test_write_sweep_figure_needs_a_place_and_a_scored_trial(tmp_path: Path) -> None:
    from numpynn.sweep import SweepResult

    row = {"rank": 1, "trial": 0, "options": {"lr": 0.01}, "val_accuracy": 0.9, "val_loss": 0.3,
           "history": {"epoch": [1], "val_accuracy": [0.9]}, "error": None}
    result = SweepResult(data="d", swept=["lr"], table=[row], test=None, ran=1, reused=0, seconds=0.0,
                         validation="v")
    assert plots.available() and plots.write_sweep_figure(result) is None and result.figure is None
    path = plots.write_sweep_figure(result, tmp_path / "s.png")
    assert path == result.figure == str(tmp_path / "s.png") and (tmp_path / "s.png").exists()
    diverged = SweepResult(data="d", swept=["lr"], table=[{**row, "val_accuracy": None}], test=None,
                           ran=1, reused=0, seconds=0.0, validation="v", out=str(tmp_path))
    assert plots.write_sweep_figure(diverged) is None and not (tmp_path / "sweep.png").exists()
