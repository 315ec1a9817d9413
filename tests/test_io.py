"""Writing files when the disk turns against it (numpynn._io and every place that writes).

Each write site (the model, the checkpoint after every epoch, the figures, the ONNX
export, the web page's cached model; the MNIST cache is in
tests/datasets/test_mnist_download.py; the C kernels' build, at install time, in
tests/test_kernels.py) meets a full disk (an injected ENOSPC), a
file-size limit (RLIMIT_FSIZE in a subprocess: EFBIG) and a read-only or missing
folder. What must hold: one line naming the path and the problem; exit code 2 for a
target the user gave that cannot be written (said before any work), 1 for a write that
failed during the run; the previous file intact; no temporary file left. A checkpoint
that cannot be written stops training with the last good one intact; a cache that
cannot be written is done without, said once.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from disk_faults import full_disk, limited, read_only_folder

from numpynn import _io
from numpynn.cli import main
from numpynn.errors import WriteError
from numpynn.serialization import load_checkpoint

TRAIN = ["train", "--layers", "784,16,10", "--shift", "0", "--no-progress", "--no-download"]
NO_SPACE = "No space left on device (the disk is full)"
TOO_LARGE = "File too large (over the file-size limit, see ulimit -f)"


@pytest.fixture(scope="module")
def digits(digit_folder) -> Path:
    """600 train and 200 test real digits as an IDX folder."""
    return digit_folder(600, 200)


@pytest.fixture(scope="module")
def model(digits, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "m.safetensors"
    assert main([*TRAIN, "--data", str(digits), "--epochs", "1", "--save", str(path)]) == 0
    return path


@pytest.fixture(autouse=True)
def _reference_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUMPYNN_KERNELS", "numpy")  # for the subprocesses


def train(digits: Path, *extra: str) -> list[str]:
    return [*TRAIN, "--data", str(digits), *extra]


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The command's error: the last line on stderr, which must be its only error line."""
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    assert err.splitlines()[-1] == errors[0] and "Traceback" not in err
    return errors[0]


# --------------------------------------------------------------------------- atomic_write itself


def test_a_full_disk_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    full_disk(monkeypatch, room=10)
    with pytest.raises(WriteError) as info:
        _io.atomic_write_bytes(path, b"x" * 100_000)
    assert str(info.value) == f"cannot write {path}: {NO_SPACE}"
    assert isinstance(info.value, OSError) and not info.value.bad_target
    assert path.read_bytes() == b"old" and listing(tmp_path) == ["f.bin"]


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    target = tmp_path / "nowhere" / "f.bin"
    with pytest.raises(FileNotFoundError) as info:
        _io.atomic_write_bytes(target, b"x")
    assert isinstance(info.value, WriteError) and info.value.bad_target
    assert str(info.value) == f"cannot write {target}: folder {target.parent} does not exist"
    with pytest.raises(WriteError, match="is a file, not a folder"):
        (tmp_path / "file").write_bytes(b"")
        _io.check_writable(tmp_path / "file" / "f.bin")


