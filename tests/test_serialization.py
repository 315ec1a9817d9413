"""Tests for numpynn.serialization: safetensors model files and checkpoints."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors.numpy as stnp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open

import numpynn as nn
from numpynn import serialization
from numpynn.activations import Custom, LeakyReLU
from numpynn.errors import InvalidFileError
from numpynn.optimizers import SGD, Adam
from numpynn.serialization import describe, load, load_checkpoint, save, save_checkpoint

# --------------------------------------------------------------------------- helpers


def _net(kind: str, dtype: str = "float32", seed: int = 0) -> nn.Network:
    if kind == "mnist_like":
        layers = [nn.Dense(12, 8, "sigmoid"), nn.Dense(8, 6, "sigmoid"), nn.Dense(6, 4, "softmax")]
        return nn.Network(layers, loss="cross_entropy", seed=seed, dtype=dtype)
    if kind == "regression":
        layers = [nn.Dense(5, 7, "relu"), nn.Dense(7, 6, LeakyReLU(0.2)), nn.Dense(6, 4, "tanh"),
                  nn.Dense(4, 2, "identity", init="he")]
        return nn.Network(layers, loss="squared_error", seed=seed, dtype=dtype)
    if kind == "binary":
        layers = [nn.Dense(3, 5, "tanh", init="he"), nn.Dense(5, 1, "sigmoid")]
        return nn.Network(layers, loss="cross_entropy", seed=seed, dtype=dtype)
    if kind == "single":
        return nn.Network([nn.Dense(4, 3, "softmax")], loss="cross_entropy", seed=None, dtype=dtype)
    raise AssertionError(kind)


ARCHS = ["mnist_like", "regression", "binary", "single"]


def _x(net: nn.Network, n: int = 17, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, net.n_in)).astype(net.dtype)


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    net = _net("mnist_like")
    net.metadata["dataset"] = "toy"
    path = tmp_path / "model.safetensors"
    save(net, path, metadata={"test_accuracy": 0.5})
    return path


def _parts(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """A numpynn file's tensors and metadata, via safetensors itself."""
    with safe_open(str(path), framework="numpy") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
        meta = dict(f.metadata())
    return tensors, meta


def _rewrite(path: Path, tensors: dict[str, np.ndarray], meta: dict[str, str] | None) -> Path:
    path.write_bytes(stnp.save(tensors, metadata=meta))
    return path


def _assert_invalid(path: Path, *fragments: str, **kwargs) -> str:
    with pytest.raises(InvalidFileError) as info:
        load(path, **kwargs)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ARCHS)
def test_round_trip_reproduces_predictions_exactly(tmp_path: Path, kind: str, dtype: str) -> None:
    net = _net(kind, dtype, seed=3)
    rng = np.random.default_rng(0)
    net.params[...] = rng.normal(size=net.params.shape)  # not just the initial weights
    path = tmp_path / "m.safetensors"
    save(net, path)
    back = load(path)
    assert back.sizes == net.sizes
    assert back.dtype == net.dtype
    assert back.loss.name == net.loss.name
    assert back.seed == net.seed
    assert [l.activation.name for l in back.layers] == [l.activation.name for l in net.layers]
    assert [l.init for l in back.layers] == [l.init for l in net.layers]
    assert np.array_equal(back.params, net.params)
    for a, b in zip(back.layers, net.layers, strict=True):
        assert a.W.dtype == np.dtype(dtype)
        assert np.array_equal(a.W, b.W) and np.array_equal(a.b, b.b)
    x = _x(net)
    assert np.array_equal(back.predict(x), net.predict(x))


def test_leaky_relu_alpha_and_init_survive(tmp_path: Path) -> None:
    net = _net("regression")
    save(net, tmp_path / "m.safetensors")
    back = load(tmp_path / "m.safetensors")
    assert isinstance(back.layers[1].activation, LeakyReLU)
    assert back.layers[1].activation.alpha == 0.2
    assert back.layers[3].init == "he"


def test_tensor_layout_and_metadata(model_file: Path) -> None:
    tensors, meta = _parts(model_file)
    assert sorted(tensors) == [f"layers.{i}.{p}" for i in range(3) for p in "Wb"]
    assert tensors["layers.0.W"].shape == (12, 8) and tensors["layers.0.b"].shape == (8,)
    assert tensors["layers.2.W"].dtype == np.float32
    assert meta["format"] == "numpynn" and meta["format_version"] == "3"
    assert meta["numpynn_version"] == nn.__version__
    arch = json.loads(meta["architecture"])
    assert arch["input_shape"] == [12]
    assert [l["type"] for l in arch["layers"]] == ["Dense"] * 3
    assert [l["config"]["n_out"] for l in arch["layers"]] == [8, 6, 4]
    assert [l["config"]["activation"] for l in arch["layers"]] == [
        {"__activation__": "sigmoid"}, {"__activation__": "sigmoid"}, {"__activation__": "softmax"}]
    assert arch["loss"] == "cross_entropy" and arch["dtype"] == "float32"
    assert json.loads(meta["training"]) == {"dataset": "toy", "test_accuracy": 0.5}


