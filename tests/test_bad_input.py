"""Every user mistake is one clear line and a non-zero exit code, and nothing on disk is lost.

One table row per bad input: the command line, the words the message must contain. For each,
the CLI must exit 2, print exactly one line on stderr (no traceback), and leave the output
files as they were: a --save target that did not exist is not created, one that existed is
unchanged.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from numpynn import datasets
from numpynn.cli import main
from numpynn.models import mlp

SAMPLE = datasets.load("mnist-sample")


def _write_folder(folder: Path, x_train=None, y_train=None, x_test=None, y_test=None) -> Path:
    """A small IDX folder; any part may be replaced by raw bytes to write instead."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = {
        "train-images-idx3-ubyte": SAMPLE.x_train[:200].reshape(-1, 28, 28) if x_train is None else x_train,
        "train-labels-idx1-ubyte": SAMPLE.y_train[:200].astype(np.uint8) if y_train is None else y_train,
        "t10k-images-idx3-ubyte": SAMPLE.x_test[:100].reshape(-1, 28, 28) if x_test is None else x_test,
        "t10k-labels-idx1-ubyte": SAMPLE.y_test[:100].astype(np.uint8) if y_test is None else y_test,
    }
    for name, value in parts.items():
        if isinstance(value, bytes):
            (folder / name).write_bytes(value)
        else:
            datasets.write_idx(folder / name, value)
    return folder


def _idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


GOOD_IMAGES = _idx_bytes(SAMPLE.x_train[:200].reshape(-1, 28, 28))


def _model(tmp: Path) -> Path:
    path = tmp / "model.safetensors"
    if not path.exists():
        mlp(seed=0).save(str(path))
    return path


def _png(tmp: Path, array: np.ndarray, name: str = "digit.png") -> Path:
    from PIL import Image

    path = tmp / name
    Image.fromarray(array).save(path)
    return path