def test_a_read_only_folder(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "ro"
    with read_only_folder(folder, monkeypatch, lambda f: (f / "f.bin").write_bytes(b"old")):
        with pytest.raises(WriteError) as info:
            _io.atomic_write_bytes(folder / "f.bin", b"new")
        assert info.value.bad_target and str(info.value).startswith(f"cannot write {folder / 'f.bin'}: ")
        with pytest.raises(WriteError):
            _io.check_writable(folder / "g.bin")
        assert (folder / "f.bin").read_bytes() == b"old" and listing(folder) == ["f.bin"]


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    dead = tmp_path / ".m.safetensors.dead1234.tmp"  # its writer was killed
    live = tmp_path / ".m.safetensors.live1234.tmp"  # its writer is still at work
    other = tmp_path / ".other.safetensors.dead5678.tmp"  # not this target's
    for p in (dead, live, other):
        p.write_bytes(b"half")
        os.utime(p, (time.time() - 60, time.time() - 60))
    with open(live, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        _io.atomic_write_bytes(path, b"whole")
        assert listing(tmp_path) == sorted([live.name, other.name, path.name])


def test_a_file_size_limit_in_a_subprocess(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    code = f"from numpynn import _io; _io.atomic_write_bytes({str(path)!r}, b'x' * 100_000)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          preexec_fn=limited(10_000), timeout=120)
    assert done.returncode == 1
    assert f"WriteError: cannot write {path}: {TOO_LARGE}" in done.stderr
    assert path.read_bytes() == b"old" and listing(tmp_path) == ["f.bin"]


# --------------------------------------------------------------------------- the CLI's targets


def _targets(tmp: Path, model: Path, digits: Path) -> dict[str, tuple[list[str], str]]:
    """Each command that writes a file the user names: its arguments, and the path it writes."""
    return {
        "train --save": (train(digits, "--epochs", "1", "--save", str(tmp / "m.safetensors")),
                         str(tmp / "m.safetensors")),
        "train --checkpoint": (train(digits, "--epochs", "2", "--checkpoint", str(tmp / "ck.safetensors")),
                               str(tmp / "ck.safetensors")),
        "train --plots": (train(digits, "--epochs", "1", "--plots", str(tmp / "figs")), str(tmp / "figs")),
        "plot --out": (["plot", str(model), "--data", str(digits), "--out", str(tmp / "figs")],
                       str(tmp / "figs")),
        "xor --plot": (["xor", "--epochs", "200", "--plot", str(tmp / "xor.png")], str(tmp / "xor.png")),
        "export": (["export", str(model), str(tmp / "m.onnx")], str(tmp / "m.onnx")),
    }


TARGETS = ["train --save", "train --checkpoint", "train --plots", "plot --out", "xor --plot", "export"]


def _old_files(folder: Path) -> None:
    for name in ("m.safetensors", "ck.safetensors", "xor.png", "m.onnx"):
        (folder / name).write_bytes(b"the old file")


@pytest.mark.parametrize("site", TARGETS)
def test_a_read_only_target_is_exit_2_before_any_work(site, tmp_path, monkeypatch, capsys, model, digits):
    folder = tmp_path / "ro"
    argv, path = _targets(folder, model, digits)[site]
    with read_only_folder(folder, monkeypatch, _old_files):
        assert main(argv) == 2
        line = error_line(capsys)
        assert line.startswith(f"numpynn {site.split()[0]}: error: cannot write {path}: ")
        assert line.endswith(("Read-only file system", "Permission denied")), line
        for name in ("m.safetensors", "ck.safetensors", "xor.png", "m.onnx"):
            assert (folder / name).read_bytes() == b"the old file"
        assert listing(folder) == ["ck.safetensors", "m.onnx", "m.safetensors", "xor.png"]


def _record_work(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record each start of a command's work (loading the data, training XOR, building the
    ONNX graph) instead of doing it: the list of what was started."""
    import numpynn.datasets
    import numpynn.export.onnx
    import numpynn.xor

    started: list[str] = []

    def refuse(what: str) -> Callable[..., None]:
        def work(*args: object, **kwargs: object) -> None:
            started.append(what)
            raise AssertionError(f"{what} started before the target was checked")

        return work

    monkeypatch.setattr(numpynn.datasets, "load", refuse("loading the data"))
    monkeypatch.setattr(numpynn.xor, "train_xor", refuse("training XOR"))
    monkeypatch.setattr(numpynn.export.onnx, "to_model", refuse("the ONNX export"))
    return started


@pytest.mark.parametrize("site", TARGETS)
def test_a_missing_folder_is_exit_2_before_any_work(site, tmp_path, monkeypatch, capsys, model, digits):
    argv, path = _targets(tmp_path / "a-file" / "sub", model, digits)[site]
    (tmp_path / "a-file").write_bytes(b"")  # so not even --plots can make the folder
    started = _record_work(monkeypatch)
    assert main(argv) == 2
    line = error_line(capsys)
    assert line.startswith(f"numpynn {site.split()[0]}: error: cannot write {path}: ")
    assert started == [] and "epoch" not in capsys.readouterr().err
    assert listing(tmp_path) == ["a-file"]


@pytest.mark.parametrize("site", TARGETS)
def test_a_full_disk_at_each_write_is_exit_1_with_the_old_file_intact(site, tmp_path, monkeypatch, capsys,
                                                                      model, digits):
    out = tmp_path / "out"
    out.mkdir()
    argv, path = _targets(out, model, digits)[site]
    _old_files(out)
    if site in ("train --plots", "plot --out"):
        (out / "figs").mkdir()
        (out / "figs" / "learning_curves.png").write_bytes(b"the old figure")
        (out / "figs" / "confusion_matrix.png").write_bytes(b"the old figure")
    full_disk(monkeypatch, under=out, room=1000)
    assert main(argv) == 1
    line = error_line(capsys)
    first = {"train --plots": "learning_curves.png", "plot --out": "confusion_matrix.png"}.get(site)
    written = f"{path}/{first}" if first else path
    assert line.startswith(f"numpynn {site.split()[0]}: error: cannot write {written}: {NO_SPACE}"), line
    for name in ("m.safetensors", "ck.safetensors", "xor.png", "m.onnx"):
        assert (out / name).read_bytes() == b"the old file"
    assert listing(out) == sorted(["ck.safetensors", "m.onnx", "m.safetensors", "xor.png"]
                                  + (["figs"] if first else []))
    if first:
        assert listing(out / "figs") == ["confusion_matrix.png", "learning_curves.png"]
        assert {p.read_bytes() for p in (out / "figs").iterdir()} == {b"the old figure"}


def test_a_checkpoint_that_cannot_be_written_stops_training_with_the_last_good_one(
        tmp_path, monkeypatch, capsys, digits):
    ck = tmp_path / "ck.safetensors"
    full_disk(monkeypatch, under=tmp_path, room=1000, spare=1)  # the disk fills up after epoch 1
    assert main(train(digits, "--epochs", "4", "--checkpoint", str(ck))) == 1
    err = capsys.readouterr().err
    assert "epoch   3/4" not in err
    assert err.splitlines()[-1] == (f"numpynn train: error: cannot write {ck}: {NO_SPACE}; training stopped "
                                    f"after epoch 2; {ck} still holds epoch 1: continue with numpynn train "
                                    f"--resume {ck}")
    assert listing(tmp_path) == ["ck.safetensors"]
    assert load_checkpoint(str(ck))[2] == 1
    monkeypatch.undo()  # room again: it resumes
    assert main(["train", "--resume", str(ck), "--no-progress"]) == 0
    assert load_checkpoint(str(ck))[2] == 4


def test_a_file_size_limit_during_training_is_exit_1_with_the_old_files_intact(tmp_path, digits):
    """ulimit -f below the model's size: the first checkpoint fails with EFBIG, nothing is
    overwritten, nothing half-written is left."""
    for name in ("m.safetensors", "ck.safetensors"):
        (tmp_path / name).write_bytes(b"the old file")
    argv = [sys.executable, "-m", "numpynn", *train(digits, "--epochs", "2", "--checkpoint", "ck.safetensors",
                                                    "--save", "m.safetensors")]
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, preexec_fn=limited(20_000),
                          timeout=300)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"numpynn train: error: cannot write ck.safetensors: {TOO_LARGE}; training stopped after epoch 1; "
        "ck.safetensors was left as it was")
    assert "Traceback" not in done.stderr
    assert listing(tmp_path) == ["ck.safetensors", "m.safetensors"]
    assert {(tmp_path / n).read_bytes() for n in listing(tmp_path)} == {b"the old file"}


def test_a_file_size_limit_at_the_onnx_export(tmp_path, model):
    pytest.importorskip("onnx")
    done = subprocess.run([sys.executable, "-m", "numpynn", "export", str(model), "m.onnx"], cwd=tmp_path,
                          capture_output=True, text=True, preexec_fn=limited(20_000), timeout=300)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == f"numpynn export: error: cannot write m.onnx: {TOO_LARGE}"
    assert listing(tmp_path) == []


# --------------------------------------------------------------------------- caches: done without


@pytest.fixture
def quick_web_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("PIL")
    from numpynn.recipes import Recipe
    from numpynn.web import trainer

    monkeypatch.setattr(trainer, "web_recipe", lambda: Recipe(epochs=1, shift=0))


@pytest.mark.parametrize("trouble", ["full disk", "read-only"])
def test_the_web_pages_model_cache_that_cannot_be_written_is_done_without(
        trouble, tmp_path, monkeypatch, capsys, quick_web_recipe):
    from numpynn.web.trainer import load_or_train_default

    folder = tmp_path / "cache"
    path = folder / "web-model.safetensors"
    fill: Callable[[Path], None] | None = None
    if trouble == "full disk":
        folder.mkdir()
        full_disk(monkeypatch, under=folder)
        net, _ = load_or_train_default(progress=False, path=path)
        problem = NO_SPACE
    else:
        with read_only_folder(folder, monkeypatch, fill):
            net, _ = load_or_train_default(progress=False, path=path)
        problem = "Read-only file system"
    assert net.predict(np.zeros((1, 784))).shape == (1, 10)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and f"cannot write {path}" in warnings[0]
    assert problem in warnings[0] or "Permission denied" in warnings[0]
    assert "serving the model without caching it" in warnings[0]
    assert listing(folder) == []
