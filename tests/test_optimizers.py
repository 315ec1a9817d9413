"""Optimisers against naive textbook updates, per kernel backend; validation; state."""

from __future__ import annotations

import numpy as np
import pytest

import numpynn as nn
from numpynn import _kernels, optimizers

N = 101


def problem(dtype="float64", steps=6, seed=0):
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=N).astype(dtype)
    grads = [rng.normal(size=N).astype(dtype) for _ in range(steps)]
    return theta, grads


def naive_sgd(theta, grads, lr, momentum=0.0, nesterov=False, weight_decay=0.0, dampening=0.0):
    theta = theta.astype(np.float64)
    v = None
    for g in grads:
        g = g.astype(np.float64) + weight_decay * theta
        if momentum:
            v = g.copy() if v is None else momentum * v + (1 - dampening) * g
            g = g + momentum * v if nesterov else v
        theta = theta - lr * g
    return theta


def naive_adam(theta, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    theta = theta.astype(np.float64)
    b1, b2 = betas
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        g = g.astype(np.float64)
        if decoupled:
            theta = theta * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    return theta


SGD_CONFIGS = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.1, weight_decay=0.01),
    dict(lr=0.05, momentum=0.5, dampening=0.5),
    dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.05),
]
ADAM_CONFIGS = [
    dict(),
    dict(lr=0.05, betas=(0.5, 0.9), eps=1e-3),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.01, weight_decay=0.1, decoupled=True),
]
TOL = {"float64": 1e-12, "float32": 2e-6}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("config", SGD_CONFIGS, ids=str)
def test_sgd_matches_naive_update(config, dtype, kernel_backend):
    theta, grads = problem(dtype)
    expected = naive_sgd(theta, grads, **config)
    opt = nn.SGD(**config)
    for g in grads:
        opt.step(theta, g.copy())
    assert theta.dtype == np.dtype(dtype) and opt.t == len(grads)
    np.testing.assert_allclose(theta, expected, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("config", ADAM_CONFIGS, ids=str)
def test_adam_matches_naive_update(config, dtype, kernel_backend):
    theta, grads = problem(dtype)
    expected = naive_adam(theta, grads, **config)
    opt = nn.Adam(**config)
    for g in grads:
        opt.step(theta, g.copy())
    assert theta.dtype == np.dtype(dtype) and opt.t == len(grads)
    np.testing.assert_allclose(theta, expected, rtol=TOL[dtype], atol=TOL[dtype])


def test_adam_first_step_moves_every_parameter_by_lr():
    """With bias correction, step one is lr·sign(g) (up to ε) whatever |g| is."""
    theta = np.zeros(6)
    g = np.array([1e-3, -2.0, 5.0, -7e2, 0.3, -1e-2])
    nn.Adam(lr=0.01, eps=1e-12).step(theta, g.copy())
    np.testing.assert_allclose(theta, -0.01 * np.sign(g), rtol=1e-8)


def run_adam(dtype):
    theta, grads = problem(dtype, steps=4, seed=9)
    opt = nn.Adam(lr=0.01)
    for g in grads:
        opt.step(theta, g.copy())
    return theta, opt.m.copy(), opt.v.copy()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_compiled_backend_gives_the_numpy_reference_bits_on_adam(dtype, compiled_backend):
    """Adam through a compiled backend (C) against the NumPy reference: the same
    parameters and moments, bit for bit (the compiled loops keep IEEE semantics and
    the reference's order of operations)."""
    assert compiled_backend != "numpy" and _kernels.backend_name() == compiled_backend
    ours = run_adam(dtype)
    previous = _kernels.use("numpy")
    try:
        reference = run_adam(dtype)
    finally:
        _kernels.use(previous)
    for name, a, ref in zip(("theta", "m", "v"), ours, reference, strict=True):
        assert a.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(a, ref, err_msg=f"{compiled_backend} {name}")


def test_optimizer_may_overwrite_grads_but_not_need_them_later():
    theta, grads = problem(steps=3)
    expected = naive_adam(theta, grads, lr=0.01)
    opt = nn.Adam(lr=0.01)
    for g in grads:
        buf = g.copy()
        opt.step(theta, buf)
        buf[...] = np.nan  # the caller reuses its gradient buffer
    np.testing.assert_allclose(theta, expected, rtol=1e-12)


# --- validation ------------------------------------------------------------------------------
@pytest.mark.parametrize("lr", [0, -0.1, float("nan"), float("inf"), "0.1", None])
def test_learning_rate_must_be_positive_number(lr):
    with pytest.raises(ValueError, match="learning rate"):
        nn.SGD(lr=lr)
    with pytest.raises(ValueError, match="learning rate"):
        nn.Adam(lr=lr)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(momentum=1.0), "momentum"),
        (dict(momentum=-0.1), "momentum"),
        (dict(nesterov=True), "Nesterov"),
        (dict(nesterov=True, momentum=0.9, dampening=0.1), "Nesterov"),
        (dict(weight_decay=-1.0), "weight_decay"),
        (dict(weight_decay=float("nan")), "weight_decay"),
    ],
)
def test_sgd_rejects_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nn.SGD(lr=0.1, **kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(betas=(1.0, 0.9)), "betas"), (dict(betas=(0.9, -0.1)), "betas"), (dict(eps=0.0), "eps")],
)
def test_adam_rejects_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nn.Adam(**kwargs)


