"""Blocks that nest (Sequential, Residual), GlobalAvgPool2D, state beside parameters, and the
model files of trees (format 3) and of earlier versions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

import numpynn as nn
from numpynn.serialization import load_checkpoint, save_checkpoint

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _issue_net(dtype: str = "float64", act: str = "relu") -> nn.Network:
    """The network the README shows: a residual block and a down-sampling one with a 1x1 shortcut."""
    res = nn.Residual([nn.Conv2D(4, 4, 3, padding=1, activation=act),
                       nn.Conv2D(4, 4, 3, padding=1, activation="identity")],
                      shortcut=None, activation=act)
    down = nn.Residual([nn.Conv2D(4, 8, 3, stride=2, padding=1, activation=act)],
                       shortcut=nn.Conv2D(4, 8, 1, stride=2, activation="identity"), activation=act)
    return nn.Network([nn.Reshape((1, 12, 12)), nn.Conv2D(1, 4, 3, padding=1, activation=act), res, down,
                       nn.GlobalAvgPool2D(), nn.Dense(8, 10, "softmax")], input_shape=(144,), dtype=dtype, seed=1)


def _data(n: int = 6, features: int = 144, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, features)), rng.integers(0, 10, n)


# --- the tree --------------------------------------------------------------------------------------
def test_nested_parameters_are_views_into_one_theta_in_tree_order():
    net = _issue_net()
    paths = [path for path, _ in net.walk()]
    assert paths == ["layers.0", "layers.1", "layers.2", "layers.2.layers.0", "layers.2.layers.1", "layers.3",
                     "layers.3.layers.0", "layers.3.shortcut", "layers.4", "layers.5"]
    offset = 0
    for _, layer in net.walk():
        for spec in layer.specs:
            view = layer.params[spec.name]
            assert np.shares_memory(view, net.params)
            assert view.__array_interface__["data"][0] == net.params[offset:].__array_interface__["data"][0]
            offset += view.size
    assert offset == net.n_params == sum(layer.n_params for layer in net.layers)
    res = net.layers[2]
    assert res.layers[0] is next(layer for path, layer in net.walk() if path == "layers.2.layers.0")
    assert net.layers[3].shortcut.params["W"].shape == (8, 4, 1, 1)


def test_gradients_nest_one_tuple_per_top_level_layer():
    net = _issue_net(act="tanh")
    x, y = _data()
    loss, grads = net.gradients(x, y)
    assert len(grads) == len(net.layers)
    assert grads[0] == () and grads[4] == ()
    res, down = grads[2], grads[3]
    assert len(res) == 2 and [g.shape for g in res[0]] == [(4, 4, 3, 3), (4,)]
    assert len(down) == 2 and [g.shape for g in down[1]] == [(8, 4, 1, 1), (8,)]
    flat = np.concatenate([g.ravel() for g in _leaves(grads)])
    assert np.array_equal(flat, net.grads)


def _leaves(grads):
    for g in grads:
        if isinstance(g, tuple):
            yield from _leaves(g)
        else:
            yield g


def test_finite_differences_through_nested_blocks():
    net = _issue_net(act="tanh")
    x, y = _data(4)
    assert nn.gradient_check(net, x, y, max_params=None).max_rel_error < 1e-5
    seq = nn.Network([nn.Dense(6, 5, "tanh"),
                      nn.Sequential([nn.Dense(5, 5, "tanh"),
                                     nn.Residual([nn.Sequential([nn.Dense(5, 5, "tanh")]), nn.Dropout(0.3)],
                                                 activation="tanh")]),
                      nn.Residual([nn.Dense(5, 3, "tanh")], shortcut=nn.Dense(5, 3, "identity")),
                      nn.Dense(3, 2, "softmax")], dtype="float64", seed=3)
    x, y = _data(7, 6)
    assert nn.gradient_check(seq, x, y % 2, max_params=None).max_rel_error < 1e-5


def test_a_wrong_residual_backward_fails_the_check(monkeypatch):
    """The check bites: a residual that drops the shortcut's share of ∂C/∂x is caught."""
    net = nn.Network([nn.Dense(4, 4, "tanh"), nn.Residual([nn.Dense(4, 4, "tanh")], activation="tanh"),
                      nn.Dense(4, 2, "softmax")], dtype="float64")
    x, y = _data(5, 4)
    assert nn.gradient_check(net, x, y % 2).ok
    monkeypatch.setattr(nn.Residual, "backward",  # ∂C/∂x = F'ᵀ ∂C/∂u only
                        lambda self, g: self._backward(self.activation.delta(g, self.u, self.a)))
    assert not nn.gradient_check(net, x, y % 2).ok


