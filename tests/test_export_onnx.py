"""ONNX export (numpynn.export.onnx, Network.to_onnx, numpynn export), checked by ONNX Runtime.

Every exported model must pass ``onnx.checker.check_model`` and give, in ONNX
Runtime, the outputs of numpynn's ``predict`` within 1e-5 on 1,000 real digits
(float32), whatever the batch size: dense networks, every activation, the shape
layers, and convnets. A layer or activation without an export
rule, and every bad file or target, is one line (exit code 2 from the CLI) and
leaves nothing half-written.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import numpynn as nn
from numpynn.activations import LeakyReLU
from numpynn.cli import main
from numpynn.export import onnx as export
from numpynn.export.onnx import ExportError

TOLERANCE = 1e-5
N_DIGITS = 1000


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """1,000 real test digits, uint8 pixels (1000, 784)."""
    return nn.datasets.load("mnist-sample").x_test[:N_DIGITS]


def as_input(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels as the float32 values in [0, 1] the ONNX model takes, scaled as numpynn scales them."""
    return pixels.astype(np.float32) * np.float32(1.0 / 255.0)


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def exported(net: nn.Network, path: Path) -> tuple[onnx.ModelProto, ort.InferenceSession]:
    """Export with Network.to_onnx; the file must pass the ONNX checker and open in ONNX Runtime."""
    net.to_onnx(str(path))
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    return model, session(path)


def largest_difference(net: nn.Network, sess: ort.InferenceSession, pixels: np.ndarray) -> float:
    """max |ONNX Runtime − numpynn predict| over every output of every digit."""
    x = pixels.reshape(-1, *net.input_shape)
    (got,) = sess.run(["output"], {"input": as_input(x)})
    want = net.predict(x)
    assert got.dtype == np.float32 and got.shape == want.shape == (len(x), net.n_out)
    return float(np.max(np.abs(got.astype(np.float64) - want)))


def with_biases(net: nn.Network, seed: int = 0) -> nn.Network:
    """Give every bias a value (an untrained network's are zero, and an exporter that lost them
    would pass)."""
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        if "b" in layer.params:
            layer.params["b"][...] = rng.normal(0.0, 0.3, layer.params["b"].shape)
    return net


def ops(model: onnx.ModelProto) -> list[str]:
    return [node.op_type for node in model.graph.node]


def io_facts(model: onnx.ModelProto) -> list[tuple[str, int, list]]:
    """(name, element type, shape with the batch as 'N') of the graph's input and output."""
    return [(v.name, v.type.tensor_type.elem_type,
             [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim])
            for v in (*model.graph.input, *model.graph.output)]


# --- networks, compared with predict on 1,000 digits --------------------------------------------
def test_default_dense_network(digits, tmp_path):
    """The default 784-128-64-10 network, trained for one epoch: Gemm and its σ, layer by layer."""
    data = nn.datasets.load("mnist-sample")
    net = nn.models.mlp(seed=0)
    net.fit(data.x_train[:2000], data.y_train[:2000], epochs=1, batch_size=64, progress=False)
    model, sess = exported(net, tmp_path / "mlp.onnx")
    assert ops(model) == ["Gemm", "Sigmoid", "Gemm", "Sigmoid", "Gemm", "Softmax"]
    assert model.opset_import[0].version == export.OPSET == 17
    assert io_facts(model) == [("input", onnx.TensorProto.FLOAT, ["N", 784]),
                               ("output", onnx.TensorProto.FLOAT, ["N", 10])]
    assert largest_difference(net, sess, digits) < TOLERANCE
    (probs,) = sess.run(None, {"input": as_input(digits)})
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)  # class probabilities
    assert np.array_equal(probs.argmax(axis=1), net.classify(digits))