def test_get_and_from_config():
    assert isinstance(optimizers.get(None), nn.Adam)
    assert optimizers.get(None).lr == 1e-3
    assert isinstance(optimizers.get("SGD", lr=0.5), nn.SGD) and optimizers.get("sgd", lr=0.5).lr == 0.5
    opt = nn.Adam(lr=0.02)
    assert optimizers.get(opt) is opt
    with pytest.raises(ValueError, match="'no-such-optimiser'"):
        optimizers.get("no-such-optimiser")
    for original in (nn.SGD(lr=0.3, momentum=0.7, nesterov=True, weight_decay=0.01),
                     nn.Adam(lr=0.004, betas=(0.8, 0.9), eps=1e-5, weight_decay=0.2, decoupled=True)):
        clone = optimizers.from_config(original.config())
        assert type(clone) is type(original)
        assert clone.config() == original.config()
        assert repr(clone) == repr(original)
    with pytest.raises(ValueError, match="unknown optimizer"):
        optimizers.from_config({"name": "lbfgs"})


@pytest.mark.parametrize("make", [lambda: nn.SGD(lr=0.05, momentum=0.9, nesterov=True),
                                  lambda: nn.Adam(lr=0.01, weight_decay=0.01)], ids=["sgd", "adam"])
def test_state_dict_resumes_exactly(make):
    theta, grads = problem(steps=6)
    uninterrupted = make()
    t1 = theta.copy()
    for g in grads:
        uninterrupted.step(t1, g.copy())

    first = make()
    t2 = theta.copy()
    for g in grads[:3]:
        first.step(t2, g.copy())
    state = first.state_dict()
    for g in grads[:2]:  # steps taken after the snapshot are not in it
        first.step(np.zeros_like(t2), g.copy())
    resumed = optimizers.from_config(state["config"])
    resumed.load_state_dict(state)
    assert resumed.t == 3
    for g in grads[3:]:
        resumed.step(t2, g.copy())
    np.testing.assert_array_equal(t2, t1)


def test_learning_rate_can_change_between_steps():
    theta = np.ones(3)
    opt = nn.SGD(lr=0.1)
    opt.step(theta, np.ones(3))
    opt.lr = 0.01
    opt.step(theta, np.ones(3))
    np.testing.assert_allclose(theta, 1 - 0.1 - 0.01)


def test_adam_state_is_reinitialised_for_a_different_parameter_vector():
    opt = nn.Adam(lr=0.1)
    opt.step(np.zeros(4), np.ones(4))
    other = np.zeros(7)
    opt.step(other, np.full(7, 2.0))
    assert opt.m.shape == opt.v.shape == (7,)
    np.testing.assert_allclose(opt.m, 0.1 * 2.0)  # fresh moments: (1 − β₁)·g, not carried over
    np.testing.assert_allclose(opt.v, 0.001 * 4.0)
    assert np.isfinite(other).all() and (other < 0).all()


# --- AdamW ----------------------------------------------------------------------------------------
def test_adamw_is_adam_with_decoupled_decay_bit_for_bit():
    theta, grads = problem("float32")
    a, b = theta.copy(), theta.copy()
    ours, reference = nn.AdamW(lr=0.01), nn.Adam(lr=0.01, weight_decay=0.01, decoupled=True)
    for g in grads:
        ours.step(a, g.copy())
        reference.step(b, g.copy())
    assert np.array_equal(a, b)
    plain = theta.copy()
    adam = nn.Adam(lr=0.01)
    for g in grads:
        adam.step(plain, g.copy())
    assert not np.array_equal(a, plain)  # the default decay of 0.01 does act


def test_adamw_is_registered_and_round_trips_its_config():
    opt = optimizers.get("adamw", lr=0.003)
    assert type(opt) is nn.AdamW and opt.weight_decay == 0.01 and opt.lr == 0.003
    clone = optimizers.from_config(nn.AdamW(lr=0.02, betas=(0.8, 0.9), weight_decay=0.1).config())
    assert type(clone) is nn.AdamW
    assert clone.config() == {"name": "adamw", "lr": 0.02, "betas": [0.8, 0.9], "eps": 1e-8,
                              "weight_decay": 0.1}


@pytest.mark.parametrize("kwargs", [dict(), dict(lr=0.02, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.3)],
                         ids=["defaults", "custom"])
def test_adamw_steps_match_torch_adamw(kwargs):
    torch = pytest.importorskip("torch")
    theta, grads = problem("float64", steps=8, seed=3)
    p = torch.tensor(theta.copy(), requires_grad=True)
    theirs = torch.optim.AdamW([p], **kwargs)  # the same defaults: lr 1e-3, weight decay 0.01
    ours = nn.AdamW(**kwargs)
    for g in grads:
        ours.step(theta, g.copy())
        p.grad = torch.tensor(g.copy())
        theirs.step()
    np.testing.assert_allclose(theta, p.detach().numpy(), rtol=1e-12, atol=1e-14)
