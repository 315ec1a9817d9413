"""numpynn.explain: one forward and one backward pass, layer by layer, and one step on a copy.

The norms equal what Network.gradients(x, [K], training=False) gives (dense, convnet and a
residual network with batch normalization); the gradient arriving at each layer's output
agrees with central differences of the loss through the layers above it; a dense stack's
deltas agree with math.md's recursion by hand; the step is θ − R∇θ on a copy and the given
network never changes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import numpynn as nn
from numpynn import datasets
from numpynn import explain as ex
from numpynn.metrics import PIXEL_SCALE
from numpynn.models import convnet, mlp

SAMPLE = datasets.load("mnist-sample")
X = SAMPLE.x_test[:4]  # uint8 pixels


def resnet(dtype: str = "float32", seed: int = 0) -> nn.Network:
    """A small residual network with batch normalization, its running statistics moved off
    their initial values by a few training passes."""
    def conv_bn(c_in: int, c_out: int, stride: int = 1, act: str = "relu") -> list[nn.Layer]:
        return [nn.Conv2D(c_in, c_out, 3, stride=stride, padding=1, activation="identity"),
                nn.BatchNorm2D(c_out, activation=act)]

    net = nn.Network([
        nn.Reshape((1, 28, 28)), *conv_bn(1, 4), nn.MaxPool2D(2),
        nn.Residual(conv_bn(4, 4) + conv_bn(4, 4, act="identity"), activation="relu"),
        nn.Residual(conv_bn(4, 8, 2) + conv_bn(8, 8, act="identity"),
                    shortcut=nn.Conv2D(4, 8, 1, stride=2, activation="identity"), activation="relu"),
        nn.GlobalAvgPool2D(), nn.Dense(8, 10, "softmax"),
    ], input_shape=(784,), seed=seed, dtype=dtype)
    xb = net.as_float(SAMPLE.x_train[:32])
    initial = net.state.copy()
    for _ in range(3):
        net.forward(xb, training=True)
    assert not np.allclose(net.state, initial)
    return net


NETWORKS = {
    "dense": lambda dtype="float32": mlp((784, 32, 16, 10), seed=1, dtype=dtype, dropout=0.2),
    "convnet": lambda dtype="float32": convnet(seed=1, dtype=dtype, channels=(4, 8), hidden=16),
    "resnet": resnet,
}


def squares(grads) -> float:
    if isinstance(grads, tuple):
        return sum(squares(g) for g in grads)
    return float(np.sum(np.square(grads, dtype=np.float64)))


def snapshot(net: nn.Network) -> tuple[np.ndarray, ...]:
    return net.params.copy(), net.state.copy(), net.grads.copy(), net.predict(X)


@pytest.mark.parametrize("kind", sorted(NETWORKS))
@pytest.mark.parametrize("label", [None, 3])
def test_the_numbers_are_those_of_network_gradients(kind, label):
    net = NETWORKS[kind]()
    before = snapshot(net)
    flags = [layer.needs_input_grad for _, layer in net.walk()]
    e = ex.explain(net, X[0], label=label)
    for old, new in zip(before, snapshot(net), strict=True):  # the given network never changes
        np.testing.assert_array_equal(old, new)
    assert [layer.needs_input_grad for _, layer in net.walk()] == flags

    probs = net.predict(X[:1])[0]
    assert e.prediction == int(np.argmax(probs))
    assert e.label == (e.prediction if label is None else label)
    np.testing.assert_array_equal(e.probabilities, probs.astype(np.float64))
    loss, grads = net.copy().gradients(X[:1], [e.label], training=False)
    assert e.loss == loss
    assert len(e.layers) == len(grads) == len(net.layers)
    for i, (trace, g) in enumerate(zip(e.layers, grads, strict=True)):
        assert trace.index == i and trace.type == net.layers[i].name
        assert trace.output_shape == net.layers[i].output_shape
        assert trace.param_grad_norm == pytest.approx(np.sqrt(squares(g)), rel=1e-12, abs=0)
        assert (trace.param_grad_norm == 0) == (net.layers[i].n_params == 0)
        assert trace.output.shape == trace.output_grad.shape == net.layers[i].output_shape
        assert trace.output_grad_norm == pytest.approx(np.linalg.norm(trace.output_grad), rel=1e-6)

    summary = e.as_json()
    assert list(summary) == ["prediction", "label", "loss", "probabilities", "after_step", "lr", "layers"]
    assert [list(entry) for entry in summary["layers"]] == [
        ["index", "type", "output_shape", "output_grad_norm", "param_grad_norm"]] * len(net.layers)
    assert summary["layers"][-1]["output_shape"] == [10]
    json.dumps(summary, allow_nan=False)


@pytest.mark.parametrize("kind", sorted(NETWORKS))
def test_each_layer_gets_the_gradient_of_the_loss_with_respect_to_its_output(kind):
    """⟨∂C/∂y_l, v⟩ against (C(y_l + εv) − C(y_l − εv))/2ε through the layers above l, in
    float64, for a random direction v; and ∂C/∂x against Network.input_gradient."""
    net = NETWORKS[kind]("float64")
    # a little noise: no exact ties in a max-pool window, no z exactly at ReLU's kink
    x = 0.9 * net.as_float(X[:1]) + 0.05 * np.random.default_rng(1).random((1, 784))
    e = ex.explain(net, x[0], label=7)
    target = net.targets([7])
    outputs = []
    y = x
    for layer in net.layers:
        y = np.array(layer.forward(y, training=False))
        outputs.append(y)

    def loss_from(i: int, y_i: np.ndarray) -> float:
        y = y_i
        for layer in net.layers[i + 1:]:
            y = layer.forward(y, training=False)
        return float(-np.sum(target * np.log(y)))  # C = −Σ y log a_L (B = 1), also for a_L itself

    rng = np.random.default_rng(0)
    for i, trace in enumerate(e.layers):
        # not along outputs at exactly 0 (ReLU's): a max-pool window of zeros is a kink
        v = rng.standard_normal(outputs[i].shape) * (outputs[i] != 0)
        v /= np.linalg.norm(v)
        eps = 1e-6
        numeric = (loss_from(i, outputs[i] + eps * v) - loss_from(i, outputs[i] - eps * v)) / (2 * eps)
        assert np.sum(trace.output_grad * v[0]) == pytest.approx(numeric, rel=1e-5, abs=1e-9), (i, trace.type)
    p = e.probabilities
    grad_a = np.zeros((1, 10))
    grad_a[0, 7] = -1.0 / p[7]  # C = −log p_7, B = 1
    np.testing.assert_allclose(e.input_grad, net.copy().input_gradient(x, grad_a)[0], rtol=1e-9, atol=1e-12)


def test_a_dense_stack_follows_the_recursion_of_math_md():
    """δ_L = p − e_K (B = 1); δ_l = (δ_{l+1} W_{l+1}ᵀ) ⊙ σ'(z_l); ∂C/∂a_l = δ_{l+1} W_{l+1}ᵀ."""
    net = mlp((784, 12, 8, 10), activation="sigmoid", seed=2, dtype="float64")
    e = ex.explain(net, X[1], label=2)
    a = [tr.output for tr in e.layers]
    W = [layer.W for layer in net.layers]
    delta = a[2] - np.eye(10)[2]
    np.testing.assert_allclose(e.layers[2].delta_z, delta, rtol=1e-12)
    np.testing.assert_allclose(e.layers[2].output_grad, -np.eye(10)[2] / a[2], rtol=1e-12)
    for lay in (1, 0):
        grad_a = delta @ W[lay + 1].T
        np.testing.assert_allclose(e.layers[lay].output_grad, grad_a, rtol=1e-10)
        delta = grad_a * a[lay] * (1 - a[lay])
        np.testing.assert_allclose(e.layers[lay].delta_z, delta, rtol=1e-10)
    # ∇W₁ = xᵀ δ₁: the ten units with the largest columns, each shown as 28×28
    gW = np.outer(e.input, delta)
    pics = e.first_weights
    assert pics.kind == "units" and pics.layer == 0 and pics.path == "layers.0"
    norms = np.linalg.norm(gW, axis=0)
    assert pics.picks == list(np.argsort(-norms, kind="stable")[:10])
    np.testing.assert_allclose(pics.grads, gW[:, pics.picks].T.reshape(10, 28, 28), rtol=1e-10, atol=1e-15)
    np.testing.assert_array_equal(pics.weights, W[0][:, pics.picks].T.reshape(10, 28, 28))
    assert len(e.top) == 10 and abs(e.top[0].grad) >= abs(e.top[-1].grad)
    for change in e.top:
        assert change.path.startswith(f"layers.{change.layer}")


