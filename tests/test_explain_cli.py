"""numpynn explain and plots.explain_figure: backprop you can watch, from the command line.

The command reads the image as numpynn predict does; its --json is Explanation.as_json()
exactly, and its numbers are those of Network.gradients(x, [K], training=False) and of one
step θ − R∇θ by hand, for a dense network, a convnet and a residual network with batch
normalization; its text lists the layers from the output down; its mistakes are one line and
exit code 2. The figure has one row per layer that changes its input, each titled with its
equation, and is written atomically by save_figure.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import numpynn as nn
from numpynn import images
from numpynn.cli import main
from numpynn.explain import explain

pytest.importorskip("PIL")
pytest.importorskip("matplotlib")

from numpynn import plots  # noqa: E402
from numpynn.plots import explain as figure  # noqa: E402

SAMPLE = nn.datasets.load("mnist-sample")
mlp, convnet, resnet = nn.models.mlp, nn.models.convnet, nn.models.resnet  # nn.models brings Network.save
BUILDERS = {
    "dense": lambda: mlp((784, 32, 16, 10), seed=1),
    "convnet": lambda: convnet(seed=1, channels=(4, 8), hidden=16),
    "resnet": lambda: resnet(seed=0),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The three models saved, a digit (a 7 of the sample's test set) as a PNG, and a few bad files."""
    root = tmp_path_factory.mktemp("explain")
    paths = {}
    for name, build in BUILDERS.items():
        paths[name] = str(root / f"{name}.safetensors")
        build().save(paths[name])
    paths["digit"] = str(root / "seven.png")
    images.save_png(SAMPLE.x_test[4] / 255.0, paths["digit"])
    paths["regression"] = str(root / "regression.safetensors")
    mlp((784, 8, 1), loss="mse", activation="sigmoid", seed=0).save(paths["regression"])
    paths["small"] = str(root / "small.safetensors")
    mlp((4, 3, 2), seed=0).save(paths["small"])
    paths["text"] = str(root / "notes.png")
    (root / "notes.png").write_text("not an image\n")
    return paths


@pytest.fixture(scope="module")
def explanations(files):
    x = images.preprocess(files["digit"])
    return {name: explain(nn.load(files[name]), x, label=3) for name in BUILDERS}


def squares(grads) -> float:
    if isinstance(grads, tuple):
        return sum(squares(g) for g in grads)
    return float(np.sum(np.square(grads, dtype=np.float64)))