def test_metadata_merge_and_private_keys(tmp_path: Path) -> None:
    net = _net("binary")
    net.metadata.update({"dataset": "xor", "epochs_trained": 3, "_base_lr": 0.1})
    path = tmp_path / "m.safetensors"
    save(net, path, metadata={"epochs_trained": 4, "test_accuracy": np.float32(0.75),
                              "history": np.array([1.0, 0.5])})
    assert net.metadata["epochs_trained"] == 3  # save does not change the network
    back = load(path)
    assert back.metadata == {"dataset": "xor", "epochs_trained": 4, "test_accuracy": 0.75,
                             "history": [1.0, 0.5]}


def test_unserialisable_metadata_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="metadata"):
        save(_net("binary"), tmp_path / "m.safetensors", metadata={"fn": object()})
    assert _files(tmp_path) == []


def test_network_save_and_nn_load(tmp_path: Path) -> None:
    net = _net("mnist_like")
    path = tmp_path / "m.safetensors"
    net.save(str(path), metadata={"note": "hi"})
    back = nn.load(str(path))
    assert np.array_equal(back.params, net.params)
    assert back.metadata == {"note": "hi"}


def test_saving_is_deterministic(tmp_path: Path) -> None:
    net = _net("regression")
    save(net, tmp_path / "a.safetensors")
    save(net.copy(), tmp_path / "b.safetensors")
    (ta, ma), (tb, mb) = _parts(tmp_path / "a.safetensors"), _parts(tmp_path / "b.safetensors")
    assert ma == mb  # (safetensors itself may order the header's keys differently)
    assert ta.keys() == tb.keys() and all(np.array_equal(ta[k], tb[k]) for k in ta)


def test_custom_activation_needs_custom_activations(tmp_path: Path) -> None:
    swish = Custom(lambda z: z / (1 + np.exp(-z)),
                   lambda z: (1 + np.exp(-z) + z * np.exp(-z)) / (1 + np.exp(-z)) ** 2,
                   name="swish")
    net = nn.Network([nn.Dense(3, 4, swish), nn.Dense(4, 2, "softmax")], seed=0)
    path = tmp_path / "m.safetensors"
    save(net, path)
    arch = json.loads(_parts(path)[1]["architecture"])
    assert arch["layers"][0]["config"] == {"n_in": 3, "n_out": 4, "init": "glorot",
                                           "activation": {"__activation__": "swish", "custom": True}}
    with pytest.raises(ValueError, match="custom_activations") as info:
        load(path)
    assert str(path) in str(info.value) and "swish" in str(info.value)
    with pytest.raises(ValueError, match="custom_activations"):
        load(path, custom_activations={"mish": swish})
    back = load(path, custom_activations={"swish": swish})
    x = _x(net)
    assert np.array_equal(back.predict(x), net.predict(x))


def test_custom_named_like_a_builtin_is_still_custom(tmp_path: Path) -> None:
    fake = Custom(np.tanh, lambda z: 1 - np.tanh(z) ** 2, name="sigmoid")
    net = nn.Network([nn.Dense(3, 4, fake), nn.Dense(4, 2, "softmax")], seed=0)
    save(net, tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match="custom_activations"):
        load(tmp_path / "m.safetensors")


def test_custom_loss_needs_custom_losses(tmp_path: Path) -> None:
    class HalfSquaredError(nn.losses.SquaredError):
        name = "half_se"

    net = nn.Network([nn.Dense(3, 2, "identity")], loss=HalfSquaredError(), seed=0)
    path = tmp_path / "m.safetensors"
    save(net, path)
    with pytest.raises(ValueError, match="custom_losses") as info:
        load(path)
    assert str(path) in str(info.value)
    back = load(path, custom_losses={"half_se": HalfSquaredError()})
    assert isinstance(back.loss, HalfSquaredError)
    assert np.array_equal(back.params, net.params)


