"""Whole-network gradients against finite differences.

Two kinds of check:

* ``nn.gradient_check`` (numpynn's own checker) on fixed, well-conditioned networks,
  including a negative control that it catches a wrong derivative.
* A property test over random architectures (hypothesis) with a more precise
  checker written here, because ``gradient_check``'s element-wise relative error
  ``|g_num − g_bp| / (|g_num| + |g_bp|)`` is dominated by round-off for gradient
  components that are tiny compared with the rest (vanishing gradients through
  saturated units are common in random deep nets): a correct backprop then scores
  1e-4…1e-1 (see ``test_gradient_check_does_not_flag_correct_tiny_gradients``).

How the property test avoids ReLU kinks: hypothesis draws the structure
(depth, widths, activations, loss, batch size, target kind) and one integer seed;
the numbers (inputs, weights, non-zero biases, targets) come from a NumPy
generator seeded with it, so they are generic. Examples where some ReLU/leaky-ReLU
pre-activation is within 1e-3 of 0, or where any finite-difference evaluation
flips the sign of one, are rejected with ``assume``; they happen in about 1% of
examples.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import numpynn as nn
from numpynn import activations

HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", "identity"]
OUTPUTS = [
    ("sigmoid", "cross_entropy"),
    ("sigmoid", "squared_error"),
    ("softmax", "cross_entropy"),
    ("softmax", "squared_error"),
    ("identity", "squared_error"),
    ("tanh", "squared_error"),
]
KINKED = ("relu", "leaky_relu")


def flat(grads):
    return np.concatenate([np.concatenate([dW.ravel(), db.ravel()]) for dW, db in grads])


def kink_signs(net):
    return [layer.z > 0 for layer in net.layers if layer.activation.name in KINKED]


def precise_check(net, x, y, h=1e-3):
    """Backprop vs a 5-point central difference (error O(h⁴) + round-off ~1e-13).

    Returns (max relative error, whether any evaluation crossed a ReLU kink). The
    relative error of component i is |num_i − g_i| / max(|num_i| + |g_i|, 1e-4·max|g|):
    element-wise for every component within 1e4 of the largest, absolute (scaled)
    below that, where round-off dominates any finite difference.
    """
    _, grads = net.gradients(x, y)
    g = flat(grads)
    net.evaluate(x, y)
    base = [s.copy() for s in kink_signs(net)]
    theta = net.params
    numeric = np.empty_like(g)
    crossed = False
    for i in range(theta.size):
        original = theta[i]
        f = {}
        for k in (-2, -1, 1, 2):
            theta[i] = original + k * h
            f[k] = net.evaluate(x, y)["loss"]
            crossed |= any((s != b).any() for s, b in zip(kink_signs(net), base, strict=True))
        theta[i] = original
        numeric[i] = (f[-2] - 8 * f[-1] + 8 * f[1] - f[2]) / (12 * h)
    floor = max(1e-4 * np.abs(g).max(), 1e-300)
    rel = np.abs(numeric - g) / np.maximum(np.abs(numeric) + np.abs(g), floor)
    return float(rel.max()), crossed


@st.composite
def cases(draw):
    depth = draw(st.integers(1, 4))
    widths = draw(st.lists(st.integers(1, 7), min_size=depth + 1, max_size=depth + 1))
    hidden = draw(st.lists(st.sampled_from(HIDDEN), min_size=depth - 1, max_size=depth - 1))
    output, loss = draw(st.sampled_from(OUTPUTS))
    if output == "softmax":
        widths[-1] = max(widths[-1], 2)  # a 1-unit softmax is constant
    batch = draw(st.integers(1, 6))
    target = draw(st.sampled_from(["labels", "rows"]))
    seed = draw(st.integers(0, 2**32 - 1))
    return widths, hidden + [output], loss, batch, target, seed


def build(widths, acts, loss, batch, target, seed):
    rng = np.random.default_rng(seed)
    layers = [nn.Dense(widths[i], widths[i + 1], acts[i]) for i in range(len(acts))]
    net = nn.Network(layers, loss=loss, seed=seed, dtype="float64")
    for layer in net.layers:
        layer.b = rng.normal(0.0, 0.5, size=layer.n_out)  # non-zero: no z = 0 from dead rows
    n_out = widths[-1]
    x = rng.normal(size=(batch, widths[0]))
    if target == "labels":  # labels (n,); for one output these are 0/1 values of its column
        y = rng.integers(0, max(n_out, 2), size=batch)
    elif acts[-1] == "softmax" and loss == "cross_entropy":
        y = rng.dirichlet(np.ones(n_out), size=batch)  # probability rows
    elif acts[-1] in ("softmax", "sigmoid"):
        y = rng.uniform(size=(batch, n_out))
    else:
        y = rng.normal(size=(batch, n_out))
    return net, x, y


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(cases())
def test_backprop_matches_finite_differences_on_random_networks(case):
    widths, acts, loss, batch, target, seed = case
    net, x, y = build(widths, acts, loss, batch, target, seed)
    net.evaluate(x, y)
    margins = [np.abs(layer.z).min() for layer in net.layers if layer.activation.name in KINKED]
    assume(min(margins, default=np.inf) > 1e-3)
    params_before = net.params.copy()
    err, crossed = precise_check(net, x, y)
    assume(not crossed)
    np.testing.assert_array_equal(net.params, params_before)
    assert err < 1e-6, f"{acts} {loss} widths={widths} batch={batch} {target}: max rel error {err:.2e}"


# --- numpynn's gradient_check ------------------------------------------------------------------
SOFTPLUS = nn.Custom(lambda z: np.logaddexp(0.0, z), lambda z: 0.5 * np.tanh(0.5 * z) + 0.5,
                     name="softplus")

FIXED = [
    (["tanh", "sigmoid"], "squared_error"),
    (["sigmoid", "softmax"], "cross_entropy"),
    (["tanh", "softmax"], "squared_error"),
    (["tanh", "tanh", "sigmoid"], "cross_entropy"),
    ([SOFTPLUS, "identity"], "squared_error"),
    (["leaky_relu", "tanh"], "squared_error"),
]


@pytest.mark.parametrize("acts, loss", FIXED, ids=lambda v: str(v)[:40])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gradient_check_passes_on_fixed_networks(acts, loss, dtype, kernel_backend):
    rng = np.random.default_rng(11)
    widths = [3, 5, 4, 3][: len(acts) + 1]
    net = nn.Network([nn.Dense(widths[i], widths[i + 1], a) for i, a in enumerate(acts)],
                     loss=loss, seed=3, dtype=dtype)
    for layer in net.layers:
        layer.b = rng.normal(0, 0.3, size=layer.n_out)
    x = rng.normal(size=(4, 3)) + 0.5
    y = rng.integers(0, widths[-1], size=4)
    before = net.params.copy()
    result = nn.gradient_check(net, x, y)
    assert result.checked == net.n_params
    assert result.max_rel_error < 1e-6, str(result)
    assert result.ok and "OK" in str(result)
    np.testing.assert_array_equal(net.params, before)  # the network is not touched
    assert net.dtype == np.dtype(dtype)


def test_gradient_check_catches_a_wrong_derivative(monkeypatch):
    net = nn.Network([nn.Dense(3, 4, "tanh"), nn.Dense(4, 2, "sigmoid")], "squared_error", seed=1)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 3)), rng.uniform(size=(5, 2))
    assert nn.gradient_check(net, x, y).ok
    # plant a bug: tanh' = 1 − a instead of 1 − a²
    monkeypatch.setattr(activations.Tanh, "derivative", lambda self, z, a: 1.0 - a)
    result = nn.gradient_check(net, x, y)
    assert not result.ok and result.max_rel_error > 1e-2
    assert "MISMATCH" in str(result) and result.worst.startswith("layers.0.")


def test_gradient_check_samples_at_most_max_params():
    net = nn.Network([nn.Dense(10, 8, "tanh"), nn.Dense(8, 3, "softmax")], seed=0)
    x = np.random.default_rng(0).normal(size=(4, 10))
    result = nn.gradient_check(net, x, [0, 1, 2, 0], max_params=25, seed=5)
    assert result.checked == 25 < net.n_params
    assert result.max_rel_error < 1e-6
    assert result.worst.startswith("layers.") and ("W[" in result.worst or "b[" in result.worst)


def test_gradient_check_does_not_flag_correct_tiny_gradients():
    """A correct backprop must pass. Here ∂C/∂W₀ = σ'(17)·σ(17) ≈ 4e-8 (a saturated
    sigmoid) is computed exactly by backprop, yet the central difference with eps=1e-6
    carries ~1e-11 of round-off from C ≈ 0.5, which gradient_check divides by
    |g| ≈ 8e-8 and reports as a relative error ~1e-4: MISMATCH for a correct network.
    """
    net = nn.Network([nn.Dense(1, 1, "sigmoid", W=[[1.0]], b=[16.0]),
                      nn.Dense(1, 1, "identity", W=[[1.0]])], "squared_error", dtype="float64")
    x, y = [[1.0]], [[0.0]]
    _, grads = net.gradients(x, y)
    s = 0.5 * np.tanh(8.5) + 0.5  # σ(17)
    assert grads[0][0][0, 0] == pytest.approx(s * s * (1 - s), rel=1e-7)  # backprop is right
    result = nn.gradient_check(net, x, y)
    assert result.ok, str(result)



def test_gradient_check_allows_for_the_rounding_of_the_central_difference(monkeypatch):
    """A correct convolutional network whose gradients are all small (the largest 0.057):
    ∂C/∂W at one weight is 1.40306e-6 by backprop and by central differences at ε = 1e-4 and
    1e-5, while ε = 1e-6 gives 1.40299e-6, 6.7e-11 off (C ≈ 1, rounded at 2.2e-16, over 2ε).
    Against a floor of 1e-4 of the largest gradient alone (5.7e-6) that read 1.18e-5:
    MISMATCH. An error in that weight's gradient well above the rounding is still caught."""
    net = nn.Network([nn.Conv2D(2, 3, 1, activation="tanh"),
                      nn.Conv2D(3, 4, (4, 1), padding=(2, 1), activation="sigmoid"),
                      nn.AvgPool2D(2, 1), nn.Flatten(), nn.Dense(120, 3, "softmax")],
                     input_shape=(2, 6, 4), seed=10555, dtype="float64")
    rng = np.random.default_rng(10555)
    net.layers[0].b = rng.normal(0, 0.5, size=3)
    net.layers[1].b = rng.normal(0, 0.5, size=4)
    x, y = rng.normal(size=(5, 2, 6, 4)), rng.integers(0, 3, size=5)
    i = 3 * 2 + 3 + np.ravel_multi_index((2, 2, 1, 0), (4, 3, 4, 1))  # layers.1.W[2, 2, 1, 0]
    _, grads = net.gradients(x, y)
    assert grads[1][0][2, 2, 1, 0] == pytest.approx(1.40306e-6, rel=1e-5) == net.grads[i]
    result = nn.gradient_check(net, x, y, max_params=None)
    assert result.ok, str(result)

    real = nn.Network.gradients

    def off(self, x, y, training=True):  # that weight's gradient 1e-8 off (0.7% of it, 40 times
        loss, grads = real(self, x, y, training)  # the central difference's rounding)
        self.grads[i] += 1e-8
        return loss, grads

    monkeypatch.setattr(nn.Network, "gradients", off)
    result = nn.gradient_check(net, x, y, max_params=None)
    assert not result.ok and result.worst == "layers.1.W[2, 2, 1, 0]", str(result)