def test_every_activation(digits, tmp_path):
    """sigmoid, tanh, relu, leaky ReLU (with its own α), identity and softmax, each in one layer."""
    net = nn.Network([
        nn.Dense(784, 64, "sigmoid"), nn.Dense(64, 48, "tanh"), nn.Dense(48, 32, "relu"),
        nn.Dense(32, 32, LeakyReLU(alpha=0.2)), nn.Dense(32, 16, "identity"), nn.Dense(16, 10, "softmax"),
    ], seed=3)
    model, sess = exported(with_biases(net), tmp_path / "activations.onnx")
    assert ops(model) == ["Gemm", "Sigmoid", "Gemm", "Tanh", "Gemm", "Relu", "Gemm", "LeakyRelu", "Gemm",
                          "Gemm", "Softmax"]
    leaky = next(node for node in model.graph.node if node.op_type == "LeakyRelu")
    assert onnx.helper.get_attribute_value(leaky.attribute[0]) == pytest.approx(0.2)
    assert largest_difference(net, sess, digits) < TOLERANCE


def test_dropout_flatten_reshape(digits, tmp_path):
    """Samples of shape (28, 28) through Reshape, Flatten and Dropout (nothing, at inference)."""
    net = nn.Network([
        nn.Reshape((1, 28, 28)), nn.Flatten(), nn.Dense(784, 32, "relu"), nn.Dropout(0.5),
        nn.Reshape((2, 4, 4)), nn.Flatten(), nn.Dense(32, 10, "softmax"),
    ], input_shape=(28, 28), seed=1)
    model, sess = exported(with_biases(net), tmp_path / "shapes.onnx")
    assert ops(model) == ["Reshape", "Flatten", "Gemm", "Relu", "Reshape", "Flatten", "Gemm", "Softmax"]
    assert io_facts(model)[0] == ("input", onnx.TensorProto.FLOAT, ["N", 28, 28])
    assert largest_difference(net, sess, digits) < TOLERANCE


def test_the_convnet(digits, tmp_path):
    """The LeNet-style convnet of numpynn.models: Conv, Relu and MaxPool on (N, 1, 28, 28)."""
    net = with_biases(nn.models.convnet(seed=0))
    model, sess = exported(net, tmp_path / "convnet.onnx")
    assert ops(model) == ["Reshape", "Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Flatten",
                          "Gemm", "Relu", "Gemm", "Softmax"]
    assert io_facts(model)[0] == ("input", onnx.TensorProto.FLOAT, ["N", 784])
    assert largest_difference(net, sess, digits) < TOLERANCE


def test_strides_padding_and_pooling_windows(digits, tmp_path):
    """Pairs that differ by axis (a 3x2 kernel, stride (1, 2), padding (1, 0)), overlapping max-pool
    windows, average pooling and other activations after a convolution."""
    net = with_biases(nn.Network([
        nn.Reshape((1, 28, 28)), nn.Conv2D(1, 4, 3, stride=2, padding=1, activation="tanh"), nn.AvgPool2D(2),
        nn.Conv2D(4, 6, (3, 2), stride=(1, 2), padding=(1, 0), activation=LeakyReLU(alpha=0.1)),
        nn.MaxPool2D(3, stride=2), nn.Flatten(), nn.Dense(18, 10, "softmax"),
    ], input_shape=(784,), seed=8))
    assert [layer.output_shape for layer in net.layers][1:5] == [(4, 14, 14), (4, 7, 7), (6, 7, 3), (6, 3, 1)]
    model, sess = exported(net, tmp_path / "strides.onnx")
    assert ops(model) == ["Reshape", "Conv", "Tanh", "AveragePool", "Conv", "LeakyRelu", "MaxPool", "Flatten",
                          "Gemm", "Softmax"]
    assert largest_difference(net, sess, digits) < TOLERANCE


@pytest.mark.parametrize("name", ["sigmoid output", "identity output, then Dropout"])
def test_other_outputs(name, digits, tmp_path):
    """One sigmoid probability; a linear output that the last step (Dropout) passes through."""
    if name == "sigmoid output":
        net = nn.Network([nn.Dense(784, 16, "tanh"), nn.Dense(16, 1, "sigmoid")], seed=2)
    else:
        net = nn.Network([nn.Dense(784, 3, "identity"), nn.Dropout(0.2)], loss="squared_error", seed=2)
    with_biases(net)
    model, sess = exported(net, tmp_path / "out.onnx")
    assert io_facts(model)[1] == ("output", onnx.TensorProto.FLOAT, ["N", net.n_out])
    assert largest_difference(net, sess, digits) < TOLERANCE


