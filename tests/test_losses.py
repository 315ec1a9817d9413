"""Losses: values against naive formulas, stability, pairing rules, output deltas."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import numpynn as nn
from numpynn import activations, losses

B, K = 5, 4


def data(seed=0, scale=3.0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(B, K)) * scale
    labels = rng.integers(0, K, size=B)
    onehot = np.eye(K)[labels]
    soft = rng.dirichlet(np.ones(K), size=B)  # probability rows
    unit = rng.uniform(size=(B, K))  # binary targets in [0, 1]
    return z, onehot, soft, unit


def naive_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def naive_softmax(z):
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# --- values ----------------------------------------------------------------------------
@pytest.mark.parametrize("out", ["sigmoid", "tanh", "identity", "softmax", "relu"])
def test_squared_error_value(out):
    z, _, soft, _ = data()
    act = activations.get(out)
    a = act(z)
    expected = np.mean(0.5 * np.sum((soft - a) ** 2, axis=1))
    assert losses.get("squared_error").value(z, a, soft, act) == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("target", ["onehot", "soft"])
def test_softmax_cross_entropy_value(target):
    z, onehot, soft, _ = data()
    y = onehot if target == "onehot" else soft
    act = activations.get("softmax")
    expected = -np.mean(np.sum(y * np.log(naive_softmax(z)), axis=1))
    assert losses.get("cross_entropy").value(z, act(z), y, act) == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize("target", ["onehot", "unit"])
def test_binary_cross_entropy_value(target):
    z, onehot, _, unit = data()
    y = onehot if target == "onehot" else unit
    act = activations.get("sigmoid")
    s = naive_sigmoid(z)
    expected = np.mean(np.sum(-y * np.log(s) - (1 - y) * np.log(1 - s), axis=1))
    assert losses.get("cross_entropy").value(z, act(z), y, act) == pytest.approx(expected, rel=1e-12)


def test_network_loss_is_the_batch_mean():
    """Network.gradients/evaluate report the same loss as the naive formula, and a
    batch repeated twice has the same loss and the same gradients (a mean, not a sum)."""
    rng = np.random.default_rng(1)
    net = nn.Network([nn.Dense(3, K, "softmax")], loss="cross_entropy", seed=0, dtype="float64")
    x = rng.normal(size=(B, 3))
    labels = rng.integers(0, K, size=B)
    z = x @ net.layers[0].W + net.layers[0].b
    expected = -np.mean(np.log(naive_softmax(z))[np.arange(B), labels])
    loss, grads = net.gradients(x, labels)
    assert loss == pytest.approx(expected, rel=1e-13)
    assert net.evaluate(x, labels)["loss"] == pytest.approx(expected, rel=1e-13)
    loss2, grads2 = net.gradients(np.vstack([x, x]), np.concatenate([labels, labels]))
    assert loss2 == pytest.approx(loss, rel=1e-14)
    for (dW, db), (dW2, db2) in zip(grads, grads2, strict=True):
        np.testing.assert_allclose(dW2, dW, rtol=1e-13)
        np.testing.assert_allclose(db2, db, rtol=1e-13)


def test_squared_error_through_network_matches_naive_formula():
    rng = np.random.default_rng(2)
    net = nn.Network([nn.Dense(3, 2, "identity")], loss="squared_error", seed=0, dtype="float64")
    x, y = rng.normal(size=(B, 3)), rng.normal(size=(B, 2))
    a = x @ net.layers[0].W + net.layers[0].b
    expected = np.mean(0.5 * np.sum((y - a) ** 2, axis=1))
    assert net.evaluate(x, y)["loss"] == pytest.approx(expected, rel=1e-13)


# --- stability ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("big", [1e4, 1e30])
def test_huge_logits_give_finite_exact_cross_entropy(dtype, big):
    z = np.array([[big, -big, 0.0], [-big, big, 0.0], [0.0, 0.0, 0.0]], dtype)
    y = np.array([[0, 1, 0], [0, 1, 0], [1, 0, 0]], dtype)
    ce = losses.get("cross_entropy")
    soft = activations.get("softmax")
    sig = activations.get("sigmoid")
    with np.errstate(over="raise", invalid="raise", divide="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        value = ce.value(z, soft(z), y, soft)
        binary = ce.value(z, sig(z), y, sig)
        delta = ce.output_delta(z, soft(z), y, soft)
    # row 0: −log a_1 = 2·big; row 1: 0; row 2: log 3
    assert np.isfinite(value)
    assert value == pytest.approx((2 * float(dtype(big)) + np.log(3)) / 3, rel=1e-12)
    # binary, Σ_j softplus(z_j) − y_j z_j per row: 2·big + log 2, log 2, 3 log 2
    expected_binary = (2 * float(dtype(big)) + 5 * np.log(2)) / 3
    assert np.isfinite(binary)
    assert binary == pytest.approx(expected_binary, rel=1e-12)
    assert np.isfinite(delta).all()


def test_binary_cross_entropy_of_saturated_sigmoid_is_large_not_inf():
    z = np.array([[-800.0], [800.0]])
    y = np.array([[1.0], [0.0]])
    sig = activations.get("sigmoid")
    a = sig(z)
    assert a[0, 0] == 0.0 and a[1, 0] == 1.0  # log a would be −inf
    assert losses.get("cross_entropy").value(z, a, y, sig) == pytest.approx(800.0, rel=1e-15)


# --- pairing rules and lookup -------------------------------------------------------------
@pytest.mark.parametrize("out", ["tanh", "identity", "relu", "leaky_relu"])
def test_cross_entropy_needs_softmax_or_sigmoid(out):
    with pytest.raises(ValueError) as info:
        nn.Network([nn.Dense(3, 4, "tanh"), nn.Dense(4, 2, out)], loss="cross_entropy")
    message = str(info.value)
    assert "cross_entropy" in message and out in message


@pytest.mark.parametrize("out", ["softmax", "sigmoid"])
def test_cross_entropy_accepts_softmax_and_sigmoid(out):
    net = nn.Network([nn.Dense(3, 2, out)], loss="cross_entropy")
    assert net.loss.name == "cross_entropy"


@pytest.mark.parametrize(
    "name, cls",
    [("squared_error", losses.SquaredError), ("MSE", losses.SquaredError),
     ("cross-entropy", losses.CrossEntropy), ("cross_entropy", losses.CrossEntropy)],
)
def test_get_by_name(name, cls):
    assert type(losses.get(name)) is cls


def test_get_errors():
    with pytest.raises(ValueError, match="'hinge'"):
        losses.get("hinge")
    with pytest.raises(TypeError, match="loss must be a name"):
        losses.get(3)
    loss = losses.SquaredError()
    assert losses.get(loss) is loss


def test_cross_entropy_has_no_separate_grad_a():
    with pytest.raises(TypeError, match="output_delta"):
        losses.get("cross_entropy").grad_a(np.zeros((1, 2)), np.zeros((1, 2)))


# --- output deltas vs finite differences ---------------------------------------------------
CASES = [
    ("softmax", "cross_entropy", "onehot"),
    ("softmax", "cross_entropy", "soft"),
    ("sigmoid", "cross_entropy", "onehot"),
    ("sigmoid", "cross_entropy", "unit"),
    ("softmax", "squared_error", "soft"),
    ("sigmoid", "squared_error", "unit"),
    ("tanh", "squared_error", "soft"),
    ("identity", "squared_error", "unit"),
    ("leaky_relu", "squared_error", "unit"),
]


@pytest.mark.parametrize("out, loss_name, target", CASES)
def test_output_delta_matches_finite_differences(out, loss_name, target, kernel_backend):
    z, onehot, soft, unit = data(seed=3, scale=2.0)
    z = np.where(np.abs(z) < 0.05, 0.1, z)  # away from leaky_relu's kink
    y = {"onehot": onehot, "soft": soft, "unit": unit}[target]
    act = activations.get(out)
    loss = losses.get(loss_name)

    def value(zz):
        return loss.value(zz, act(zz), y, act)

    delta = loss.output_delta(z.copy(), act(z), y, act)
    h = 1e-5
    numeric = np.empty_like(z)
    for idx in np.ndindex(*z.shape):
        e = np.zeros_like(z)
        e[idx] = h
        numeric[idx] = (value(z + e) - value(z - e)) / (2 * h)
    rel = np.abs(delta - numeric).max() / np.abs(numeric).max()
    assert rel < 1e-8, f"{out} + {loss_name}: relative error {rel:.2e}"


def test_softmax_squared_error_delta_uses_the_full_jacobian():
    """Not the element-wise shortcut a(1 − a): the explicit Jᵀ (a − y)/B."""
    z, _, soft, _ = data(seed=4)
    act = activations.get("softmax")
    a = act(z)
    delta = losses.get("squared_error").output_delta(z, a, soft, act)
    expected = np.stack([(np.diag(r) - np.outer(r, r)).T @ (r - t) for r, t in zip(a, soft, strict=True)]) / B
    np.testing.assert_allclose(delta, expected, rtol=1e-12, atol=1e-17)
    assert not np.allclose(delta, (a - soft) * a * (1 - a) / B)