def test_residual_matches_torch():
    torch = pytest.importorskip("torch")
    net = nn.Network([nn.Dense(5, 4, "tanh"),
                      nn.Residual([nn.Dense(4, 3, "tanh"), nn.Dense(3, 3, "identity")],
                                  shortcut=nn.Dense(4, 3, "identity"), activation="relu"),
                      nn.Dense(3, 3, "softmax")], dtype="float64", seed=5)
    x, y = _data(8, 5)
    loss, grads = net.gradients(x, y % 3)
    W = [torch.tensor(layer.params[name], requires_grad=True) for _, layer in net.walk()
         for name in ("W", "b") if name in layer.params]
    t = torch.tensor(x)
    h = torch.tanh(t @ W[0] + W[1])
    f = torch.tanh(h @ W[2] + W[3]) @ W[4] + W[5]
    s = h @ W[6] + W[7]
    h2 = torch.relu(f + s)
    out = h2 @ W[8] + W[9]
    tl = torch.nn.functional.cross_entropy(out, torch.tensor(y % 3))
    tl.backward()
    assert abs(loss - tl.item()) < 1e-12
    ours = list(_leaves(grads))
    for a, b in zip(ours, W, strict=True):
        np.testing.assert_allclose(a, b.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_global_average_pool_forward_and_backward():
    layer = nn.GlobalAvgPool2D()
    net = nn.Network([nn.Reshape((2, 3, 2)), layer, nn.Dense(2, 1, "sigmoid")], input_shape=(12,),
                     loss="squared_error", dtype="float64")
    x = np.arange(24, dtype=float).reshape(2, 12)
    np.testing.assert_allclose(layer.forward(x.reshape(2, 2, 3, 2)), [[2.5, 8.5], [14.5, 20.5]])
    layer.needs_input_grad = True
    g = layer.backward(np.array([[6.0, 12.0], [0.0, 3.0]]))
    np.testing.assert_allclose(g[0, 0], np.full((3, 2), 1.0))
    np.testing.assert_allclose(g[1, 1], np.full((3, 2), 0.5))
    assert net.output_shape == (1,)
    with pytest.raises(ValueError, match="expects images"):
        nn.Network([nn.GlobalAvgPool2D()], input_shape=(12,))


def test_shapes_that_do_not_add_name_both():
    with pytest.raises(ValueError, match=r"the block gives \(3,\) per sample but the identity shortcut gives \(4,\)"):
        nn.Network([nn.Residual([nn.Dense(4, 3, "tanh")]), nn.Dense(3, 2, "softmax")])
    with pytest.raises(ValueError, match=r"gives \(8, 6, 6\).*the shortcut \(Conv2D\) gives \(8, 12, 12\)"):
        nn.Network([nn.Reshape((4, 12, 12)),
                    nn.Residual([nn.Conv2D(4, 8, 3, stride=2, padding=1)], shortcut=nn.Conv2D(4, 8, 1)),
                    nn.GlobalAvgPool2D(), nn.Dense(8, 2, "softmax")], input_shape=(576,))
    layer = nn.Dense(3, 3, "tanh")
    with pytest.raises(ValueError, match="appears twice"):
        nn.Network([nn.Dense(3, 3), nn.Residual([layer]), nn.Residual([layer]), nn.Dense(3, 2, "softmax")])


def test_copy_keeps_the_tree_parameters_and_state():
    net = _issue_net()
    clone = net.copy("float32")
    assert repr(clone).replace("float32", "float64") == repr(net)
    assert np.allclose(clone.params, net.params)
    x, _ = _data(3)
    np.testing.assert_allclose(clone.predict(x), net.predict(x), rtol=1e-4, atol=1e-6)


# --- files --------------------------------------------------------------------------------------
def test_a_tree_saves_and_loads_with_tensors_named_by_path(tmp_path):
    net = _issue_net()
    path = tmp_path / "res.safetensors"
    net.save(str(path))
    tensors = load_file(str(path))
    assert "layers.2.layers.1.W" in tensors and "layers.3.shortcut.b" in tensors
    assert len(tensors) == sum(len(layer.specs) for _, layer in net.walk())
    back = nn.load(str(path))
    assert repr(back) == repr(net) and np.array_equal(back.params, net.params)
    x, _ = _data(4)
    assert np.array_equal(back.predict(x), net.predict(x))
    arch = json.loads(__import__("safetensors").safe_open(str(path), "np").metadata()["architecture"])
    assert arch["layers"][3]["config"]["shortcut"]["type"] == "Conv2D"


def test_an_unregistered_layer_inside_a_block_is_refused_at_save(tmp_path):
    class Mine(nn.Layer):
        def forward(self, x, training=False):
            return x

        def backward(self, grad_y):
            return grad_y

    net = nn.Network([nn.Dense(3, 3), nn.Sequential([Mine()]), nn.Dense(3, 2, "softmax")])
    with pytest.raises(TypeError, match=r"layers\.1\.layers\.0 is a Mine, which is not registered"):
        net.save(str(tmp_path / "m.safetensors"))
    assert not (tmp_path / "m.safetensors").exists()


@nn.register_layer
class Counter(nn.Layer):
    """A test layer with state: counts the rows it has seen in training (y = x)."""

    def build(self, input_shape):
        self.add_state("seen", (1,), init="zeros")
        return input_shape

    def forward(self, x, training=False):
        if training:
            self.state["seen"] += x.shape[0]
        return x

    def backward(self, grad_y):
        return grad_y


def test_state_is_saved_restored_and_never_stepped(tmp_path):
    net = nn.Network([nn.Dense(4, 4, "tanh"), nn.Sequential([Counter()]), nn.Dense(4, 2, "softmax")],
                     dtype="float64")
    counter = net.layers[1].layers[0]
    assert net.state.shape == (1,) and np.shares_memory(counter.state["seen"], net.state)
    x, y = _data(10, 4)
    net.fit(x, y % 2, epochs=2, batch_size=5, optimizer=nn.SGD(lr=0.1), progress=False)
    assert counter.state["seen"][0] == 20  # two epochs of ten rows; no optimiser touched it
    net.save(str(tmp_path / "m.safetensors"))
    assert load_file(str(tmp_path / "m.safetensors"))["layers.1.layers.0.seen"][0] == 20
    back = nn.load(str(tmp_path / "m.safetensors"))
    assert back.state[0] == 20
    save_checkpoint(str(tmp_path / "ck.safetensors"), net, net.optimizer, 2)
    again, opt, epoch, _ = load_checkpoint(str(tmp_path / "ck.safetensors"))
    assert again.state[0] == 20 and epoch == 2


def test_a_missing_or_misshapen_state_tensor_is_one_line(tmp_path):
    from safetensors.numpy import save_file

    net = nn.Network([nn.Dense(4, 4, "tanh"), Counter(), nn.Dense(4, 2, "softmax")])
    path = tmp_path / "m.safetensors"
    net.save(str(path))
    import safetensors

    meta = safetensors.safe_open(str(path), "np").metadata()
    tensors = load_file(str(path))
    del tensors["layers.1.seen"]
    save_file(tensors, str(tmp_path / "missing.safetensors"), metadata=meta)
    with pytest.raises(nn.InvalidFileError, match="tensor 'layers.1.seen' is missing"):
        nn.load(str(tmp_path / "missing.safetensors"))
    tensors["layers.1.seen"] = np.zeros(2, np.float32)
    save_file(tensors, str(tmp_path / "shape.safetensors"), metadata=meta)
    with pytest.raises(nn.InvalidFileError, match=r"tensor 'layers.1.seen' has shape \[2\], expected \[1\]"):
        nn.load(str(tmp_path / "shape.safetensors"))


def test_files_of_format_2_still_load_predict_and_resume():
    expected = np.load(FIXTURES / "model_v2_expected.npz")
    net = nn.load(str(FIXTURES / "model_v2.safetensors"))
    assert net.metadata["note"] == "written by format version 2"
    assert np.array_equal(net.params, expected["params"])
    assert np.array_equal(net.predict(expected["x"]), expected["probs"])
    again, opt, epoch, _ = load_checkpoint(str(FIXTURES / "checkpoint_v2.safetensors"))
    assert epoch == 2 and np.array_equal(again.params, expected["params"])
    assert np.array_equal(opt.m, expected["m"]) and np.array_equal(opt.v, expected["v"])


def test_export_writes_a_residual_network_as_onnx(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    net = _issue_net("float32")
    rng = np.random.default_rng(2)
    net.params[...] = rng.normal(scale=0.3, size=net.n_params)
    path = tmp_path / "res.onnx"
    net.to_onnx(str(path))
    x = rng.random((7, 144), dtype=np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {"input": x})[0]
    np.testing.assert_allclose(out, net.predict(x), atol=1e-5)


def test_export_writes_the_resnet_with_batch_norm_inside_blocks(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    net = nn.models.resnet(seed=1)
    rng = np.random.default_rng(3)
    net.params[...] = rng.normal(scale=0.2, size=net.n_params)
    net.state[...] = rng.random(net.state.size) + 0.5  # running statistics that matter
    path = tmp_path / "resnet.onnx"
    net.to_onnx(str(path))
    x = rng.random((6, 784), dtype=np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ours = net.predict(x)
    assert ours.max() - ours.min() > 0.01  # outputs that differ, so the comparison means something
    np.testing.assert_allclose(session.run(None, {"input": x})[0], ours, atol=1e-5)


def test_summary_and_describe_show_a_block_s_layers_under_it(tmp_path):
    from numpynn.serialization import describe

    net = nn.models.resnet()
    lines = net.summary().splitlines()
    assert any(line.split()[:2] == ["4.layers.0", "Conv2D"] for line in lines)
    assert any(line.split()[:2] == ["5.shortcut", "Conv2D"] for line in lines)
    assert lines[-1].startswith(f"{net.n_params:,} parameters")
    net.save(str(tmp_path / "r.safetensors"))
    info = describe(tmp_path / "r.safetensors")
    assert [row["index"] for row in info["layers"]] == list(range(len(net.layers)))
    assert [str(row["index"]) for row in info["tree"]] == [p.removeprefix("layers.") for p, _ in net.walk()]
    assert info["n_params"] == net.n_params
    assert info["format_version"] == "3"