def test_a_float64_network_exports_as_float32(digits, tmp_path):
    net = with_biases(nn.models.mlp(seed=4, dtype="float64"))
    model, sess = exported(net, tmp_path / "f64.onnx")
    assert {t.data_type for t in model.graph.initializer} == {onnx.TensorProto.FLOAT}
    assert [facts[1] for facts in io_facts(model)] == [onnx.TensorProto.FLOAT] * 2
    assert largest_difference(net, sess, digits) < TOLERANCE  # against the float64 predict


@pytest.mark.parametrize("batch", [1, 7, N_DIGITS])
def test_the_batch_is_dynamic(batch, digits, tmp_path):
    """One exported file, any number of rows: batch 1 and batch 1,000 give predict's rows."""
    net = nn.models.mlp(seed=5)
    _, sess = exported(net, tmp_path / "batch.onnx")
    assert sess.get_inputs()[0].shape == ["N", 784]
    assert largest_difference(net, sess, digits[:batch]) < TOLERANCE


# --- what cannot be exported: one line naming it, nothing written ------------------------------
class Scale(nn.Layer):
    """y = x ⊙ s (a user layer, not registered with the exporter)."""

    def build(self, input_shape):
        self.add_param("s", input_shape, init=lambda rng, shape: rng.uniform(0.5, 1.5, shape))
        return input_shape

    def forward(self, x, training=False):
        self.x = x
        return x * self.params["s"]

    def backward(self, grad_y):
        self.grads["s"][...] = (grad_y * self.x).sum(axis=0)
        return grad_y * self.params["s"]


def test_a_layer_without_a_rule_is_one_line_naming_it(tmp_path):
    net = nn.Network([nn.Dense(784, 8, "tanh"), Scale(), nn.Dense(8, 10, "softmax")])
    with pytest.raises(ExportError) as caught:
        net.to_onnx(str(tmp_path / "scale.onnx"))
    message = str(caught.value)
    assert "\n" not in message and "layer 1 (Scale)" in message and "register_rule" in message
    assert list(tmp_path.iterdir()) == []


def test_a_custom_activation_is_one_line_naming_it(tmp_path):
    swish = nn.Custom(lambda z: z / (1 + np.exp(-z)), lambda z: np.ones_like(z), name="swish")
    net = nn.Network([nn.Dense(784, 8, swish), nn.Dense(8, 10, "softmax")])
    with pytest.raises(ExportError) as caught:
        net.to_onnx(str(tmp_path / "swish.onnx"))
    message = str(caught.value)
    assert "\n" not in message and "layer 0 (Dense)" in message and "'swish'" in message
    assert list(tmp_path.iterdir()) == []


def test_a_rule_of_your_own_exports_your_layer(digits, tmp_path, monkeypatch):
    monkeypatch.setitem(export.RULES, Scale, lambda layer, g, x: g.node("Mul", [x, g.param("s")]))
    net = nn.Network([nn.Dense(784, 8, "tanh"), Scale(), nn.Dense(8, 10, "softmax")], seed=6)
    model, sess = exported(net, tmp_path / "scale.onnx")
    assert ops(model) == ["Gemm", "Tanh", "Mul", "Gemm", "Softmax"]
    assert largest_difference(net, sess, digits) < TOLERANCE


