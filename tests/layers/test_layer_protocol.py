"""The layer protocol as a user meets it: a layer of one's own, in under 20 lines,
trains, passes gradient_check, saves and loads with identical predictions."""

from __future__ import annotations

import json

import numpy as np
import pytest

import numpynn as nn
from numpynn.cli import main
from numpynn.layers import LAYERS


@nn.register_layer
class Gain(nn.Layer):
    """y = x ⊙ s, one learnable scale per feature."""

    def __init__(self, init=1.0):
        super().__init__()
        self.init = init

    def build(self, input_shape):
        self.add_param("s", input_shape, init=lambda rng, shape: np.full(shape, self.init))
        return input_shape

    def forward(self, x, training=False):
        self.x = x
        return x * self.params["s"]

    def backward(self, grad_y):
        self.grads["s"][...] = (grad_y * self.x).sum(axis=0)  # ∇s = Σ_rows ∂C/∂y ⊙ x
        return grad_y * self.params["s"]  # ∂C/∂x = ∂C/∂y ⊙ s

    def config(self):
        return {"init": self.init}


def scale_net(seed=0, dtype="float32"):
    return nn.Network([nn.Dense(4, 6, "tanh"), Gain(0.5), nn.Dense(6, 3, "softmax")], seed=seed, dtype=dtype)


def data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    return x, (x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 1)


def test_a_user_layer_gets_views_into_theta_and_its_initial_values():
    net = scale_net()
    s = net.layers[1].params["s"]
    assert s.shape == (6,) and np.all(s == 0.5)
    assert np.shares_memory(s, net.params) and np.shares_memory(net.layers[1].grads["s"], net.grads)
    assert net.n_params == 4 * 6 + 6 + 6 + 6 * 3 + 3
    _, grads = net.gradients(*data())
    assert [len(g) for g in grads] == [2, 1, 2] and grads[1][0].shape == (6,)


def test_a_user_layer_passes_gradient_check_and_trains():
    x, y = data()
    result = nn.gradient_check(scale_net(), x, y)
    assert result.ok, str(result)
    net = scale_net()
    before = net.evaluate(x, y)["loss"]
    net.fit(x, y, epochs=30, batch_size=8, optimizer=nn.Adam(lr=1e-2), progress=False)
    assert net.evaluate(x, y)["loss"] < 0.5 * before
    assert not np.all(net.layers[1].params["s"] == 0.5)  # the scale itself learned


def test_a_wrong_backward_fails_gradient_check():
    class BadGain(Gain):
        def backward(self, grad_y):
            self.grads["s"][...] = grad_y.sum(axis=0)  # forgot ⊙ x
            return grad_y * self.params["s"]

    net = nn.Network([nn.Dense(4, 6, "tanh"), BadGain(0.5), nn.Dense(6, 3, "softmax")], seed=0)
    result = nn.gradient_check(net, *data())
    assert not result.ok and result.worst.startswith("layers.1.s[")


def test_a_registered_user_layer_saves_and_loads(tmp_path):
    x, y = data()
    net = scale_net()
    net.fit(x, y, epochs=3, batch_size=8, progress=False)
    path = tmp_path / "scale.safetensors"
    net.save(path)
    back = nn.load(path)
    assert type(back.layers[1]) is Gain and back.layers[1].init == 0.5
    np.testing.assert_array_equal(back.predict(x), net.predict(x))
    info = nn.serialization.describe(path)
    assert [row["type"] for row in info["layers"]] == ["Dense", "Gain", "Dense"]
    assert info["layers"][1]["params"] == 6