def test_top_changes_are_the_largest_gradient_entries():
    net = NETWORKS["resnet"]()
    e = ex.explain(net, X[2], label=1)
    copy = net.copy()
    copy.gradients(X[2:3], [1], training=False)
    entries = [(abs(float(g)), path, name, idx) for path, layer in copy.walk() for name in layer.grads
               for idx, g in np.ndenumerate(layer.grads[name])]
    entries.sort(key=lambda t: -t[0])
    assert [abs(c.grad) for c in e.top] == [t[0] for t in entries[:10]]
    layers = dict(copy.walk())
    for c in e.top:
        assert c.grad == layers[c.path].grads[c.param][c.index]
        assert c.value == layers[c.path].params[c.param][c.index]
    for trace in e.layers:  # each layer's own top entries lie in that layer
        assert all(c.layer == trace.index for c in trace.top)
        assert len(trace.top) == min(10, trace.n_params)


def test_a_convolution_shows_its_filters_gradients():
    net = NETWORKS["convnet"]()
    e = ex.explain(net, X[0])
    copy = net.copy()
    copy.gradients(X[:1], [e.label], training=False)
    conv = copy.layers[1]
    pics = e.first_weights
    assert pics.kind == "filters" and pics.layer == 1 and pics.type == "Conv2D"
    assert pics.picks == [[o, 0] for o in range(4)]
    np.testing.assert_array_equal(pics.grads, conv.grads["W"].reshape(4, 5, 5))
    np.testing.assert_array_equal(pics.weights, conv.params["W"].reshape(4, 5, 5))
    assert e.layers[1].delta_z is not None and e.layers[1].delta_z.shape == (4, 24, 24)
    # δ = ∂C/∂a ⊙ 1[z > 0] for the ReLU maps
    np.testing.assert_allclose(e.layers[1].delta_z, e.layers[1].output_grad * (e.layers[1].output > 0))
    assert [tr.passes for tr in e.layers] == [True, False, False, False, False, True, False, True, False]