# --------------------------------------------------------------------------- writing safely


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.safetensors"
    old = _net("mnist_like", seed=1)
    save(old, path)
    before = path.read_bytes()

    def fail(fd: int) -> None:  # the temporary file is half written by now
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        save(_net("mnist_like", seed=2), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert _files(tmp_path) == ["m.safetensors"]
    assert np.array_equal(load(path).params, old.params)


def test_save_is_atomic_when_the_rename_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.safetensors"
    save(_net("binary", seed=1), path)
    before = path.read_bytes()

    def fail(src: str, dst: str) -> None:
        raise OSError("rename failed")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        save_checkpoint(path, _net("binary", seed=2), Adam(), 1)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert _files(tmp_path) == ["m.safetensors"]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_refuses_to_save_nan_weights(tmp_path: Path, bad: float) -> None:
    net = _net("mnist_like")
    net.layers[1].W[2, 3] = bad
    path = tmp_path / "m.safetensors"
    with pytest.raises(ValueError, match="refusing to save: weights contain NaN"):
        save(net, path)
    with pytest.raises(ValueError, match="refusing to save"):
        save_checkpoint(path, net, Adam(), 1)
    assert _files(tmp_path) == []


def test_refusing_leaves_an_old_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save(_net("binary"), path)
    before = path.read_bytes()
    net = _net("binary")
    net.params[0] = np.nan
    with pytest.raises(ValueError, match="refusing to save"):
        net.save(str(path))
    assert path.read_bytes() == before and _files(tmp_path) == ["m.safetensors"]


def test_save_into_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        save(_net("binary"), tmp_path / "nowhere" / "m.safetensors")


# --------------------------------------------------------------------------- hostile and broken files


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.safetensors"
    with pytest.raises(FileNotFoundError) as info:
        load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises((IsADirectoryError, InvalidFileError)) as info:
        load(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.safetensors"
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    os.mkfifo(fifo)
    _assert_invalid(fifo, "regular file")  # and it does not hang opening the pipe


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "random.safetensors"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    _assert_invalid(path, "not a numpynn model file", "reads only safetensors")


@pytest.mark.parametrize("n", [0, 1, 7])
def test_too_short(tmp_path: Path, n: int) -> None:
    path = tmp_path / "short.safetensors"
    path.write_bytes(b"\x01" * n)
    _assert_invalid(path, "not a numpynn model file")


def test_truncated_model(model_file: Path) -> None:
    data = model_file.read_bytes()
    header_len = struct.unpack("<Q", data[:8])[0]
    for cut in (8, 9, 8 + header_len // 2, 8 + header_len, 8 + header_len + 5, len(data) - 1):
        model_file.write_bytes(data[:cut])
        assert "pickle" not in _assert_invalid(model_file)


def test_trailing_garbage(model_file: Path) -> None:
    model_file.write_bytes(model_file.read_bytes() + b"\x00" * 8)
    _assert_invalid(model_file, "tensor data")


def test_header_length_larger_than_file(model_file: Path) -> None:
    data = model_file.read_bytes()
    model_file.write_bytes(struct.pack("<Q", len(data) - 7) + data[8:])
    _assert_invalid(model_file, "header length")


def test_header_length_2_to_62(model_file: Path) -> None:
    data = model_file.read_bytes()
    model_file.write_bytes(struct.pack("<Q", 2**62) + data[8:])
    _assert_invalid(model_file, "header length", str(2**62))


def test_header_over_the_cap_is_refused_before_reading(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.safetensors"
    save(_net("mnist_like"), path)
    monkeypatch.setattr(serialization, "MAX_HEADER_BYTES", 64)
    _assert_invalid(path, "over the limit")


def _raw(path: Path, header: bytes, data: bytes = b"") -> Path:
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)
    return path


def test_broken_model_starting_like_a_pickle_is_not_called_one(tmp_path: Path) -> None:
    # a header of 0x280 bytes: the file starts with 0x80, as protocol-2+ pickles do
    path = _raw(tmp_path / "m.safetensors", b'{"__metadata__": ' + b" " * (0x280 - 17))
    assert path.read_bytes()[0] == 0x80
    message = _assert_invalid(path, "not valid JSON")
    assert "pickle" not in message
    path.write_bytes(path.read_bytes()[:300])
    message = _assert_invalid(path, "header length", "truncated")
    assert "pickle" not in message


def test_header_not_json(tmp_path: Path) -> None:
    _assert_invalid(_raw(tmp_path / "m.safetensors", b"not json at all", b"\0" * 16), "not valid JSON")
    _assert_invalid(_raw(tmp_path / "m.safetensors", b'{"a": "\xff\xfe"}'), "not valid JSON")


def test_header_deeply_nested_json(tmp_path: Path) -> None:
    _assert_invalid(_raw(tmp_path / "m.safetensors", b"[" * 200_000), "not valid JSON")


def test_header_json_array(tmp_path: Path) -> None:
    _assert_invalid(_raw(tmp_path / "m.safetensors", b"[1, 2, 3]"), "not a JSON object")


def test_header_with_duplicate_keys(model_file: Path) -> None:
    tensors, meta = _parts(model_file)
    header = {"__metadata__": meta}
    offset = 0
    data = b""
    for name in sorted(tensors):
        arr = tensors[name]
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
        data += arr.tobytes()
    text = json.dumps(header)
    text = text[:-1] + ', "__metadata__": {"format": "other"}}'
    _assert_invalid(_raw(model_file, text.encode(), data), "not valid JSON")


def test_plain_safetensors_file(tmp_path: Path) -> None:
    path = _rewrite(tmp_path / "other.safetensors", {"weight": np.zeros((3, 2), np.float32)}, None)
    _assert_invalid(path, "safetensors file but not a numpynn model")
    path = _rewrite(path, {"weight": np.zeros((3, 2), np.float32)}, {"format": "pt"})
    _assert_invalid(path, "not a numpynn model")


def test_unknown_format_version(model_file: Path) -> None:
    tensors, meta = _parts(model_file)
    message = _assert_invalid(_rewrite(model_file, tensors, {**meta, "format_version": "4"}), "format_version")
    assert "'4'" in message and "1, 2, 3" in message


@pytest.mark.parametrize(
    "architecture",
    [
        None,
        "{not json",
        "[]",
        '{"input_shape": [12]}',
        '{"input_shape": [12], "layers": [], "loss": "cross_entropy", "dtype": "float32"}',
        '{"input_shape": "12", "layers": [], "loss": "cross_entropy", "dtype": "float32"}',
        '{"input_shape": [12], "layers": [{"type": "Dense"}], "loss": "cross_entropy", "dtype": "float32"}',
    ],
)
def test_architecture_missing_or_malformed(model_file: Path, architecture: str | None) -> None:
    tensors, meta = _parts(model_file)
    if architecture is None:
        del meta["architecture"]
    else:
        meta["architecture"] = architecture
    _assert_invalid(_rewrite(model_file, tensors, meta), "architecture")


def _edit_arch(model_file: Path, **changes) -> Path:
    tensors, meta = _parts(model_file)
    arch = json.loads(meta["architecture"])
    arch.update(changes)
    meta["architecture"] = json.dumps(arch)
    return _rewrite(model_file, tensors, meta)


def _dense(n_in: int, n_out: int, activation: str = "sigmoid", init: str = "glorot", **act: object) -> dict:
    return {"type": "Dense", "config": {"n_in": n_in, "n_out": n_out, "init": init,
                                        "activation": {"__activation__": activation, **act}}}


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"dtype": "float16"}, "dtype"),
        ({"dtype": "float64"}, "float32 but the model is float64"),
        ({"input_shape": [13]}, "layer 0 (Dense)"),
        ({"input_shape": [0]}, "input_shape"),
        ({"input_shape": [10**400]}, "input_shape"),
        ({"layers": [_dense(12, 8), _dense(8, 6), _dense(6, 5, "softmax")]}, "shape"),
        ({"loss": "hinge"}, "unknown loss"),
        ({"loss": "squared_error", "layers": [_dense(12, 8, "softmax"), _dense(8, 6, "softmax"),
                                              _dense(6, 4, "softmax")]}, "softmax"),
        ({"seed": -1}, "seed"),
        ({"layers": [_dense(12, 8), _dense(8, 6, "swoosh"), _dense(6, 4, "softmax")]}, "unknown activation"),
        ({"layers": [_dense(12, 8, "leaky_relu", "he", alpha="x"), _dense(8, 6), _dense(6, 4, "softmax")]},
         "alpha"),
        ({"layers": [_dense(12, 8, init="bogus"), _dense(8, 6), _dense(6, 4, "softmax")]}, "init"),
        ({"layers": [_dense(12, 8), {"type": "Conv9D", "config": {}}, _dense(8, 4, "softmax")]},
         "'Conv9D', which is not a registered layer type"),
        ({"layers": [_dense(12, 8), {"type": "Dropout", "config": {"p": 0.5, "q": 1}},
                     _dense(8, 4, "softmax")]}, "layer 1 (Dropout) cannot be made from its config"),
        ({"layers": [_dense(12, 8), {"type": "Dropout", "config": {"p": 1.5}}, _dense(8, 4, "softmax")]},
         "probability"),
    ],
)
def test_architecture_inconsistent(model_file: Path, changes: dict, fragment: str) -> None:
    _assert_invalid(_edit_arch(model_file, **changes), fragment)