def test_without_the_onnx_package_the_message_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now fails
    with pytest.raises(ImportError, match=r"pip install 'numpynn\[onnx\]'"):
        nn.models.mlp().to_onnx(str(tmp_path / "m.onnx"))
    nn.models.mlp().save(str(tmp_path / "m.safetensors"))
    assert main(["export", str(tmp_path / "m.safetensors"), str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'numpynn[onnx]'" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


# --- the command --------------------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path) -> Path:
    path = tmp_path / "model.safetensors"
    nn.models.mlp(seed=7).save(str(path))
    return path


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("numpynn export: error: ") and err.count("\n") == 1, err
    return err


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_cli_export(saved, digits, tmp_path, capsys):
    out = tmp_path / "model.onnx"
    assert main(["export", str(saved), str(out)]) == 0
    assert "exported to" in capsys.readouterr().out
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)
    assert largest_difference(nn.load(str(saved)), session(out), digits) < TOLERANCE
    assert files(tmp_path) == ["model.onnx", "model.safetensors"]


def test_cli_refuses_a_file_that_is_not_a_numpynn_model(tmp_path, capsys):
    bogus = tmp_path / "notes.safetensors"
    bogus.write_text("not a model\n")
    assert main(["export", str(bogus), str(tmp_path / "m.onnx")]) == 2
    assert "notes.safetensors" in one_error_line(capsys)
    assert files(tmp_path) == ["notes.safetensors"]


def test_cli_refuses_a_missing_model(tmp_path, capsys):
    assert main(["export", str(tmp_path / "none.safetensors"), str(tmp_path / "m.onnx")]) == 2
    assert "none.safetensors" in one_error_line(capsys)
    assert files(tmp_path) == []


def test_cli_refuses_an_output_folder_that_does_not_exist(saved, tmp_path, capsys):
    assert main(["export", str(saved), str(tmp_path / "no" / "such" / "m.onnx")]) == 2
    assert "does not exist" in one_error_line(capsys)
    assert files(tmp_path) == ["model.safetensors"]


@pytest.mark.parametrize("where", ["under a file", "a folder", "the model itself"])
def test_cli_refuses_a_target_it_cannot_write(where, saved, tmp_path, capsys):
    before = saved.read_bytes()
    (tmp_path / "folder").mkdir()
    target = {"under a file": saved / "m.onnx", "a folder": tmp_path / "folder",
              "the model itself": saved}[where]
    assert main(["export", str(saved), str(target)]) == 2
    one_error_line(capsys)
    assert files(tmp_path) == ["folder", "model.safetensors"] and files(tmp_path / "folder") == []
    assert saved.read_bytes() == before


def test_cli_a_failed_write_leaves_the_old_file_whole(saved, tmp_path, capsys, monkeypatch):
    """An OSError at the last step (the rename, as on a full or read-only disk): the old file
    stays as it was and no temporary file is left behind."""
    out = tmp_path / "model.onnx"
    out.write_bytes(b"the old file")

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(os, "replace", refuse)
    assert main(["export", str(saved), str(out)]) == 2
    assert "Permission denied" in one_error_line(capsys)
    assert out.read_bytes() == b"the old file"
    assert files(tmp_path) == ["model.onnx", "model.safetensors"]


def test_cli_names_a_layer_it_cannot_export(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(nn.layers.LAYERS._items, "Scale", Scale)  # loadable, but no export rule
    path = tmp_path / "scale.safetensors"
    nn.Network([nn.Dense(784, 8, "tanh"), Scale(), nn.Dense(8, 10, "softmax")]).save(str(path))
    assert main(["export", str(path), str(tmp_path / "scale.onnx")]) == 2
    assert "layer 1 (Scale)" in one_error_line(capsys)
    assert files(tmp_path) == ["scale.safetensors"]


def test_every_registered_layer_and_activation_has_a_rule_or_says_why_not():
    """Each built-in layer type and activation declares its ONNX export where it is defined: a
    rule (its to_onnx, or one given with register_rule), or onnx_unsupported, the reason export
    gives in one line. A new layer or activation without either fails here."""
    from numpynn.activations import ACTIVATIONS, Activation, Custom
    from numpynn.layers import LAYERS, Layer

    for name, cls in LAYERS.items():
        if not cls.__module__.startswith("numpynn."):
            continue  # a test's own layer
        has_rule = cls in export.RULES or cls.to_onnx is not Layer.to_onnx
        assert has_rule or cls.onnx_unsupported, f"layer {name} says nothing about ONNX export"
    for name, cls in ACTIVATIONS.items():
        assert cls.to_onnx is not Activation.to_onnx or cls.onnx_unsupported, f"activation {name}"
    assert Custom.onnx_unsupported  # user code: said in one line (test_a_custom_activation_...)
