"""The numpynn command: each command end to end, and the accuracy floor on real digits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from numpynn import datasets
from numpynn.cli import main
from numpynn.serialization import load as nn_load


@pytest.fixture(scope="module")
def small_digits(digit_folder) -> Path:
    """A drop-in IDX folder: 3,000 train and 1,000 test real digits from the bundled sample."""
    return digit_folder(3000, 1000)


@pytest.fixture(scope="module")
def trained(small_digits, tmp_path_factory) -> tuple[Path, dict]:
    """Train briefly with the CLI; returns the saved model and the --json report."""
    out = tmp_path_factory.mktemp("model") / "digits.safetensors"
    report = _run_json(["train", "--data", str(small_digits), "--epochs", "8", "--shift", "0", "--no-progress",
                        "--save", str(out), "--json"])
    return out, report


def _run_json(argv: list[str]) -> dict:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(argv)
    assert code == 0, f"numpynn {' '.join(argv)} exited {code}"
    return json.loads(buf.getvalue())


def test_help_lists_the_commands():
    done = subprocess.run([sys.executable, "-m", "numpynn", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    for command in ("train", "evaluate", "predict", "info", "xor"):
        assert command in done.stdout


def test_train_reaches_an_accuracy_floor_on_real_digits(trained):
    """8 epochs on 3,000 real digits: a broken backprop could not reach this floor."""
    path, report = trained
    assert report["test_accuracy"] > 0.90, report["test_accuracy"]
    assert report["epochs"] == 8 and len(report["history"]["val_accuracy"]) == 8
    assert {"test_accuracy", "test_loss", "epochs", "seconds", "history"} <= report.keys()
    assert path.exists()


def test_evaluate_gives_accuracy_loss_and_confusion_matrix(trained, small_digits):
    path, report = trained
    result = _run_json(["evaluate", str(path), "--data", str(small_digits), "--json"])
    matrix = np.array(result["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 1000
    assert result["accuracy"] == pytest.approx(np.trace(matrix) / 1000)
    assert result["accuracy"] == pytest.approx(report["test_accuracy"], abs=1e-9)


def test_evaluate_prints_a_table(trained, small_digits, capsys):
    path, _ = trained
    assert main(["evaluate", str(path), "--data", str(small_digits)]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "confusion matrix" in out and "recall" in out


def test_predict_reads_digit_images(trained, tmp_path, capsys):
    pytest.importorskip("PIL")
    from numpynn import images

    path, _ = trained
    data = datasets.load("mnist-sample")
    files, truth = [], []
    for i in range(1990, 2000):  # digits the model never saw, drawn big and dark on white paper
        canvas = np.full((140, 110), 255, np.uint8)
        digit = 255 - np.kron(data.x_test[i].reshape(28, 28), np.ones((4, 3), np.uint8))
        canvas[10:122, 20:104] = digit
        file = tmp_path / f"digit{i}.png"
        images.save_png(canvas, file)
        files.append(str(file))
        truth.append(int(data.y_test[i]))
    rows = _run_json(["predict", str(path), *files, "--json"])
    assert [row["path"] for row in rows] == files
    correct = sum(row["digit"] == t for row, t in zip(rows, truth, strict=True))
    assert correct >= 7, (rows, truth)
    assert all(0 <= row["probability"] <= 1 for row in rows)
    assert main(["predict", str(path), files[0]]) == 0
    assert f"{files[0]}: {rows[0]['digit']} (" in capsys.readouterr().out


def test_info_describes_the_model(trained, capsys):
    path, _ = trained
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "784 -> 128 -> 64 -> 10" in out and "109,386" in out


def test_xor_json_converges():
    report = _run_json(["xor", "--seed", "7", "--json"])
    assert report["converged"] is True
    assert {"converged", "epochs", "loss", "seconds", "outputs", "restarts"} <= report.keys()
    for x1, x2, target, output in report["outputs"]:
        assert target == float(int(x1) ^ int(x2))
        assert abs(output - target) < 0.1


@pytest.mark.parametrize("argv, words", [
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--batch-size", "-3"], "--batch-size"),
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--layers", "784,x"], "--layers"),
    (["nonsense"], "invalid choice"),
    (["train", "--warmup", "-1"], "--warmup"),
    (["train", "--warmup", "1.5"], "--warmup"),
    (["train", "--clip-norm", "0"], "--clip-norm"),
    (["train", "--clip-norm", "inf"], "--clip-norm"),
    (["train", "--weight-decay", "-0.1"], "--weight-decay"),
    (["train", "--weight-decay", "x"], "--weight-decay"),
    (["train", "--optimizer", "adamx"], "invalid choice"),
])
def test_bad_options_are_one_line_and_exit_2(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("make_argv, words", [
    (lambda tmp, digits: ["info", str(tmp / "nope.safetensors")], "nope.safetensors"),
    (lambda tmp, digits: ["train", "--data", str(digits), "--layers", "100,10", "--no-progress"],
     "first layer size 784"),
    (lambda tmp, digits: ["train", "--data", str(tmp / "no-such-folder")], "no-such-folder"),
    (lambda tmp, digits: ["train", "--data", str(digits), "--activation", "swishy"], "swishy"),
    (lambda tmp, digits: ["evaluate", str(digits / "train-images-idx3-ubyte.gz")], "not a numpynn model"),
    (lambda tmp, digits: ["train", "--data", str(digits), "--epochs", "2", "--warmup", "3", "--no-progress"],
     "warmup (3 epochs) cannot be longer than the training (2 epochs)"),
])
def test_bad_input_is_one_line_and_exit_2(make_argv, words, tmp_path, small_digits, capsys):
    assert main(make_argv(tmp_path, small_digits)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    assert words in err[-1] and err[-1].startswith("numpynn "), err


def test_plot_draws_figures_for_a_saved_model(trained, small_digits, tmp_path):
    pytest.importorskip("matplotlib")
    path, _ = trained
    out = tmp_path / "figs"
    assert main(["plot", str(path), "--data", str(small_digits), "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["confusion_matrix.png", "first_layer_weights.png", "misclassified.png"]
    assert all((out / n).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for n in names)


def test_train_writes_plots(small_digits, tmp_path):
    pytest.importorskip("matplotlib")
    report = _run_json(["train", "--data", str(small_digits), "--epochs", "1", "--no-progress",
                        "--plots", str(tmp_path / "p"), "--json"])
    assert report["epochs"] == 1
    assert (tmp_path / "p" / "learning_curves.png").exists()


def test_train_with_dropout_validation_split_and_patience(small_digits, tmp_path, capsys):
    out = tmp_path / "drop.safetensors"

    def argv(epochs: int, save: Path) -> list[str]:
        return ["train", "--data", str(small_digits), "--layers", "784,64,32,10", "--dropout", "0.2",
                "--validation-split", "0.2", "--patience", "2", "--epochs", str(epochs), "--lr", "0.02",
                "--schedule", "constant", "--shift", "0", "--no-progress", "--save", str(save), "--json"]

    report = _run_json(argv(40, out))
    err = capsys.readouterr().err
    assert "validation 0.2 of the training images, patience 2" in err
    assert "dropout 0.2" in err and " val " in err
    history = report["history"]
    assert len(history["val_loss"]) < 40  # a rate this high overfits 2,400 images well before 40 epochs
    best = 1 + int(np.argmin(history["val_loss"]))
    assert len(history["val_loss"]) == best + 2 and f"kept epoch {best} by validation loss" in err
    assert report["test_accuracy"] > 0.85
    # The kept weights are the best epoch's: the same run stopped after exactly `best` epochs (a
    # constant rate, the same seed: the same first `best` epochs) ends with them, bit for bit.
    at_best = tmp_path / "at_best.safetensors"
    again = _run_json(argv(best, at_best))
    assert again["history"]["val_loss"] == history["val_loss"][:best]
    kept, reference = nn_load(out), nn_load(at_best)
    np.testing.assert_array_equal(kept.params, reference.params)
    assert report["test_accuracy"] == again["test_accuracy"]
    info = _run_json(["info", str(out), "--json"])
    assert [row["type"] for row in info["layers"]] == ["Dense", "Dropout", "Dense", "Dropout", "Dense"]
    assert info["training"]["selection"]["validation"].startswith("validation split 0.2 of the training data")
    assert main(["info", str(out)]) == 0
    table = capsys.readouterr().out
    assert "Dropout" in table and "input 784, 5 layers" in table


def test_registry_names_are_the_cli_choices(capsys):
    from numpynn.activations import ACTIVATIONS
    from numpynn.optimizers import OPTIMIZERS

    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for name in [*ACTIVATIONS.names(), *OPTIMIZERS.names()]:
        if name != "softmax":
            assert name in text
    assert main(["train", "--activation", "softmax"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_train_with_warmup_clipping_and_adamw(small_digits, tmp_path, capsys):
    """--optimizer adamw --warmup --clip-norm: the run trains, says so in its recipe line (AdamW's
    default decay 0.01, decoupled), and the saved model and the checkpoint record them."""
    from numpynn.optimizers import AdamW
    from numpynn.serialization import load_checkpoint

    save, checkpoint = tmp_path / "adamw.safetensors", tmp_path / "adamw.ckpt"
    report = _run_json(["train", "--data", str(small_digits), "--epochs", "3", "--shift", "0", "--optimizer", "adamw",
                        "--warmup", "1", "--clip-norm", "2.5", "--no-progress", "--save", str(save),
                        "--checkpoint", str(checkpoint), "--json"])
    err = capsys.readouterr().err
    assert ("recipe: adamw lr 0.005 (cosine), batch 64, 3 epochs, shifts ±0 px, warm-up 1 epoch, "
            "gradient norm clipped at 2.5, weight decay 0.01 (decoupled)") in err, err
    assert report["test_accuracy"] > 0.85
    recipe = {"optimizer": "adamw", "warmup": 1, "clip_norm": 2.5, "weight_decay": None}
    assert recipe.items() <= report["recipe"].items()
    assert recipe.items() <= nn_load(save).metadata["recipe"].items()
    _, optimizer, done, extra = load_checkpoint(checkpoint)
    assert done == 3 and isinstance(optimizer, AdamW) and optimizer.weight_decay == 0.01
    assert recipe.items() <= extra["recipe"].items()


@pytest.mark.parametrize("optimizer, decay, decoupled", [("adamw", "0.05", True), ("sgd", "0.001", False)])
def test_train_with_weight_decay(optimizer, decay, decoupled, small_digits, tmp_path, capsys):
    """--weight-decay L: decoupled with adamw, added to the gradient with sgd (which, without --lr,
    gets its own rate 0.1); the model and the checkpoint's optimiser record λ."""
    from numpynn.serialization import load_checkpoint

    save, checkpoint = tmp_path / "wd.safetensors", tmp_path / "wd.ckpt"
    report = _run_json(["train", "--data", str(small_digits), "--epochs", "2", "--shift", "0", "--optimizer", optimizer,
                        "--weight-decay", decay, "--no-progress", "--save", str(save), "--checkpoint",
                        str(checkpoint), "--json"])
    err = capsys.readouterr().err
    assert f"weight decay {decay}{' (decoupled)' if decoupled else ','}" in err, err
    assert "warm-up" not in err and "clipped" not in err
    assert report["test_accuracy"] > 0.5  # it learns (chance: 0.1); SGD on sigmoids is slow in 2 epochs
    assert nn_load(save).metadata["recipe"]["weight_decay"] == float(decay)
    from numpynn import recipes

    assert report["recipe"]["lr"] == (0.1 if optimizer == "sgd" else recipes.default_recipe(3000).lr)
    _, opt, _, _ = load_checkpoint(checkpoint)
    assert opt.weight_decay == float(decay)