def test_training_metadata_malformed(model_file: Path) -> None:
    tensors, meta = _parts(model_file)
    _assert_invalid(_rewrite(model_file, tensors, {**meta, "training": "{oops"}), "training")
    _assert_invalid(_rewrite(model_file, tensors, {**meta, "training": "[1]"}), "training")


def test_missing_tensor(model_file: Path) -> None:
    tensors, meta = _parts(model_file)
    del tensors["layers.1.b"]
    _assert_invalid(_rewrite(model_file, tensors, meta), "'layers.1.b' is missing")


def test_wrong_tensor_shape(model_file: Path) -> None:
    tensors, meta = _parts(model_file)
    tensors["layers.0.W"] = np.ascontiguousarray(tensors["layers.0.W"].T)
    _assert_invalid(_rewrite(model_file, tensors, meta), "'layers.0.W' has shape [8, 12]")


@pytest.mark.parametrize("dtype", [np.int32, np.float16, np.float64, np.uint8])
def test_wrong_tensor_dtype(model_file: Path, dtype: type) -> None:
    tensors, meta = _parts(model_file)
    tensors["layers.2.b"] = tensors["layers.2.b"].astype(dtype)
    _assert_invalid(_rewrite(model_file, tensors, meta), "'layers.2.b'")


def test_extra_tensor(model_file: Path) -> None:
    tensors, meta = _parts(model_file)
    tensors["layers.3.W"] = np.zeros((4, 4), np.float32)
    _assert_invalid(_rewrite(model_file, tensors, meta), "unexpected tensor 'layers.3.W'")
    tensors, meta = _parts(model_file)
    tensors["optimizer.m"] = np.zeros(1, np.float32)
    _assert_invalid(_rewrite(model_file, tensors, meta), "unexpected tensor")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_in_weights(model_file: Path, bad: float) -> None:
    tensors, meta = _parts(model_file)
    tensors["layers.1.W"][0, 0] = bad
    _assert_invalid(_rewrite(model_file, tensors, meta), "NaN")