def test_an_unregistered_layer_type_in_a_file_is_one_line_and_exit_2(tmp_path, capsys):
    net = scale_net()
    path = tmp_path / "scale.safetensors"
    net.save(path)
    saved = LAYERS._items.pop("Gain")
    try:
        with pytest.raises(nn.InvalidFileError, match="'Gain', which is not a registered layer type"):
            nn.load(path)
        capsys.readouterr()
        assert main(["info", str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "Gain" in err[0] and "register_layer" in err[0]
    finally:
        LAYERS.add("Gain", saved)


def test_saving_an_unregistered_layer_says_what_to_do(tmp_path):
    class Loose(Gain):
        pass

    net = nn.Network([nn.Dense(4, 6, "tanh"), Loose(), nn.Dense(6, 3, "softmax")])
    with pytest.raises(TypeError, match="register_layer"):
        net.save(tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_a_file_from_a_newer_format_is_refused_with_its_version(tmp_path, capsys):
    from safetensors import safe_open
    from safetensors.numpy import save_file

    path = tmp_path / "m.safetensors"
    scale_net().save(path)
    with safe_open(str(path), framework="numpy") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        meta = {**f.metadata(), "format_version": "7"}
    save_file(tensors, str(path), metadata=meta)
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "format_version '7'" in err and "1, 2" in err and len(err.splitlines()) == 1


def test_shapes_flow_through_build_and_a_mismatch_names_the_layer():
    net = nn.Network([nn.Reshape((2, 3)), nn.Flatten(), nn.Dense(6, 2, "softmax")], input_shape=6)
    assert [layer.output_shape for layer in net.layers] == [(2, 3), (6,), (2,)]
    assert net.input_shape == (6,) and net.sizes == [6, 6, 6, 2]
    with pytest.raises(ValueError, match=r"layer 2 \(Dense\), after layer 1 \(Flatten\): expects 5 inputs"):
        nn.Network([nn.Reshape((2, 3)), nn.Flatten(), nn.Dense(5, 2, "softmax")], input_shape=6)
    with pytest.raises(ValueError, match="give input_shape"):
        nn.Network([nn.Flatten(), nn.Dense(6, 2, "softmax")])
    with pytest.raises(ValueError, match="Flatten"):
        nn.Network([nn.Reshape((2, 3)), nn.Dense(6, 2, "softmax")], input_shape=6)
    with pytest.raises(ValueError, match="one row of outputs"):
        nn.Network([nn.Dense(6, 4), nn.Reshape((2, 2))], loss="squared_error")


def test_summary_lists_any_layer_with_its_output_shape_and_parameters():
    net = nn.Network([nn.Reshape((1, 4, 4)), nn.Flatten(), nn.Dense(16, 8, "relu"), nn.Dropout(0.2),
                      Gain(), nn.Dense(8, 3, "softmax")], input_shape=16)
    text = net.summary()
    for word in ("Reshape", "1x4x4", "Flatten", "Dropout", "Gain", "136", "27", "relu"):
        assert word in text, text


def test_layer_param_and_init_mistakes_are_clear():
    class Twice(nn.Layer):
        def build(self, input_shape):
            self.add_param("w", input_shape)
            self.add_param("w", input_shape)
            return input_shape

        def forward(self, x, training=False):
            return x

        def backward(self, grad_y):
            return grad_y

    with pytest.raises(ValueError, match="declared twice"):
        nn.Network([Twice(), nn.Dense(3, 1, "sigmoid")], input_shape=3)
    with pytest.raises(ValueError, match="unknown init 'gaussian'"):
        nn.Dense(3, 2, init="gaussian")

    class Forgot(Twice):
        def __init__(self):
            pass

    with pytest.raises(TypeError, match="super"):
        nn.Network([Forgot(), nn.Dense(3, 1, "sigmoid")], input_shape=3)
    layer = nn.Dense(3, 2)
    with pytest.raises(ValueError, match="appears twice"):
        nn.Network([layer, layer])


def test_config_round_trips_for_every_built_in_layer():
    for layer in (nn.Dense(3, 2, nn.activations.LeakyReLU(0.3), init="he"), nn.Dropout(0.3), nn.Flatten(),
                  nn.Reshape((1, 3))):
        again = type(layer).from_config(layer.config())
        assert repr(again) == repr(layer)
    spec = json.loads(json.dumps(nn.activations.spec(nn.activations.LeakyReLU(0.3))))
    assert nn.activations.get(spec).alpha == 0.3


def test_copy_keeps_user_layers_and_custom_activations():
    swish = nn.Custom(lambda z: z / (1 + np.exp(-z)),
                      lambda z: (1 + np.exp(-z) + z * np.exp(-z)) / (1 + np.exp(-z)) ** 2, name="swish")
    net = nn.Network([nn.Dense(4, 6, swish), Gain(2.0), nn.Dense(6, 3, "softmax")], seed=1)
    twin = net.copy("float64")
    assert twin.layers[0].activation is swish and isinstance(twin.layers[1], Gain)
    x, _ = data()
    np.testing.assert_allclose(twin.predict(x), net.predict(x), rtol=1e-5)


def test_registering_a_second_class_under_a_taken_name_is_refused_and_a_redefinition_replaces():
    with pytest.raises(ValueError, match="already registered"):
        nn.register_layer(type("Dense", (Gain,), {}))  # would shadow the built-in Dense
    assert LAYERS["Dense"] is nn.Dense
    first = LAYERS["Gain"]
    again = type("Gain", (nn.Layer,), {"__module__": first.__module__, "__qualname__": first.__qualname__,
                                        "forward": Gain.forward, "backward": Gain.backward})
    try:
        assert nn.register_layer(again) is again and LAYERS["Gain"] is again  # a notebook cell run twice
    finally:
        LAYERS.add("Gain", first, replace=True)
