"""Dropout, Flatten and Reshape: forward, backward, seeding, and against PyTorch."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import numpynn as nn
from numpynn import datasets, models


def test_dropout_keeps_each_unit_with_probability_1_minus_p_and_scales_it():
    net = nn.Network([nn.Dense(50, 400, "relu"), nn.Dropout(0.3), nn.Dense(400, 2, "softmax")], seed=0)
    drop = net.layers[1]
    x = np.abs(np.random.default_rng(0).normal(size=(64, 50))) + 0.1
    net.forward(x, training=True)
    m = drop.mask
    assert set(np.unique(m)) == {0.0, np.float32(1 / 0.7)}
    assert abs((m > 0).mean() - 0.7) < 0.01  # 25,600 draws: σ ≈ 0.003
    a = net.layers[0].a
    y = drop.forward(a, training=True)
    np.testing.assert_allclose(y, a * drop.mask)
    # inference: identity, no mask
    out = drop.forward(a, training=False)
    assert out is a and drop.mask is None


@pytest.mark.parametrize("p", [0.3, 0.8])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dropout_scales_kept_inputs_by_1_over_1_minus_p_and_keeps_the_mean(p, dtype):
    """Inverted dropout, from its definition rather than from the layer's own mask: a kept
    input comes out as x/(1 − p), a dropped one as 0, so the mean over many draws is x; and
    the gradient is ∂C/∂y/(1 − p) where the input was kept, 0 where it was dropped."""
    n, draws = 8, 20_000
    net = nn.Network([nn.Dense(n, n, "identity"), nn.Dropout(p), nn.Dense(n, 2, "softmax")], seed=1, dtype=dtype)
    drop = net.layers[1]
    net.reseed(0)
    row = np.linspace(0.5, 2.0, n)
    x = np.tile(row, (draws, 1)).astype(dtype)
    y = drop.forward(x, training=True).copy()
    kept = y != 0  # every input is positive, so a zero output is a dropped one
    rtol = 1e-6 if dtype == "float32" else 1e-14
    np.testing.assert_allclose(y[kept], (x[kept].astype(np.float64) / (1 - p)), rtol=rtol)
    assert abs(kept.mean() - (1 - p)) < 0.01  # 160,000 draws: σ ≈ 0.0013
    # E[y] = x: the standard error of each column mean is x √(p/(1 − p)) / √draws, at most 1.4% of x
    np.testing.assert_allclose(y.mean(axis=0, dtype=np.float64), row, rtol=0.07)
    drop.needs_input_grad = True
    g = np.random.default_rng(2).normal(size=x.shape).astype(dtype)
    expected = np.where(kept, g.astype(np.float64) / (1 - p), 0.0)
    np.testing.assert_allclose(drop.backward(g.copy()), expected, rtol=rtol, atol=0)
    # at inference the same layer is the identity
    assert drop.forward(x, training=False) is x


def test_dropout_backward_is_the_mask():
    drop = nn.Dropout(0.5)
    nn.Network([nn.Dense(3, 8), drop, nn.Dense(8, 1, "sigmoid")])
    x = np.ones((5, 8), np.float32)
    drop.forward(x, training=True)
    g = np.random.default_rng(1).normal(size=(5, 8)).astype(np.float32)
    np.testing.assert_array_equal(drop.backward(g.copy()), g * drop.mask)


def test_dropout_refuses_p_outside_0_1():
    for p in (-0.1, 1.0, 2, "0.5", True):
        with pytest.raises(ValueError, match="probability"):
            nn.Dropout(p)


def test_dropout_training_is_bit_reproducible_and_resumes_exactly():
    data = datasets.load("mnist-sample")
    x, y = data.x_train[:1000], data.y_train[:1000]

    def run(epochs, initial=0, net=None, opt=None):
        net = net or models.mlp([784, 32, 10], dropout=0.3, seed=4)
        opt = opt or nn.Adam(lr=1e-2)
        net.fit(x, y, epochs=epochs, batch_size=50, optimizer=opt, progress=False, initial_epoch=initial)
        return net, opt

    a, _ = run(4)
    b, _ = run(4)
    assert hashlib.sha256(a.params.tobytes()).digest() == hashlib.sha256(b.params.tobytes()).digest()
    half, opt = run(2)
    resumed, _ = run(4, initial=2, net=half, opt=opt)
    np.testing.assert_array_equal(resumed.params, a.params)
    # and dropout really does something: without it the weights differ
    plain = models.mlp([784, 32, 10], seed=4)
    plain.fit(x, y, epochs=4, batch_size=50, optimizer=nn.Adam(lr=1e-2), progress=False)
    assert not np.array_equal(plain.params, a.params)


def test_dropout_does_not_touch_predict_or_evaluate():
    net = models.mlp([784, 32, 10], dropout=0.5, seed=0)
    plain = models.mlp([784, 32, 10], seed=0)
    data = datasets.load("mnist-sample")
    x, y = data.x_test[:100], data.y_test[:100]
    probs = plain.predict(x)
    np.testing.assert_array_equal(net.predict(x), probs)
    scores = net.evaluate(x, y)
    assert scores == plain.evaluate(x, y)
    # the scores of the dropout-free outputs, worked out here from the predictions
    assert scores["accuracy"] == np.mean(probs.argmax(axis=1) == y)
    assert scores["loss"] == pytest.approx(-np.mean(np.log(probs[np.arange(100), y])), rel=1e-5)


def test_flatten_and_reshape_are_views_and_their_backward_undoes_them():
    net = nn.Network([nn.Reshape((2, 3, 2)), nn.Flatten(), nn.Dense(12, 2, "softmax")], input_shape=(12,))
    reshape, flatten = net.layers[0], net.layers[1]
    x = np.arange(24, dtype=np.float32).reshape(2, 12)
    y = reshape.forward(x)
    assert y.shape == (2, 2, 3, 2) and np.shares_memory(y, x)
    f = flatten.forward(y)
    assert f.shape == (2, 12) and np.shares_memory(f, x)
    g = np.random.default_rng(0).normal(size=(2, 12))
    flatten.needs_input_grad = reshape.needs_input_grad = True
    np.testing.assert_array_equal(reshape.backward(flatten.backward(g)), g)
    with pytest.raises(ValueError, match="cannot reshape 12 values"):
        nn.Network([nn.Reshape((5, 2)), nn.Dense(10, 2)], input_shape=12)
    with pytest.raises(ValueError, match="positive whole numbers"):
        nn.Reshape((0, 3))


def test_reshaped_inputs_are_accepted_with_their_shape():
    net = nn.Network([nn.Flatten(), nn.Dense(6, 3, "softmax")], input_shape=(2, 3))
    x = np.random.default_rng(0).normal(size=(4, 2, 3))
    assert net.predict(x).shape == (4, 3)
    assert net.predict(x[0]).shape == (1, 3)  # one sample
    with pytest.raises(ValueError, match=r"shape \(samples, 2, 3\)"):
        net.predict(x.reshape(4, 6))


# --- finite differences over random stacks of every layer type ---------------------------------

@st.composite
def stacks(draw):
    """A random network: Reshape/Flatten at the input, Dense layers with any hidden
    activation, Dropout anywhere between them, any output and loss pairing."""
    n_in = draw(st.integers(1, 6))
    layers: list[nn.Layer] = []
    if draw(st.booleans()) and n_in > 1:
        layers += [nn.Reshape((1, n_in)), nn.Flatten()]
    width = n_in
    for _ in range(draw(st.integers(0, 3))):
        out = draw(st.integers(1, 6))
        layers.append(nn.Dense(width, out, draw(st.sampled_from(["sigmoid", "tanh", "identity"]))))
        width = out
        if draw(st.booleans()):
            layers.append(nn.Dropout(draw(st.sampled_from([0.1, 0.5, 0.8]))))
    loss = draw(st.sampled_from(["cross_entropy", "squared_error"]))
    n_out = draw(st.integers(1, 4))
    output = draw(st.sampled_from(["softmax", "sigmoid"] if n_out > 1 else ["sigmoid"]))
    if loss == "squared_error" and draw(st.booleans()):
        output = "tanh"
    layers.append(nn.Dense(width, n_out, output))
    batch = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**16))
    return layers, loss, n_in, n_out, batch, seed


@settings(max_examples=60, deadline=None)
@given(stacks())
def test_random_stacks_of_all_layer_types_pass_finite_differences(case):
    layers, loss, n_in, n_out, batch, seed = case
    net = nn.Network(layers, loss=loss, input_shape=n_in, seed=seed, dtype="float64")
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, n_in))
    y = rng.integers(0, max(n_out, 2), size=batch) if n_out > 1 or loss == "cross_entropy" else \
        rng.uniform(size=(batch, 1))
    # a network that already fits its batch almost exactly (every gradient below about 1e-5, its
    # cost rounded in the last bits of logits near 15) is beyond what a central difference resolves
    # to 1e-5: one such stack gave 1.8e-5 at eps=1e-5, 2e-4 at 1e-6 and 3.5e-6 at 1e-4, the error
    # of rounding, not of backprop. Such a draw is replaced by another.
    net.reseed(0, seed)
    assume(net.gradients(x, y)[0] > 1e-4)
    # smooth activations only (no kinks): a step of 1e-5 balances rounding against curvature
    result = nn.gradient_check(net, x, y, eps=1e-5, seed=seed)
    assert result.ok, f"{net!r}: {result}"  # a wrong line of backprop gives errors near 1


# --- PyTorch --------------------------------------------------------------------------------------

def test_dropout_and_flatten_match_torch_with_the_same_mask():
    torch = pytest.importorskip("torch")
    net = nn.Network([nn.Reshape((2, 3)), nn.Flatten(), nn.Dense(6, 5, "tanh"), nn.Dropout(0.4),
                      nn.Dense(5, 3, "softmax")], input_shape=6, seed=2, dtype="float64")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(7, 6))
    labels = rng.integers(0, 3, size=7)
    net.reseed(5)
    loss, grads = net.gradients(x, labels)
    mask = torch.tensor(net.layers[3].mask)
    d1, d2 = net.layers[2], net.layers[4]
    W1 = torch.tensor(d1.W, requires_grad=True)
    b1 = torch.tensor(d1.b, requires_grad=True)
    W2 = torch.tensor(d2.W, requires_grad=True)
    b2 = torch.tensor(d2.b, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    h = torch.tanh(torch.flatten(xt.reshape(7, 2, 3), 1) @ W1 + b1) * mask  # dropout with that mask
    t_loss = torch.nn.functional.cross_entropy(h @ W2 + b2, torch.tensor(labels))
    t_loss.backward()

    def rel(a, b):
        return float(np.abs(a - b.detach().numpy()).max() / np.abs(b.detach().numpy()).max())

    assert abs(loss - t_loss.item()) <= 1e-10 * abs(t_loss.item())
    assert grads[0] == grads[1] == grads[3] == ()
    for ours, theirs in ((grads[2][0], W1.grad), (grads[2][1], b1.grad), (grads[4][0], W2.grad),
                         (grads[4][1], b2.grad)):
        assert rel(ours, theirs) < 1e-10
    # and the input gradient through Flatten and Reshape, of Σ w ⊙ softmax for random weights w
    # (the gradient of the plain sum of softmax outputs is identically zero: it could not fail)
    w = rng.normal(size=(7, 3))
    net.reseed(5)
    g_in = net.input_gradient(x, w)  # eval mode: dropout is the identity
    xt2 = torch.tensor(x, requires_grad=True)
    out = torch.softmax(torch.tanh(torch.flatten(xt2.reshape(7, 2, 3), 1) @ W1 + b1) @ W2 + b2, 1)
    (out * torch.tensor(w)).sum().backward()
    expected = xt2.grad.numpy()
    assert g_in.shape == (7, 6) and np.abs(expected).min() > 1e-6  # no component vanishes
    assert np.abs(g_in - expected).max() <= 1e-10 * np.abs(expected).max()
