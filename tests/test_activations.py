"""Activations: values, derivatives, softmax's Jacobian, numerical stability, lookup."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numpynn as nn
from numpynn import _kernels, activations

# softplus and its derivative (the logistic function), written independently of numpynn
SOFTPLUS = nn.Custom(
    lambda z: np.logaddexp(0.0, z),
    lambda z: 0.5 * np.tanh(0.5 * z) + 0.5,
    name="softplus",
)

NAIVE = {
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "tanh": lambda z: (np.exp(z) - np.exp(-z)) / (np.exp(z) + np.exp(-z)),
    "relu": lambda z: np.where(z > 0, z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "identity": lambda z: z,
    "softplus": lambda z: np.log(1.0 + np.exp(z)),
}

ELEMENTWISE = ["sigmoid", "tanh", "relu", "leaky_relu", "identity", "softplus"]
ALL_NAMES = ["sigmoid", "tanh", "relu", "leaky_relu", "identity", "softmax"]


def make(name: str) -> activations.Activation:
    return SOFTPLUS if name == "softplus" else activations.get(name)


def moderate(shape=(6, 5), seed=0, away_from_zero=0.0) -> np.ndarray:
    """float64 values in [-8, 8]; optionally with |z| >= away_from_zero."""
    z = np.random.default_rng(seed).uniform(-8.0, 8.0, size=shape)
    if away_from_zero:
        z = np.where(np.abs(z) < away_from_zero, np.copysign(away_from_zero, z) + z, z)
    return z


def naive_softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z)  # fine for moderate z: this is the textbook formula
    return e / e.sum(axis=1, keepdims=True)


# --- values --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_values_match_naive_formulas(name, kernel_backend):
    z = moderate()
    a = make(name)(z)
    assert a.shape == z.shape and a.dtype == np.float64
    np.testing.assert_allclose(a, NAIVE[name](z), rtol=1e-13, atol=1e-15)


def test_leaky_relu_alpha_is_used():
    z = moderate(away_from_zero=0.1)
    act = activations.LeakyReLU(alpha=0.2)
    np.testing.assert_array_equal(act(z), np.where(z > 0, z, 0.2 * z))
    assert "0.2" in repr(act)


def test_softmax_values_match_naive_formula():
    z = moderate()
    a = activations.get("softmax")(z)
    np.testing.assert_allclose(a, naive_softmax(z), rtol=1e-13)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-15)


def test_softmax_is_shift_invariant_per_row():
    z = moderate()
    shift = np.arange(z.shape[0])[:, None] * 100.0
    soft = activations.get("softmax")
    np.testing.assert_allclose(soft(z + shift), soft(z), rtol=1e-12)


@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_writes_into_out_and_keeps_dtype(name, dtype, kernel_backend):
    z = moderate().astype(dtype)
    act = activations.get(name)
    expected = act(z.copy())
    out = np.full_like(z, np.nan)
    result = act.forward(z.copy(), out=out)
    assert result is out
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_kernel_backends_agree_with_reference(dtype, kernel_backend):
    z = (moderate((50, 40), seed=3) * 2).astype(dtype)
    grad = np.random.default_rng(4).normal(size=z.shape).astype(dtype)
    a = _kernels.sigmoid(z, np.empty_like(z))
    delta = _kernels.sigmoid_delta(grad.copy(), a)
    assert a.dtype == dtype and delta.dtype == dtype
    a64 = 1.0 / (1.0 + np.exp(-z.astype(np.float64)))
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(a, a64, rtol=8 * eps, atol=4 * eps)
    np.testing.assert_allclose(delta, grad * a * (1.0 - a), rtol=16 * eps, atol=1e-300)


def units_in_the_last_place(a, exact):
    """|a − σ| in steps of float32 at σ (exact: float64), where σ is a normal float32."""
    normal = exact >= np.finfo(np.float32).tiny
    return np.abs(a[normal] - exact[normal]) / np.spacing(exact[normal].astype(np.float32))


def test_float32_sigmoid_is_within_two_and_a_half_units_in_the_last_place(kernel_backend):
    """The float32 sigmoid (additions, products and one division in float32: the same bits on
    every machine) against σ in float64, on a grid of 3.6 million values over [−90, 90]: within
    2.5 steps of float32 wherever σ is a normal float32, within float32's smallest normal
    number (1.2e-38) of it elsewhere, and never decreasing."""
    z = np.linspace(-90, 90, 3_600_001, dtype=np.float32)
    a = _kernels.sigmoid(z, np.empty_like(z))
    exact = 1.0 / (1.0 + np.exp(-z.astype(np.float64)))
    assert units_in_the_last_place(a, exact).max() <= 2.5
    tiny = np.finfo(np.float32).tiny
    assert np.abs(a - exact).max() <= 1.5e-7 and np.abs(a - exact)[exact < tiny].max() <= tiny
    assert (np.diff(a) >= 0).all()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(width=32, allow_nan=False), min_size=1, max_size=40))
def test_float32_sigmoid_holds_for_any_float32(values):
    z = np.array(values, np.float32)
    a = _kernels.sigmoid(z, np.empty_like(z))
    with np.errstate(over="ignore"):
        exact = 1.0 / (1.0 + np.exp(-z.astype(np.float64)))
    assert ((a >= 0) & (a <= 1)).all()
    assert units_in_the_last_place(a, exact).max(initial=0) <= 2.5
    assert np.abs(a - exact).max() <= 1.5e-7


# --- derivatives -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_derivative_matches_central_differences(name, kernel_backend):
    # away from 0 so relu/leaky_relu are differentiable at every point
    z = moderate(away_from_zero=0.05, seed=1)
    act = make(name)
    h = 1e-6
    numeric = (NAIVE[name](z + h) - NAIVE[name](z - h)) / (2 * h)
    analytic = act.derivative(z, act(z))
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-9)
    # also against finite differences of numpynn's own forward pass
    numeric_own = (act(z + h) - act(z - h)) / (2 * h)
    np.testing.assert_allclose(analytic, numeric_own, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_delta_is_grad_times_derivative(name, kernel_backend):
    z = moderate(away_from_zero=0.05, seed=2)
    act = make(name)
    a = act(z)
    grad = np.random.default_rng(5).normal(size=z.shape)
    expected = grad * act.derivative(z, a)
    np.testing.assert_allclose(act.delta(grad.copy(), z, a), expected, rtol=1e-14, atol=1e-300)


def test_relu_derivative_is_zero_at_and_below_zero():
    z = np.array([[-2.0, -0.0, 0.0, 1e-300, 3.0]])
    relu = activations.get("relu")
    np.testing.assert_array_equal(relu.derivative(z, relu(z)), [[0, 0, 0, 1, 1]])
    np.testing.assert_array_equal(relu.delta(np.full_like(z, 7.0), z, relu(z)), [[0, 0, 0, 7, 7]])


def test_softmax_delta_is_the_jacobian_transpose_product():
    rng = np.random.default_rng(7)
    z = rng.normal(size=(5, 4)) * 3
    g = rng.normal(size=z.shape)
    soft = activations.get("softmax")
    a = soft(z)
    expected = np.empty_like(z)
    for r in range(z.shape[0]):
        J = np.diag(a[r]) - np.outer(a[r], a[r])  # J_ij = ∂a_i/∂z_j = a_i (1[i=j] − a_j)
        expected[r] = J.T @ g[r]
    np.testing.assert_allclose(soft.delta(g.copy(), z, a), expected, rtol=1e-12, atol=1e-15)


def test_softmax_jacobian_itself_matches_finite_differences():
    z = np.random.default_rng(8).normal(size=(1, 4))
    soft = activations.get("softmax")
    a = soft(z)[0]
    h = 1e-6
    for j in range(4):
        e = np.zeros_like(z)
        e[0, j] = h
        numeric = (soft(z + e)[0] - soft(z - e)[0]) / (2 * h)
        np.testing.assert_allclose(numeric, a * ((np.arange(4) == j) - a[j]), rtol=1e-7, atol=1e-10)


def test_softmax_has_no_elementwise_derivative():
    soft = activations.get("softmax")
    z = np.zeros((1, 3))
    with pytest.raises(TypeError, match="Jacobian"):
        soft.derivative(z, soft(z))
    assert soft.elementwise is False


# --- numerical stability ---------------------------------------------------------------------
HUGE_ROWS = [
    [1e4, -1e4, 0.0, 1.0],
    [-1e4, -1e4, -1e4, -1e4],
    [1e30, -1e30, 0.0, 2.0],
    [1e30, 1e30, -1e30, -1e30],
    [-1e30, -1e30, -1e30, -1e30],
    [1e30, 1.0, -1e4, 1e4],
    [0.0, 0.0, 0.0, 0.0],
]


def strict_floating_point():
    """Raise on overflow, invalid operations (NaN) and division by zero.

    Underflow is left at NumPy's default (ignored): e^(−2e30) rounding to 0 is the
    exact answer to working precision, not a loss of accuracy, and softmax must
    produce it.
    """
    return np.errstate(over="raise", invalid="raise", divide="raise", under="ignore")


@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_warnings_or_nan_on_huge_inputs(name, dtype, kernel_backend):
    z = np.array(HUGE_ROWS, dtype=dtype)
    act = activations.get(name)
    with strict_floating_point(), warnings.catch_warnings():
        warnings.simplefilter("error")
        a = act(z)
        if act.elementwise:
            d = act.derivative(z, a)
            delta = act.delta(np.ones_like(z), z, a)
        else:
            delta = act.delta(np.ones_like(z), z, a)
            d = np.zeros_like(z)
    assert a.dtype == dtype
    assert not np.isnan(a).any() and not np.isnan(d).any() and not np.isnan(delta).any()
    if name in ("sigmoid", "tanh", "softmax"):
        assert np.isfinite(a).all()
        assert np.isfinite(delta).all()
    if name == "sigmoid":
        assert ((a >= 0) & (a <= 1)).all()
        np.testing.assert_array_equal(a[2, :2], [1.0, 0.0])
    if name == "tanh":
        assert ((a >= -1) & (a <= 1)).all()
    if name == "softmax":
        assert ((a >= 0) & (a <= 1)).all()
        np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=4 * np.finfo(dtype).eps)
        np.testing.assert_allclose(a[3], [0.5, 0.5, 0.0, 0.0])
        np.testing.assert_allclose(a[4], [0.25] * 4)
        np.testing.assert_allclose(a[0], [1.0, 0.0, 0.0, 0.0])
        np.testing.assert_allclose(delta, 0.0, atol=4 * np.finfo(dtype).eps)  # Jᵀ·1 = 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_saturates_exactly_without_overflow(dtype, kernel_backend):
    z = np.array([[-1e30, -1e4, -100.0, 0.0, 100.0, 1e4, 1e30]], dtype)
    with strict_floating_point(), warnings.catch_warnings():
        warnings.simplefilter("error")
        a = activations.get("sigmoid")(z)
    np.testing.assert_array_equal(a[0, [0, 1, 5, 6]], [0.0, 0.0, 1.0, 1.0])
    assert a[0, 3] == 0.5


def test_softmax_of_huge_row_in_float32_matches_float64():
    z = np.array([[1e30, 1e30 - 1e24, 3.0]], np.float64)
    soft = activations.get("softmax")
    np.testing.assert_allclose(soft(z.astype(np.float32)), soft(z).astype(np.float32), atol=1e-6)


# --- lookup ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, cls",
    [
        ("sigmoid", activations.Sigmoid),
        ("TANH", activations.Tanh),
        (" relu ", activations.ReLU),
        ("leaky-relu", activations.LeakyReLU),
        ("Leaky_ReLU", activations.LeakyReLU),
        ("identity", activations.Identity),
        ("linear", activations.Identity),
        ("softmax", activations.Softmax),
    ],
)
def test_get_by_name(name, cls):
    act = activations.get(name)
    assert type(act) is cls


def test_get_returns_instances_unchanged():
    act = activations.LeakyReLU(0.3)
    assert activations.get(act) is act
    assert activations.get(SOFTPLUS) is SOFTPLUS


@pytest.mark.parametrize("name", ["swish", "sigmod", ""])
def test_get_unknown_name_raises_value_error_naming_it(name):
    with pytest.raises(ValueError) as info:
        activations.get(name)
    assert repr(name) in str(info.value)
    assert "sigmoid" in str(info.value)  # lists the valid choices


@pytest.mark.parametrize("bad", [3, None, 1.5, ["relu"], activations.Sigmoid])
def test_get_wrong_type_raises_type_error(bad):
    with pytest.raises(TypeError, match="activation must be a name or an Activation"):
        activations.get(bad)


def test_dense_with_unknown_activation_raises():
    with pytest.raises(ValueError, match="'swishy'"):
        nn.Dense(2, 3, activation="swishy")


# --- custom activations -----------------------------------------------------------------
def test_custom_needs_callables_and_a_known_init():
    with pytest.raises(TypeError, match="two callables"):
        nn.Custom(np.tanh, "not callable")
    with pytest.raises(ValueError, match="unknown init 'xavier'"):
        nn.Custom(np.tanh, lambda z: 1 - np.tanh(z) ** 2, init="xavier")


def test_custom_rejects_wrong_shapes():
    bad = nn.Custom(lambda z: z.sum(axis=1), lambda z: z[:, :1], name="bad")
    z = np.ones((2, 3))
    with pytest.raises(ValueError, match="'bad' returned shape"):
        bad(z)
    with pytest.raises(ValueError, match="derivative of 'bad'"):
        bad.derivative(z, z)


def test_custom_casts_to_input_dtype():
    z = moderate().astype(np.float32)
    a = SOFTPLUS(z)
    assert a.dtype == np.float32
    assert SOFTPLUS.derivative(z, a).dtype == np.float32
    np.testing.assert_allclose(a, NAIVE["softplus"](z.astype(np.float64)), rtol=1e-6)