class _Evil:
    """A pickle payload that creates a marker file when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_is_recognised_and_never_executed(tmp_path: Path) -> None:
    # the payload does work when unpickled ...
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_Evil(probe))).close()
    assert probe.exists()
    # ... but numpynn never unpickles it
    marker = tmp_path / "pwned"
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        path = tmp_path / f"model{protocol}.safetensors"
        path.write_bytes(pickle.dumps({"W": np.ones(3), "evil": _Evil(marker)}, protocol=protocol))
        _assert_invalid(path, "looks like a pickle", "not a numpynn model file")
        with pytest.raises(InvalidFileError):
            describe(path)
        with pytest.raises(InvalidFileError):
            load_checkpoint(path)
    assert not marker.exists()


def test_npz_is_recognised(tmp_path: Path) -> None:
    path = tmp_path / "weights.npz"
    np.savez(path, W=np.ones((3, 2)), b=np.zeros(2))
    renamed = path.rename(tmp_path / "model.safetensors")
    _assert_invalid(renamed, ".npz")


def test_gzip_hdf5_npy_text_are_recognised(tmp_path: Path) -> None:
    cases = {
        "gzip": gzip.compress(b"hello" * 100),
        "a gzip file": gzip.compress(b"hello" * 100, mtime=0),  # its first 8 bytes are a small number
        "HDF5": b"\x89HDF\r\n\x1a\n" + bytes(200),
        ".npy": b"\x93NUMPY\x01\x00v\x00{'descr': '<f8'}" + bytes(200),
        "text file": b"This is a README, not a model. " * 10,
    }
    for fragment, data in cases.items():
        path = tmp_path / "model.safetensors"
        path.write_bytes(data)
        _assert_invalid(path, fragment)


def test_describe_rejects_what_load_rejects(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"\0" * 7)
    with pytest.raises(InvalidFileError):
        describe(path)
    with pytest.raises(FileNotFoundError):
        describe(tmp_path / "absent")


# --------------------------------------------------------------------------- fuzzing


@pytest.fixture(scope="module")
def fuzz_source(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    net = nn.Network([nn.Dense(3, 4, "leaky_relu"), nn.Dense(4, 2, "softmax")], seed=0)
    net.metadata["dataset"] = "fuzz"
    path = tmp_path_factory.mktemp("fuzz") / "m.safetensors"
    save(net, path)
    return path.read_bytes()


_mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("set"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 16)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("digit"), st.integers(0, 10**6), st.sampled_from(b"0123456789-.eE\"")),
)


def _mutate(data: bytes, mutations: list[tuple]) -> bytes:
    buf = bytearray(data)
    for kind, pos, arg in mutations:
        if not buf:
            break
        i = pos % len(buf)
        if kind == "flip":
            buf[i] ^= arg
        elif kind == "set":
            buf[i] = arg
        elif kind == "insert":
            buf[i:i] = arg
        elif kind == "delete":
            del buf[i:i + arg]
        elif kind == "truncate":
            del buf[i:]
        elif kind == "digit":  # hit the JSON where numbers and strings are
            digits = [j for j, c in enumerate(buf) if chr(c).isdigit()]
            if digits:
                buf[digits[pos % len(digits)]] = arg
    return bytes(buf)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mutations=st.lists(_mutation, min_size=1, max_size=3))
def test_fuzzed_files_load_or_raise_invalid_file_error(
    tmp_path: Path, fuzz_source: bytes, mutations: list[tuple]
) -> None:
    path = tmp_path / "fuzz.safetensors"
    path.write_bytes(_mutate(fuzz_source, mutations))
    try:
        net = load(path)
    except InvalidFileError as e:
        assert str(path) in str(e) and "\n" not in str(e)
    else:
        assert np.all(np.isfinite(net.params))
        net.predict(np.ones((2, net.n_in)))
    try:
        describe(path)
    except InvalidFileError:
        pass


# --------------------------------------------------------------------------- checkpoints


def _data(n: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 12)).astype(np.float32)
    y = (x[:, :4].argmax(axis=1)).astype(np.int64)
    return x, y


@pytest.mark.parametrize(
    "make_opt, schedule",
    [
        (lambda: Adam(lr=1e-2), "cosine"),
        (lambda: Adam(lr=5e-3, weight_decay=1e-3, decoupled=True), None),
        (lambda: SGD(lr=0.1, momentum=0.9, nesterov=True), "cosine"),
        (lambda: SGD(lr=0.1), None),
    ],
)
def test_checkpoint_resume_is_bit_exact(tmp_path: Path, make_opt, schedule) -> None:
    x, y = _data()
    fit = {"batch_size": 16, "progress": False, "schedule": schedule}
    full = _net("mnist_like", seed=5)
    full.fit(x, y, epochs=4, optimizer=make_opt(), **fit)

    first = _net("mnist_like", seed=5)
    opt = make_opt()
    first.fit(x, y, epochs=4, optimizer=opt, callback=lambda epoch, logs: epoch == 2, **fit)
    path = tmp_path / "ckpt.safetensors"
    extra = {"batch_size": 16, "schedule": schedule, "epochs": 4, "base_lr": first.metadata["_base_lr"]}
    save_checkpoint(path, first, opt, 2, extra=extra)
    del first, opt

    net, opt2, epoch, extra2 = load_checkpoint(path)
    assert epoch == 2 and extra2 == extra
    assert net.metadata["_base_lr"] == extra["base_lr"]
    assert net.metadata["epochs_trained"] == 2
    net.fit(x, y, epochs=4, optimizer=opt2, initial_epoch=2, **fit)
    assert np.array_equal(net.params, full.params)
    assert opt2.t == full.optimizer.t


def test_checkpoint_restores_optimizer_state(tmp_path: Path) -> None:
    x, y = _data()
    net = _net("mnist_like", "float64")
    opt = Adam(lr=3e-3, betas=(0.8, 0.99), eps=1e-7)
    net.fit(x, y, epochs=1, optimizer=opt, batch_size=32, progress=False)
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, net, opt, 1)
    tensors, meta = _parts(path)
    assert sorted(tensors)[-2:] == ["optimizer.m", "optimizer.v"]
    assert tensors["optimizer.m"].dtype == np.float64
    back, opt2, epoch, extra = load_checkpoint(path)
    assert isinstance(opt2, Adam) and epoch == 1 and extra == {}
    assert opt2.config() == opt.config() and opt2.t == opt.t
    assert np.array_equal(opt2.m, opt.m) and np.array_equal(opt2.v, opt.v)
    assert np.array_equal(back.params, net.params)


def test_checkpoint_without_momentum_or_optimizer(tmp_path: Path) -> None:
    net = _net("binary")
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, net, SGD(lr=0.5), 0)
    back, opt, epoch, _ = load_checkpoint(path)
    assert isinstance(opt, SGD) and opt.velocity is None and opt.lr == 0.5 and epoch == 0
    save_checkpoint(path, net, None, 3, extra={"note": "weights only"})
    back, opt, epoch, extra = load_checkpoint(path)
    assert opt is None and epoch == 3 and extra == {"note": "weights only"}


def test_load_reads_the_model_in_a_checkpoint(tmp_path: Path) -> None:
    net = _net("mnist_like")
    net.metadata.update({"dataset": "toy", "_base_lr": 0.01})
    opt = Adam()
    opt.step(net.params.copy(), np.ones_like(net.params))
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, net, opt, 1)
    back = load(path)
    assert np.array_equal(back.params, net.params)
    assert back.metadata == {"dataset": "toy"}


def test_load_checkpoint_of_a_plain_model(model_file: Path) -> None:
    with pytest.raises(InvalidFileError, match="not a checkpoint") as info:
        load_checkpoint(model_file)
    assert str(model_file) in str(info.value)


def test_checkpoint_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="epoch"):
        save_checkpoint(tmp_path / "c", _net("binary"), Adam(), -1)
    with pytest.raises(TypeError, match="Optimizer"):
        save_checkpoint(tmp_path / "c", _net("binary"), "adam", 1)  # type: ignore[arg-type]
    other = _net("mnist_like")
    opt = Adam()
    opt.step(other.params.copy(), np.ones_like(other.params))
    with pytest.raises(ValueError, match="this network's optimizer"):
        save_checkpoint(tmp_path / "c", _net("binary"), opt, 1)
    assert _files(tmp_path) == []


def _ckpt_file(tmp_path: Path) -> Path:
    net = _net("binary")
    opt = SGD(lr=0.1, momentum=0.9)
    opt.step(net.params.copy(), np.ones_like(net.params))
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, net, opt, 1)
    return path


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda c: c.update(epoch=-1), "epoch"),
        (lambda c: c["optimizer"].update(t="x"), "step count"),
        (lambda c: c["optimizer"]["config"].update(name="rmsprop"), "optimizer config"),
        (lambda c: c["optimizer"]["config"].update(lr=float("inf")), "optimizer config"),
        (lambda c: c["optimizer"]["config"].update(bogus=1), "optimizer config"),
        (lambda c: c["optimizer"].update(arrays=["velocity", "velocity"]), "array names"),
        (lambda c: c["optimizer"].update(arrays=["__class__"]), "missing"),
        (lambda c: c.update(private={"public": 1}), "private"),
    ],
)
def test_checkpoint_metadata_malformed(tmp_path: Path, edit, fragment: str) -> None:
    path = _ckpt_file(tmp_path)
    tensors, meta = _parts(path)
    ckpt = json.loads(meta["checkpoint"])
    edit(ckpt)
    meta["checkpoint"] = json.dumps(ckpt)
    _rewrite(path, tensors, meta)
    with pytest.raises(InvalidFileError, match=fragment) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_checkpoint_state_array_must_belong_to_the_optimizer(tmp_path: Path) -> None:
    path = _ckpt_file(tmp_path)
    tensors, meta = _parts(path)
    ckpt = json.loads(meta["checkpoint"])
    ckpt["optimizer"]["arrays"] = ["velocity", "lr"]
    tensors["optimizer.lr"] = tensors["optimizer.velocity"].copy()
    meta["checkpoint"] = json.dumps(ckpt)
    _rewrite(path, tensors, meta)
    with pytest.raises(InvalidFileError, match="no state array 'lr'"):
        load_checkpoint(path)


def test_checkpoint_state_with_nan_or_wrong_shape(tmp_path: Path) -> None:
    path = _ckpt_file(tmp_path)
    tensors, meta = _parts(path)
    tensors["optimizer.velocity"][3] = np.nan
    _rewrite(path, tensors, meta)
    _assert_invalid(path, "NaN")
    tensors["optimizer.velocity"] = np.zeros(5, np.float32)
    _rewrite(path, tensors, meta)
    _assert_invalid(path, "'optimizer.velocity' has shape")


# --------------------------------------------------------------------------- describe


def test_describe(tmp_path: Path) -> None:
    net = _net("regression", "float64")
    net.metadata.update({"dataset": "toy", "epochs_trained": 7, "_base_lr": 0.1})
    path = tmp_path / "m.safetensors"
    save(net, path, metadata={"test_loss": 0.25})
    info = describe(path)
    assert info["path"] == str(path)
    assert info["file_size"] == path.stat().st_size
    assert info["kind"] == "model" and info["checkpoint"] is None
    assert info["format_version"] == "3" and info["numpynn_version"] == nn.__version__
    assert info["dtype"] == "float64" and info["loss"] == "squared_error" and info["seed"] == 0
    assert info["sizes"] == [5, 7, 6, 4, 2]
    assert info["input_shape"] == [5]
    assert info["architecture"]["loss"] == "squared_error"
    assert info["n_params"] == net.n_params
    assert [row["params"] for row in info["layers"]] == [l.n_params for l in net.layers]
    assert info["layers"][1] == {"index": 1, "type": "Dense", "output_shape": [6], "n_in": 7, "n_out": 6,
                                 "activation": "leaky_relu", "alpha": 0.2, "init": "he", "params": 48,
                                 "config": {"n_in": 7, "n_out": 6, "init": "he",
                                            "activation": {"__activation__": "leaky_relu", "alpha": 0.2}}}
    assert info["training"] == {"dataset": "toy", "epochs_trained": 7, "test_loss": 0.25}
    json.dumps(info)  # printable as JSON by `numpynn info`


def test_describe_checkpoint(tmp_path: Path) -> None:
    path = _ckpt_file(tmp_path)
    info = describe(path)
    assert info["kind"] == "checkpoint"
    assert info["checkpoint"]["epoch"] == 1 and info["checkpoint"]["step"] == 1
    assert info["checkpoint"]["optimizer"]["name"] == "sgd"


def test_describe_reads_only_the_header(model_file: Path) -> None:
    data = model_file.read_bytes()
    header_len = struct.unpack("<Q", data[:8])[0]
    # corrupt every tensor value: describe does not look at them, load does
    model_file.write_bytes(data[: 8 + header_len] + b"\xff" * (len(data) - 8 - header_len))
    assert describe(model_file)["sizes"] == [12, 8, 6, 4]
    _assert_invalid(model_file, "NaN")


# --------------------------------------------------------------------------- other readers


def test_pytorch_three_line_load(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    net = _net("mnist_like")
    x, y = _data()
    net.fit(x, y, epochs=2, batch_size=16, progress=False)
    path = tmp_path / "model.safetensors"
    net.save(str(path))

    t = load_file(str(path))
    layers = []
    for i, layer in enumerate(net.layers):
        lin = torch.nn.Linear(layer.n_in, layer.n_out)
        lin.weight.data = t[f"layers.{i}.W"].T
        lin.bias.data = t[f"layers.{i}.b"]
        layers.append(lin)
    model = torch.nn.Sequential(layers[0], torch.nn.Sigmoid(), layers[1], torch.nn.Sigmoid(),
                                layers[2], torch.nn.Softmax(dim=1))
    with torch.no_grad():
        out = model(torch.from_numpy(x)).numpy()
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, net.predict(x), rtol=0, atol=1e-5)


# --------------------------------------------------------------------------- older files

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def assert_predicts_as_written(net: nn.Network, expected: Any) -> None:
    """The probabilities the file's numpynn gave, to float32's rounding: the float32 softmax
    now takes e^x from numpynn's own float32 steps (the same bits on every machine) where it
    took NumPy's ``exp``, which moves a probability by up to 2.5 units in the last place."""
    probs = net.predict(expected["x"])
    np.testing.assert_allclose(probs, expected["probs"], rtol=4 * np.finfo(np.float32).eps, atol=0)
    np.testing.assert_array_equal(probs.argmax(axis=1), expected["probs"].argmax(axis=1))