@pytest.mark.parametrize("lr", [None, 0.5])
def test_the_step_is_theta_minus_r_grad_on_a_copy(lr):
    net = NETWORKS["dense"]()
    before = snapshot(net)
    e = ex.explain(net, X[3], label=5, lr=lr)
    for old, new in zip(before, snapshot(net), strict=True):
        np.testing.assert_array_equal(old, new)
    copy = net.copy()
    copy.gradients(X[3:4], [5], training=False)
    stepped = net.copy()
    stepped.params[...] = net.params - np.float32(e.lr) * copy.grads
    np.testing.assert_array_equal(e.after_step, stepped.predict(X[3:4])[0].astype(np.float64))
    if lr is not None:
        assert e.lr == lr and e.rates == [] and "as given" in e.lr_rule
    else:  # the smallest rate that moves p_5 by 0.05
        moved = [abs(p - e.probabilities[5]) for _, p in e.rates]
        assert [r for r, _ in e.rates] == list(ex.RATES)
        first = next(k for k, m in enumerate(moved) if m >= ex.TARGET_CHANGE)
        assert e.lr == ex.RATES[first] and f"R = {e.lr:g}" in e.lr_rule
    assert e.after_step[5] > e.probabilities[5]  # a step down the loss of label 5 makes 5 likelier


def test_uint8_and_float_inputs_agree():
    net = NETWORKS["dense"]()
    a = ex.explain(net, X[0], label=4, lr=1.0)
    b = ex.explain(net, X[0].astype(np.float32) * np.float32(PIXEL_SCALE), label=4, lr=1.0)
    assert a.as_json() == b.as_json()


@pytest.mark.parametrize("label", [10, -1, True, 2.5, "3"])
def test_a_label_outside_the_classes_is_one_line(label):
    with pytest.raises(ValueError, match=r"^the label must be a class 0\.\.9, not") as info:
        ex.explain(NETWORKS["dense"](), X[0], label=label)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("lr", [0, -1.0, float("nan"), float("inf"), "1", True])
def test_a_bad_rate_is_one_line(lr):
    with pytest.raises(ValueError, match="learning rate must be a positive number") as info:
        ex.explain(NETWORKS["dense"](), X[0], lr=lr)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("net", [
    nn.Network([nn.Dense(784, 8, "relu"), nn.Dense(8, 1, "identity")], loss="squared_error"),
    nn.Network([nn.Dense(784, 8, "relu"), nn.Dense(8, 1, "sigmoid")], loss="cross_entropy"),
    nn.Network([nn.Dense(784, 8, "relu"), nn.Dense(8, 10, "sigmoid")], loss="cross_entropy"),
    nn.Network([nn.Dense(784, 8, "relu"), nn.Dense(8, 10, "tanh")], loss="squared_error"),
], ids=["regression", "binary", "multi-label", "tanh"])
def test_a_network_that_is_not_a_classifier_is_one_line(net):
    with pytest.raises(ValueError, match="needs a classifier that ends in a softmax") as info:
        ex.explain(net, X[0])
    assert "\n" not in str(info.value)


def test_one_sample_only():
    with pytest.raises(ValueError, match="one sample, not 2"):
        ex.explain(NETWORKS["dense"](), X[:2])
    with pytest.raises(ValueError, match="784 features"):
        ex.explain(NETWORKS["dense"](), X[0][:100])


def test_softmax_with_squared_error_takes_the_unfused_path():
    net = nn.Network([nn.Dense(784, 8, "tanh"), nn.Dense(8, 10, "softmax")], loss="squared_error",
                     dtype="float64", seed=3)
    e = ex.explain(net, X[0], label=1)
    loss, grads = net.copy().gradients(X[:1], [1], training=False)
    assert e.loss == loss
    for trace, g in zip(e.layers, grads, strict=True):
        assert trace.param_grad_norm == pytest.approx(np.sqrt(squares(g)), rel=1e-12)
    np.testing.assert_allclose(e.layers[1].output_grad, e.probabilities - np.eye(10)[1], rtol=1e-12)
    assert "σ'" in e.layers[1].equation
