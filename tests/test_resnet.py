"""The residual network end to end, with the guarantees every model has: train with plots and a
checkpoint, evaluate, predict a digit image, info, export, Ctrl-C and resume to the same weights
and batch-norm state, divergence stopped, bad options one line.

Its layers are checked in tests/layers (finite differences, PyTorch); its recipe is chosen in
docs/resnet.md. Here the runs are short: what is checked is that everything works with it."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest
from held_runs import held_train

import numpynn as nn
from numpynn.cli import main
from numpynn.serialization import load_checkpoint


@pytest.fixture(scope="module")
def digits(digit_folder) -> Path:
    """400 train and 100 test real digits."""
    return digit_folder(400, 100)


def _base(digits: Path) -> list[str]:
    return ["--model", "resnet", "--data", str(digits), "--no-progress", "--batch-size", "50"]


@pytest.fixture(scope="module")
def resnet_model(digits, tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("resnet")
    out = where / "resnet.safetensors"
    assert main(["train", *_base(digits), "--epochs", "2", "--save", str(out), "--plots", str(where / "plots")]) == 0
    return out


def test_train_saves_the_tree_and_its_running_statistics_and_draws_its_plots(resnet_model):
    net = nn.load(str(resnet_model))
    assert isinstance(net.layers[4], nn.Residual) and net.state.size == 2 * (16 + 16 + 16 + 32 + 32 + 64 + 64)
    assert not np.allclose(net.state[:16], 0)  # the stem's running mean moved from its zeros
    assert net.metadata["epochs_trained"] == 2
    assert {p.name for p in (resnet_model.parent / "plots").iterdir()} >= {"learning_curves.png",
                                                                          "confusion_matrix.png"}


def test_evaluate_predict_info_and_export(resnet_model, digits, tmp_path, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(resnet_model), "--data", str(digits), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert np.array(scores["confusion_matrix"]).sum() == 100
    net = nn.load(str(resnet_model))
    data = nn.datasets.load(str(digits))
    assert scores["accuracy"] == pytest.approx(net.evaluate(data.x_test, data.y_test)["accuracy"])
    png = tmp_path / "seven.png"
    from PIL import Image

    Image.fromarray(data.x_test[0].reshape(28, 28)).save(png)
    assert main(["predict", str(resnet_model), str(png)]) == 0
    said = capsys.readouterr().out
    assert said.startswith(f"{png}: {int(net.classify(data.x_test[:1])[0])} (")
    assert main(["info", str(resnet_model), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert "Residual" in [row["type"] for row in info["layers"]] and info["n_params"] == net.n_params
    pytest.importorskip("onnxruntime")
    assert main(["export", str(resnet_model), str(tmp_path / "r.onnx")]) == 0
    assert (tmp_path / "r.onnx").stat().st_size > 100_000


def test_ctrl_c_resumes_to_the_uninterrupted_weights_and_state(digits, tmp_path):
    whole = tmp_path / "whole.safetensors"
    assert main(["train", *_base(digits), "--epochs", "2", "--shift", "0", "--save", str(whole)]) == 0
    ck = tmp_path / "ck.safetensors"
    args = [*_base(digits), "--epochs", "2", "--shift", "0", "--checkpoint", str(ck)]
    with held_train(args, ["step", 2, 3], tmp_path) as run:
        run.held()
        run.p.send_signal(signal.SIGINT)
        run.end()
        assert run.p.returncode == 130
    net, _, epoch, _ = load_checkpoint(ck)
    assert epoch == 1 and net.state.size > 0
    resumed = tmp_path / "resumed.safetensors"
    assert main(["train", "--resume", str(ck), "--no-progress", "--save", str(resumed)]) == 0
    a, b = nn.load(str(whole)), nn.load(str(resumed))
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.state, b.state)


def test_divergence_stops_with_exit_1(digits, tmp_path, capsys):
    assert main(["train", *_base(digits), "--epochs", "2", "--lr", "1e6", "--optimizer", "sgd",
                 "--save", str(tmp_path / "m.safetensors")]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the data, network and recipe lines
    assert "training stopped" in last and "try a smaller learning rate" in last
    assert not (tmp_path / "m.safetensors").exists()


@pytest.mark.parametrize("argv, words", [
    (["--layers", "784,10"], "--layers only apply to --model mlp"),
    (["--loss", "squared_error"], "the resnet ends in a softmax"),
])
def test_bad_resnet_options_are_one_line_and_exit_2(argv, words, digits, capsys):
    assert main(["train", *_base(digits), "--epochs", "1", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("numpynn train: error: ") and words in err[-1]  # one line, after "data: …"
    assert not any("Traceback" in line for line in err)