def test_a_model_file_of_format_version_1_still_loads_and_predicts_the_same() -> None:
    """tests/fixtures/model_v1.safetensors was written by numpynn before the layer protocol
    (format version 1: sizes and one activation per Dense layer)."""
    expected = np.load(FIXTURES / "model_v1_expected.npz")
    net = load(FIXTURES / "model_v1.safetensors")
    assert [type(layer).__name__ for layer in net.layers] == ["Dense"] * 3
    assert net.layers[1].activation.name == "leaky_relu" and net.layers[1].activation.alpha == 0.2
    raw, _ = _parts(FIXTURES / "model_v1.safetensors")  # the weights: the file's, bit for bit
    np.testing.assert_array_equal(net.params, np.concatenate(
        [raw[f"layers.{i}.{name}"].ravel() for i in range(3) for name in "Wb"]))
    assert_predicts_as_written(net, expected)
    info = describe(FIXTURES / "model_v1.safetensors")
    assert info["format_version"] == "1" and info["sizes"] == [6, 5, 4, 3]
    assert [row["type"] for row in info["layers"]] == ["Dense"] * 3


def test_a_checkpoint_of_format_version_1_still_resumes() -> None:
    path = FIXTURES / "checkpoint_v1.safetensors"
    net, opt, epoch, extra = load_checkpoint(path)
    assert epoch == 2 and extra == {"note": "v1 fixture"} and isinstance(opt, nn.Adam) and opt.t == 4
    assert net.best_params is None
    expected = np.load(FIXTURES / "model_v1_expected.npz")
    assert_predicts_as_written(net, expected)

    # The optimiser's moments are the file's own tensors, read by safetensors itself: m to m, v to v.
    raw, _ = _parts(path)
    m0, v0 = raw["optimizer.m"], raw["optimizer.v"]
    assert m0.shape == v0.shape == (net.n_params,) and np.any(m0 < 0) and np.all(v0 >= 0)
    assert opt.m is not None and opt.v is not None
    assert opt.m.dtype == opt.v.dtype == np.float32
    np.testing.assert_array_equal(opt.m, m0)
    np.testing.assert_array_equal(opt.v, v0)
    theta0 = np.concatenate([raw[f"layers.{i}.{name}"].ravel() for i in range(3) for name in "Wb"])
    np.testing.assert_array_equal(net.params, theta0)

    # Resume: one more epoch of one full batch is Adam's step 5 from the stored moments,
    # written out here in float64 with the gradient at the loaded weights.
    x = expected["x"]
    y = expected["probs"].argmax(axis=1)
    _, grads = net.gradients(x, y)
    g = np.concatenate([a.ravel() for layer in grads for a in layer]).astype(np.float64)
    b1, b2 = 0.9, 0.999
    m = b1 * m0 + (1 - b1) * g
    v = b2 * v0 + (1 - b2) * g * g
    step = 0.01 * (m / (1 - b1**5)) / (np.sqrt(v / (1 - b2**5)) + 1e-8)
    history = net.fit(x, y, epochs=3, batch_size=len(x), optimizer=opt, initial_epoch=2, progress=False)
    assert len(history["loss"]) == 1 and opt.t == 5 and net.metadata["epochs_trained"] == 3
    np.testing.assert_allclose(opt.m, m, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(opt.v, v, rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(net.params, theta0 - step, rtol=0, atol=1e-6)


def test_a_version_1_file_with_sizes_that_do_not_fit_its_tensors_is_refused(tmp_path: Path) -> None:
    tensors, meta = _parts(FIXTURES / "model_v1.safetensors")
    arch = json.loads(meta["architecture"])
    arch["sizes"] = [6, 5, 4, 2]
    meta["architecture"] = json.dumps(arch)
    _assert_invalid(_rewrite(tmp_path / "v1.safetensors", tensors, meta), "shape")