def test_help_builds_no_command_options_and_imports_no_registry():
    """numpynn --help lists every command from the COMMANDS list, and imports neither NumPy nor the
    HTTP, web, plotting or sweep machinery."""
    script = ("import contextlib, io, sys; from numpynn.cli import main; from numpynn.cli.main import COMMANDS\n"
              "with contextlib.redirect_stdout(io.StringIO()) as out: code = main(['--help'])\n"
              "heavy = [m for m in ('numpy', 'urllib.request', 'http.client', 'matplotlib', 'numpynn.web', "
              "'numpynn.sweep', 'numpynn.plots', 'numpynn.datasets', 'numpynn.models') if m in sys.modules]\n"
              "assert code == 0 and all(c in out.getvalue() for c in COMMANDS), out.getvalue()\n"
              "print(heavy)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_train_help_imports_no_plotting_web_or_sweep():
    script = ("import contextlib, io, sys; from numpynn.cli import main\n"
              "with contextlib.redirect_stdout(io.StringIO()): code = main(['train', '--help'])\n"
              "print(code, [m for m in ('matplotlib', 'numpynn.web', 'numpynn.sweep', 'numpynn.plots', 'joblib') "
              "if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "0 []", done.stderr


def test_threads_option_sets_numpynn_s_threads_and_refuses_nonsense(tmp_path, capsys, monkeypatch):
    from numpynn import _parallel

    monkeypatch.setattr(_parallel, "_setting", None)
    assert main(["train", "--data", "mnist-sample", "--epochs", "1", "--no-progress", "--no-download",
                 "--threads", "1", "--save", str(tmp_path / "m.safetensors")]) == 0
    assert _parallel.threads() == 1
    assert main(["train", "--threads", "0"]) == 2
    assert "--threads" in capsys.readouterr().err.strip().splitlines()[-1]