def run(argv, capsys):
    code = main(["explain", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# ----------------------------------------------------------------------------- the numbers


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_json_is_as_json_and_the_numbers_are_network_gradients(name, files, capsys):
    code, out, _ = run([files[name], files["digit"], "--label", "3", "--json"], capsys)
    assert code == 0
    net = nn.load(files[name])
    x = images.preprocess(files["digit"])  # as numpynn predict reads it
    assert out == json.dumps(explain(net, x, label=3).as_json()) + "\n"
    got = json.loads(out)

    loss, grads = net.gradients(x[None, :], [3], training=False)
    assert got["label"] == 3 and got["loss"] == loss
    probs = net.predict(x[None, :])[0]
    assert got["probabilities"] == [float(p) for p in probs]
    assert got["prediction"] == int(np.argmax(probs))
    assert [layer["index"] for layer in got["layers"]] == list(range(len(net.layers)))
    for layer, g, mine in zip(got["layers"], grads, net.layers, strict=True):
        assert layer["type"] == mine.name and tuple(layer["output_shape"]) == mine.output_shape
        assert layer["param_grad_norm"] == pytest.approx(np.sqrt(squares(g)), rel=1e-12, abs=0)

    stepped = net.copy()  # one plain step θ ← θ − R∇θ, by hand (net.grads holds ∇θ)
    np.subtract(net.params, net.dtype.type(got["lr"]) * net.grads, out=stepped.params)
    assert got["after_step"] == [float(p) for p in stepped.predict(x[None, :])[0]]


def test_the_rate_given_is_the_rate_used(files, capsys):
    code, out, _ = run([files["dense"], files["digit"], "--label", "1", "--lr", "2.5", "--json"], capsys)
    assert code == 0 and json.loads(out)["lr"] == 2.5
    code, out, _ = run([files["dense"], files["digit"], "--label", "1", "--lr", "2.5"], capsys)
    assert "R = 2.5, as given" in out


def test_the_default_label_is_the_prediction(files, capsys):
    code, out, _ = run([files["convnet"], files["digit"], "--json"], capsys)
    got = json.loads(out)
    assert code == 0 and got["label"] == got["prediction"]


# ----------------------------------------------------------------------------- the text


@pytest.mark.parametrize("name", ["dense", "resnet"])
def test_text_lists_the_layers_from_the_output_down(name, files, explanations, capsys):
    code, out, err = run([files[name], files["digit"], "--label", "3"], capsys)
    assert code == 0 and not err
    e = explanations[name]
    lines = out.splitlines()
    assert lines[0].startswith(f"{files['digit']}: predicted {e.prediction} ")
    assert f"target K = 3 (p = {e.probabilities[3]:.4f}); loss C = -ln p(K) = {e.loss:.4f}" in lines[0]
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["layer", "output"])
    end = next(i for i, line in enumerate(lines) if line.split()[0] == "input")
    rows = [line.split() for line in lines[start + 1:end] if not line.strip().startswith("largest:")]
    assert [int(r[0]) for r in rows] == [t.index for t in reversed(e.layers)]
    for r, t in zip(rows, reversed(e.layers), strict=True):
        assert r[1] == t.type
        assert f"{t.output_grad_norm:.6g}" in r and f"{t.param_grad_norm:.6g}" in r
    assert sum(line.strip().startswith("largest:") for line in lines) == sum(bool(t.top) for t in e.layers)
    assert f"one step θ ← θ − R∇θ (math.md §6) on a copy: {e.lr_rule}" in lines
    table = lines[-e.probabilities.size:]
    for k, line in enumerate(table):
        cells = line.split()
        assert int(cells[0]) == k
        assert float(cells[-3]) == pytest.approx(e.probabilities[k], abs=5e-5)
        assert float(cells[-2]) == pytest.approx(e.after_step[k], abs=5e-5)
    assert "(K" in table[3]


def test_the_largest_changes_are_minus_r_times_the_gradient(files, explanations, capsys):
    code, out, _ = run([files["dense"], files["digit"], "--label", "3"], capsys)
    e = explanations["dense"]
    c = e.layers[-1].top[0]
    where = f"{c.param}[{','.join(map(str, c.index))}]"
    assert f"{where} ∇ {c.grad:+.4g} Δ {-e.lr * c.grad:+.4g}" in out


# ----------------------------------------------------------------------------- mistakes


@pytest.mark.parametrize("case, words", [
    (lambda f: [f["dense"], f["digit"], "--label", "10"], "class 0..9"),
    (lambda f: [f["dense"], f["digit"], "--label", "-1"], "0 or more"),
    (lambda f: [f["dense"], f["digit"], "--label", "three"], "whole number"),
    (lambda f: [f["dense"], f["digit"], "--lr", "0"], "positive"),
    (lambda f: [f["dense"], f["text"]], "notes.png"),
    (lambda f: [f["dense"], f["digit"] + ".missing"], "missing"),
    (lambda f: [f["regression"], f["digit"]], "softmax"),
    (lambda f: [f["small"], f["digit"]], "784"),
    (lambda f: [f["text"], f["digit"]], "notes.png"),
    (lambda f: [f["dense"], f["digit"], "--out", f["digit"] + ".nofolder/fig.png"], "fig.png"),
], ids=["label-too-big", "label-negative", "label-word", "lr-zero", "not-an-image", "no-image",
        "not-a-classifier", "not-784-inputs", "not-a-model", "out-unwritable"])
def test_mistakes_are_one_line_and_exit_2(case, words, files, capsys):
    code, out, err = run(case(files), capsys)
    assert code == 2 and not out
    assert len(err.strip().splitlines()) == 1 and words in err, err


def test_the_command_runs_as_numpynn_explain(files):
    done = subprocess.run([sys.executable, "-m", "numpynn", "explain", files["dense"], files["digit"],
                           "--label", "12"], capture_output=True, text=True)
    assert done.returncode == 2 and not done.stdout
    assert done.stderr.strip() == "numpynn explain: error: --label must be a class 0..9, not 12"


# ----------------------------------------------------------------------------- the figure


def _titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


def _row_titles(fig) -> list[str]:
    return [sub._suptitle.get_text() for sub in fig.subfigs if sub._suptitle is not None]


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_the_figure_has_a_row_per_layer_each_naming_its_equation(name, explanations):
    e = explanations[name]
    fig = plots.explain_figure(e)
    drawn = [t for t in e.layers if not t.passes]
    shown = min(figure.WEIGHTS_SHOWN, len(e.first_weights.picks))
    assert len(fig.axes) == 2 + 2 * len(drawn) + shown + 1  # input, layers, ∇W, the step
    assert len(_titles(fig)) == len(fig.axes)  # every panel says what it shows
    rows = _row_titles(fig)
    assert len(rows) == 1 + len(drawn) + 1 + 1
    assert rows[0].startswith("the input x")
    layer_rows = [r for r in rows if r.startswith("layer ")]
    for t, row in zip(drawn, layer_rows, strict=True):
        assert row.startswith(f"layer {t.index}: {t.type}") and t.equation in row
    assert e.step_equation in rows[-1] and e.lr_rule in rows[-1]
    weights = next(r for r in rows if r.startswith("∇W of layer"))
    assert rows.index(weights) == rows.index(next(r for r in layer_rows
                                                  if r.startswith(f"layer {e.first_weights.layer}:"))) + 1
    titles = _titles(fig)
    assert sum(t.startswith("unit " if name == "dense" else "filter ") for t in titles) == shown
    assert any(t.startswith("δ_L = (a_L − y)/B") for t in titles)
    assert f"p(3) {e.probabilities[3]:.3f} → {e.after_step[3]:.3f}" in titles[-1]


def test_the_figure_is_written_atomically_by_save_figure(explanations, tmp_path, monkeypatch):
    path = tmp_path / "explain.png"
    calls = []
    real = figure.save_figure
    monkeypatch.setattr(figure, "save_figure", lambda fig, p, *a: calls.append(p) or real(fig, p, *a))
    assert plots.write_explain_figure(explanations["dense"], path) == str(path)
    assert calls == [path]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["explain.png"]

    from numpynn.plots import canvas

    old = path.read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("render failed")

    monkeypatch.setattr(canvas, "render", broken)
    with pytest.raises(RuntimeError):
        plots.write_explain_figure(explanations["dense"], path)
    assert path.read_bytes() == old and sorted(p.name for p in tmp_path.iterdir()) == ["explain.png"]


def test_out_writes_the_figure(files, tmp_path, capsys):
    out = tmp_path / "fig.png"
    code, stdout, err = run([files["dense"], files["digit"], "--label", "3", "--out", str(out), "--json"], capsys)
    assert code == 0 and json.loads(stdout)["label"] == 3
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert err.strip() == f"figure written to {out}"