def _bomb(tmp: Path) -> Path:
    """A tiny PNG file that declares 30,000 x 30,000 pixels."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 1, 0, 0, 0, 0)
    raw = zlib.compress(b"\x00" * 100)
    path = tmp / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
    return path


Case = Callable[[Path], list[str]]
TRAIN = ["train", "--epochs", "1", "--no-progress", "--no-download"]

CASES: dict[str, tuple[Case, str]] = {
    # --- data: missing or unreadable paths, not IDX, damaged IDX -------------------------
    "data folder missing": (lambda t: [*TRAIN, "--data", str(t / "nowhere")], "no such data folder"),
    "data is a file": (lambda t: [*TRAIN, "--data", str(_model(t))], "is a file"),
    "unknown data name": (lambda t: [*TRAIN, "--data", "cifar"], "unknown dataset"),
    "data folder without IDX files": (
        lambda t: [*TRAIN, "--data", str((t / "empty").mkdir() or t / "empty")], "train-images"),
    "images not IDX": (
        lambda t: [*TRAIN, "--data", str(_write_folder(t / "d", x_train=b"hello, world" * 50))],
        "train-images"),
    "images truncated": (
        lambda t: [*TRAIN, "--data", str(_write_folder(t / "d", x_train=GOOD_IMAGES[:5000]))],
        "truncated"),
    "images wrong magic": (
        lambda t: [*TRAIN, "--data", str(_write_folder(t / "d", x_train=b"\x00\x00\x07\x03" + GOOD_IMAGES[4:]))],
        "unknown data type code"),
    "images dims disagree with size": (
        lambda t: [*TRAIN, "--data", str(_write_folder(t / "d", x_train=GOOD_IMAGES + b"\x00" * 784))],
        "train-images"),
    "image count differs from label count": (
        lambda t: [*TRAIN, "--data", str(_write_folder(t / "d", y_train=SAMPLE.y_train[:150].astype(np.uint8)))],
        "200"),
    "label out of range": (
        lambda t: [*TRAIN, "--data", str(_write_folder(t / "d", y_train=np.full(200, 12, np.uint8)))],
        "12"),
    "gz that is not gzip": (
        lambda t: [*TRAIN, "--data", str(_gz_impostor(t))], "gzip"),
    "images of the wrong size for the model": (
        lambda t: ["evaluate", str(_model(t)), "--data", str(_write_folder(
            t / "d", x_train=np.zeros((200, 20, 20), np.uint8), x_test=np.zeros((100, 20, 20), np.uint8)))],
        "784"),
    # --- model files ------------------------------------------------------------------------
    "model missing": (lambda t: ["info", str(t / "missing.safetensors")], "missing.safetensors"),
    "model random bytes": (
        lambda t: ["evaluate", str(_bytes(t, "m.safetensors", np.random.default_rng(0).bytes(4096)))],
        "m.safetensors"),
    "model truncated": (
        lambda t: ["info", str(_bytes(t, "cut.safetensors", _model(t).read_bytes()[:3000]))], "cut.safetensors"),
    "model huge header": (
        lambda t: ["info", str(_bytes(t, "huge.safetensors", struct.pack("<Q", 2**62) + b"{}"))], "header"),
    "model malformed header": (
        lambda t: ["info", str(_bytes(t, "bad.safetensors", struct.pack("<Q", 8) + b"{not jso"))], "bad.safetensors"),
    "model is a pickle": (
        lambda t: ["predict", str(_bytes(t, "p.safetensors", pickle.dumps({"W": [1, 2]}))), "x.png"], "pickle"),
    "model is an npz": (lambda t: ["info", str(_npz(t))], "npz"),
    "model wrong tensor shape": (lambda t: ["info", str(_wrong_shape(t))], "shape"),
    # --- images -----------------------------------------------------------------------------
    "image missing": (lambda t: ["predict", str(_model(t)), str(t / "nope.png")], "nope.png"),
    "image not an image": (
        lambda t: ["predict", str(_model(t)), str(_bytes(t, "text.png", b"just some text\n" * 10))], "text.png"),
    "image empty": (lambda t: ["predict", str(_model(t)), str(_bytes(t, "empty.png", b""))], "empty.png"),
    "image decompression bomb": (lambda t: ["predict", str(_model(t)), str(_bomb(t))], "bomb.png"),
    "image blank": (
        lambda t: ["predict", str(_model(t)), str(_png(t, np.full((50, 50), 255, np.uint8)))], "blank"),
    # --- impossible options -----------------------------------------------------------------
    "layers do not match the data": (
        lambda t: [*TRAIN, "--data", str(_write_folder(t / "d")), "--layers", "100,10"], "784"),
    "unknown activation": (
        lambda t: [*TRAIN, "--data", str(_write_folder(t / "d")), "--activation", "swish"], "swish"),
    "unknown loss": (lambda t: [*TRAIN, "--data", str(_write_folder(t / "d")), "--loss", "hinge"], "hinge"),
    "resume from a model that is not a checkpoint": (
        lambda t: [*TRAIN, "--resume", str(_model(t))], "checkpoint"),
}


def _bytes(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def _gz_impostor(tmp: Path) -> Path:
    folder = _write_folder(tmp / "d")
    for f in folder.iterdir():
        f.unlink()
    _write_folder(folder)
    (folder / "train-images-idx3-ubyte").rename(folder / "train-images-idx3-ubyte.gz.tmp")
    (folder / "train-images-idx3-ubyte.gz.tmp").write_bytes(b"this is not gzip at all" * 10)
    (folder / "train-images-idx3-ubyte.gz.tmp").rename(folder / "train-images-idx3-ubyte.gz")
    return folder


def _npz(tmp: Path) -> Path:
    path = tmp / "weights.npz"
    np.savez(path, W=np.zeros((3, 3)))
    return path.rename(tmp / "npz.safetensors") and tmp / "npz.safetensors"


def _wrong_shape(tmp: Path) -> Path:
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    src = _model(tmp)
    with safe_open(str(src), framework="numpy") as f:
        metadata = f.metadata()
    tensors = load_file(str(src))
    tensors["layers.0.W"] = np.zeros((10, 128), np.float32)
    path = tmp / "shape.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    return path


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_exit_2_and_nothing_written(name, tmp_path, capsys, monkeypatch):
    if "image" in name or "pickle" in name:
        pytest.importorskip("PIL")
    monkeypatch.setenv("NUMPYNN_DATA", str(tmp_path / "cache"))
    make, words = CASES[name]
    argv = make(tmp_path)
    existing = tmp_path / "existing.safetensors"
    existing.write_bytes(b"the user's precious old model")
    if argv[0] == "train":
        argv = [*argv, "--save", str(existing), "--checkpoint", str(tmp_path / "new-ck.safetensors")]
    capsys.readouterr()
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(argv)
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith(("data:", "network:",
                                                                                         "recipe:"))]
    assert code == 2, err
    assert len(err) == 1, err
    assert err[0].startswith("numpynn ") and "error:" in err[0]
    assert words.lower() in err[0].lower(), err[0]
    assert "Traceback" not in err[0]
    assert existing.read_bytes() == b"the user's precious old model"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing new, not even a temp file


def test_gzip_impostor_case_really_is_named_gz(tmp_path):
    folder = _gz_impostor(tmp_path)
    assert (folder / "train-images-idx3-ubyte.gz").exists()
    with pytest.raises(gzip.BadGzipFile):
        gzip.decompress((folder / "train-images-idx3-ubyte.gz").read_bytes())


def test_divergence_exits_1_and_keeps_earlier_files(tmp_path, capsys):
    """A learning rate that blows up stops at once with the message; files written before
    (a checkpoint, an old model) are left as they were, never overwritten with NaNs."""
    folder = _write_folder(tmp_path / "d")
    ck = tmp_path / "ck.safetensors"
    assert main([*TRAIN, "--data", str(folder), "--checkpoint", str(ck), "--activation", "relu"]) == 0
    old = tmp_path / "old.safetensors"
    old.write_bytes(b"old model")
    code = main([*TRAIN, "--data", str(folder), "--activation", "relu", "--optimizer", "sgd",
                 "--lr", "1000", "--epochs", "3", "--save", str(old), "--checkpoint", str(ck)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert "learning rate" in err[-1] and "at epoch" in err[-1] and "nan" in err[-1]
    assert len([line for line in err if "Warning" in line]) == 0
    assert old.read_bytes() == b"old model"
    from numpynn.serialization import load_checkpoint

    net, _, done, _ = load_checkpoint(str(ck))  # the last good epoch, whole and finite
    assert np.isfinite(net.params).all() and done >= 1
