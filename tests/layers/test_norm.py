"""BatchNorm1D, BatchNorm2D, LayerNorm: PyTorch equivalence (training steps, running statistics,
inference), finite differences in stacks and blocks, the hand example of docs/normalization.md,
the zero gradient of the bias before a batch norm, errors, state vs optimiser, ONNX export."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import numpynn as nn
from numpynn.layers import build_layers

DOCS = Path(__file__).resolve().parents[2] / "docs" / "normalization.md"


@pytest.fixture
def torch():
    """PyTorch, for the tests that compare with it (the others run without it)."""
    return pytest.importorskip("torch")


def diff(ours, theirs) -> float:
    """max |ours − theirs| relative to max(1, max |theirs|)."""
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    return float(np.abs(np.asarray(ours, np.float64) - theirs).max() / max(1.0, np.abs(theirs).max()))


def alone(layer: nn.Layer, shape: tuple[int, ...], dtype: str = "float64", seed: int = 0) -> nn.Layer:
    """The layer in a network of its own (so it has θ and state), γ and β random, asked for ∂C/∂x."""
    tail = [nn.Flatten()] if len(shape) > 1 else []
    nn.Network([layer, *tail], loss="squared_error", input_shape=shape, dtype=dtype)
    rng = np.random.default_rng(seed)
    layer.params["gamma"][...] = rng.normal(1.0, 0.3, layer.params["gamma"].shape)
    layer.params["beta"][...] = rng.normal(0.0, 0.3, layer.params["beta"].shape)
    layer.needs_input_grad = True
    return layer


TORCH_CASES = {
    "BatchNorm1D": (lambda act: nn.BatchNorm1D(5, momentum=0.2, activation=act),
                    lambda torch: torch.nn.BatchNorm1d(5, momentum=0.2, dtype=torch.float64), (5,), 7),
    "BatchNorm2D": (lambda act: nn.BatchNorm2D(3, activation=act),
                    lambda torch: torch.nn.BatchNorm2d(3, dtype=torch.float64), (3, 4, 5), 2),
    "LayerNorm": (lambda act: nn.LayerNorm(6),
                  lambda torch: torch.nn.LayerNorm(6, dtype=torch.float64), (6,), 4),
}


@pytest.mark.parametrize("kind, act", [("BatchNorm1D", "identity"), ("BatchNorm1D", "tanh"),
                                       ("BatchNorm2D", "identity"), ("BatchNorm2D", "tanh"),
                                       ("LayerNorm", "identity")])
def test_training_steps_running_statistics_and_inference_match_torch(kind, act, torch):
    worst = torch_difference(kind, act, torch)
    assert worst < 1e-10, worst


def torch_difference(kind: str, act: str, torch) -> float:
    """The largest relative difference from PyTorch in float64 over four training steps (outputs,
    ∂C/∂x, ∇γ, ∇β, running statistics after each) and then two inference passes."""
    make, make_torch, shape, B = TORCH_CASES[kind]
    layer, theirs = alone(make(act), shape), make_torch(torch)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(layer.params["gamma"]))
        theirs.bias.copy_(torch.tensor(layer.params["beta"]))
    sigma = torch.tanh if act == "tanh" else (lambda t: t)
    rng = np.random.default_rng(1)
    worst = 0.0
    for mode in ("train", "train", "train", "train", "eval", "eval"):
        x, g = rng.normal(2.0, 3.0, (B, *shape)), rng.normal(size=(B, *shape))
        theirs.train(mode == "train")
        tx = torch.tensor(x, requires_grad=True)
        ty = sigma(theirs(tx))
        ty.backward(torch.tensor(g))
        y = layer.forward(x, training=mode == "train")
        grad_x = layer.backward(g.copy())
        for ours, want in ((y, ty), (grad_x, tx.grad), (layer.grads["gamma"], theirs.weight.grad),
                           (layer.grads["beta"], theirs.bias.grad)):
            assert ours.shape == tuple(want.shape)
            worst = max(worst, diff(ours, want))
        theirs.weight.grad = theirs.bias.grad = None
        if kind != "LayerNorm":  # after each step: the same running statistics
            worst = max(worst, diff(layer.state["running_mean"], theirs.running_mean),
                        diff(layer.state["running_var"], theirs.running_var))
    return worst


@pytest.mark.parametrize("kind", list(TORCH_CASES))
def test_float32_matches_torch(kind, torch):
    make, make_torch, shape, B = TORCH_CASES[kind]
    layer = alone(make("identity"), shape, dtype="float32")
    theirs = make_torch(torch).float()
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(layer.params["gamma"]))
        theirs.bias.copy_(torch.tensor(layer.params["beta"]))
    x = np.random.default_rng(2).normal(1.0, 2.0, (B, *shape)).astype(np.float32)
    g = np.random.default_rng(3).normal(size=x.shape).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    theirs(tx).backward(torch.tensor(g))
    y = layer.forward(x, training=True)
    assert y.dtype == np.float32
    assert diff(layer.backward(g.copy()), tx.grad) < 1e-5
    assert diff(y, theirs(torch.tensor(x))) < 1e-5


def test_batch_norm_2d_on_channels_first_memory_and_one_image_matches_torch(torch):
    """From Reshape (a C-contiguous (B, C, H, W), not a conv's channels-last view) and with B = 1:
    PyTorch's numbers, returned as (B, C, H, W)."""
    layer = alone(nn.BatchNorm2D(2), (2, 3, 3))
    theirs = torch.nn.BatchNorm2d(2, dtype=torch.float64)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(layer.params["gamma"]))
        theirs.bias.copy_(torch.tensor(layer.params["beta"]))
    x = np.random.default_rng(4).normal(size=(1, 2, 3, 3))
    y = layer.forward(x, training=True)
    assert y.shape == (1, 2, 3, 3) and diff(y, theirs(torch.tensor(x))) < 1e-12


# --- finite differences -------------------------------------------------------------------------
@st.composite
def dense_stacks(draw):
    B, F0, F = draw(st.integers(3, 6)), draw(st.integers(1, 4)), draw(st.integers(3, 5))  # F ≥ 3: LayerNorm(2) is ± a sign, too curved for differences
    nested = draw(st.sampled_from(["flat", "residual", "sequential"]))
    norm = [nn.BatchNorm1D(F, momentum=0.3, activation="tanh"), nn.Dense(F, F, "tanh"), nn.LayerNorm(F)]
    if nested == "residual":
        norm = [nn.Residual([nn.Dense(F, F, "identity"), *norm], activation="tanh")]
    elif nested == "sequential":
        norm = [nn.Sequential([nn.Dense(F, F, "identity"), *norm])]
    layers = [nn.Dense(F0, F, "tanh"), *norm, nn.Dense(F, 3, "softmax")]
    return layers, (F0,), B, draw(st.integers(0, 2**16))


@st.composite
def conv_stacks(draw):
    B, C0, C = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 3))
    H, W = draw(st.integers(3, 5)), draw(st.integers(3, 5))
    nested = draw(st.sampled_from(["flat", "residual", "sequential"]))
    block = [nn.Conv2D(C0, C, 3, padding=1, activation="identity"), nn.BatchNorm2D(C, activation="tanh")]
    if nested == "residual":
        block = [nn.Conv2D(C0, C, 1, activation="tanh"),
                 nn.Residual([nn.Conv2D(C, C, 3, padding=1, activation="identity"), nn.BatchNorm2D(C)],
                             activation="tanh")]
    elif nested == "sequential":
        block = [nn.Sequential(block)]
    layers = [*block, nn.Flatten()]
    n = build_layers(list(layers), (C0, H, W))[0]
    layers.append(nn.Dense(n, 3, "softmax"))
    return layers, (C0, H, W), B, draw(st.integers(0, 2**16))


def check(case) -> None:
    layers, shape, B, seed = case
    net = nn.Network(layers, input_shape=shape, seed=seed, dtype="float64")
    rng = np.random.default_rng(seed)
    net.params[...] += rng.normal(0.0, 0.1, net.params.shape)  # γ ≠ 1, β ≠ 0, biases ≠ 0
    x, y = rng.normal(size=(B, *shape)), rng.integers(0, 3, size=B)
    result = nn.gradient_check(net, x, y, max_params=120, seed=seed)
    assert result.ok, str(result)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dense_stacks())
def test_dense_stacks_with_norms_pass_finite_differences(case):
    check(case)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_stacks())
def test_conv_stacks_with_batch_norm_pass_finite_differences(case):
    check(case)


def test_inference_mode_gradients_are_those_of_the_fixed_affine_map():
    """net.gradients(training=False): central differences of the inference cost (running statistics
    fixed, as after training) agree with backprop, and they differ from the training-mode gradients."""
    net = nn.Network([nn.Dense(3, 4, "identity"), nn.BatchNorm1D(4, activation="tanh"), nn.Dense(4, 2, "softmax")],
                     dtype="float64", seed=1)
    rng = np.random.default_rng(1)
    net.state[...] = rng.uniform(0.5, 2.0, net.state.shape)
    x, y = rng.normal(size=(5, 3)), rng.integers(0, 2, size=5)
    net.gradients(x, y, training=False)
    analytic = net.grads.copy()
    numeric = np.empty_like(analytic)
    for i in range(net.params.size):
        keep = net.params[i]
        net.params[i] = keep + 1e-6
        plus = net.gradients(x, y, training=False)[0]
        net.params[i] = keep - 1e-6
        minus = net.gradients(x, y, training=False)[0]
        net.params[i] = keep
        numeric[i] = (plus - minus) / 2e-6
    assert np.abs(numeric - analytic).max() < 1e-8 * max(1.0, np.abs(analytic).max())
    b = net.layers[0].grads["b"]
    assert np.abs(b).max() > 1e-3  # at inference the bias does matter


# --- the hand example of docs/normalization.md --------------------------------------------------
def documented_numbers() -> dict[str, np.ndarray]:
    """The `name = [...]` lines of the example's block in docs/normalization.md, exact fractions."""
    text = DOCS.read_text(encoding="utf-8")
    block = re.search(r"```\n(x {5,}= .*?)```", text, flags=re.S)
    assert block, "the example block of docs/normalization.md is missing"
    numbers = {}
    for line in block.group(1).strip().splitlines():
        name, value = (part.strip() for part in line.split("=", 1))
        literal = re.sub(r"(-?\d+(?:/\d+)?)", r"'\1'", value)  # every number as a string, then exact
        numbers[name] = np.vectorize(lambda s: float(Fraction(s)))(np.array(eval(literal, {})))
    return numbers


def test_the_hand_example_of_the_docs():
    doc = documented_numbers()
    assert set(doc) == {"x", "gamma", "beta", "mean", "var", "xhat", "y", "grad_y", "grad_gamma",
                        "grad_beta", "grad_x", "running_mean", "running_var"}
    bn = nn.BatchNorm1D(2)
    nn.Network([bn], loss="squared_error", dtype="float64")
    bn.params["gamma"][...], bn.params["beta"][...] = doc["gamma"], doc["beta"]
    bn.needs_input_grad = True
    y = bn.forward(doc["x"], training=True).copy()
    grad_x = bn.backward(doc["grad_y"].copy())
    got = {"mean": doc["x"].mean(axis=0), "var": doc["x"].var(axis=0), "xhat": bn.xhat, "y": y,
           "grad_gamma": bn.grads["gamma"], "grad_beta": bn.grads["beta"], "grad_x": grad_x,
           "running_mean": bn.state["running_mean"], "running_var": bn.state["running_var"]}
    for name, value in got.items():  # the doc's values are for ε → 0; with ε = 1e-5 they move < 1e-5
        np.testing.assert_allclose(value, doc[name], rtol=0, atol=1e-5, err_msg=name)
    assert abs(grad_x.sum(axis=0)).max() < 1e-12  # each channel's ∂C/∂x sums to 0


def test_the_code_the_docs_quote_is_the_code():
    """Each line of the doc's backward block, and each `np.…`/`self.…` fragment it quotes, is in norm.py
    or in the NumPy reference of its passes (numpynn/_kernels.py)."""
    text = DOCS.read_text(encoding="utf-8")
    source = "".join(Path(module.__file__).read_text(encoding="utf-8")  # the layer, and its passes' reference
                     for module in (nn.layers.norm, nn._kernels))
    block = re.search(r"```\n(grad_gamma\[.*?)```", text, flags=re.S)
    assert block
    quoted = [line.split("  #")[0].strip() for line in block.group(1).splitlines()]
    quoted += [part.rstrip(", )") for fragment in re.findall(r"`([^`\n]*(?:np\.|self\.)[^`\n]*)`", text)
               for part in fragment.split("...") if part.strip()]
    assert len(quoted) > 15
    for code in quoted:
        assert code in source, code


# --- the bias before a batch norm ---------------------------------------------------------------
@pytest.mark.parametrize("conv", [False, True])
def test_the_bias_right_before_a_batch_norm_gets_no_gradient(conv):
    if conv:
        layers = [nn.Conv2D(2, 3, 3, activation="identity"), nn.BatchNorm2D(3, activation="tanh"),
                  nn.Flatten(), nn.Dense(12, 3, "softmax")]
        shape = (2, 4, 4)
    else:
        layers = [nn.Dense(4, 5, "identity"), nn.BatchNorm1D(5, activation="tanh"), nn.Dense(5, 3, "softmax")]
        shape = (4,)
    net = nn.Network(layers, input_shape=shape, dtype="float64", seed=3)
    rng = np.random.default_rng(3)
    net.layers[0].b = rng.normal(0.0, 1.0, net.layers[0].b.shape)
    x, y = rng.normal(size=(8, *shape)), rng.integers(0, 3, size=8)
    _, grads = net.gradients(x, y)
    (dW, db), (dgamma, dbeta) = grads[0], grads[1]
    assert np.abs(db).max() < 1e-12
    assert min(np.abs(g).max() for g in (dW, dgamma, dbeta)) > 1e-3  # the rest learns
    assert nn.gradient_check(net, x, y).ok


# --- errors ------------------------------------------------------------------------------------
def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("layers, shape", [
    ([nn.Dense(3, 4, "tanh"), nn.BatchNorm1D(4), nn.Dense(4, 2, "softmax")], (3,)),
    ([nn.Conv2D(1, 2, 1, activation="tanh"), nn.BatchNorm2D(2), nn.Flatten(), nn.Dense(2, 2, "softmax")],
     (1, 1, 1)),
])
def test_a_batch_of_one_in_training_is_one_line_that_says_what_to_do(layers, shape):
    net = nn.Network(layers, input_shape=shape)
    x = np.ones((1, *shape), np.float32)
    with pytest.raises(ValueError) as excinfo:
        net.gradients(x, [0])
    message = one_line(excinfo)
    assert "more than 1 value per channel when training" in message and "batches of 2 or more" in message
    assert net.predict(x).shape == (1, 2)  # inference takes a batch of one
    net.gradients(x, [0], training=False)


def test_layer_norm_takes_a_batch_of_one():
    net = nn.Network([nn.Dense(3, 4, "tanh"), nn.LayerNorm(4), nn.Dense(4, 2, "softmax")])
    net.gradients(np.ones((1, 3)), [1])


@pytest.mark.parametrize("layers, shape, words", [
    ([nn.Dense(3, 4), nn.BatchNorm1D(5)], (3,), ["num_features=5", "gets 4 features", "layer 1 (BatchNorm1D)"]),
    ([nn.Dense(3, 4), nn.LayerNorm(6)], (3,), ["num_features=6", "gets 4 features"]),
    ([nn.Conv2D(1, 4, 3), nn.BatchNorm2D(3)], (1, 5, 5), ["num_channels=3", "gets 4 channels"]),
    ([nn.Conv2D(1, 4, 3), nn.BatchNorm1D(4)], (1, 5, 5), ["(4, 3, 3)", "BatchNorm2D"]),
    ([nn.Dense(3, 4), nn.BatchNorm2D(4)], (3,), ["(4,)", "BatchNorm1D"]),
    ([nn.Conv2D(1, 4, 3), nn.LayerNorm(4)], (1, 5, 5), ["(4, 3, 3)", "Flatten"]),
])
def test_a_shape_mismatch_is_one_line_naming_both(layers, shape, words):
    with pytest.raises(ValueError) as excinfo:
        nn.Network([*layers, nn.Flatten(), nn.Dense(2, 2)], input_shape=shape)
    message = one_line(excinfo)
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("make, words", [
    (lambda: nn.BatchNorm1D(0), "num_features"),
    (lambda: nn.BatchNorm2D(2.5), "num_channels"),
    (lambda: nn.BatchNorm1D(3, momentum=1.5), "momentum"),
    (lambda: nn.BatchNorm2D(3, eps=0), "eps"),
    (lambda: nn.LayerNorm(3, eps=-1.0), "eps"),
    (lambda: nn.BatchNorm1D(3, activation="softmax"), "softmax"),
])
def test_bad_arguments_are_one_line(make, words):
    with pytest.raises(ValueError) as excinfo:
        make()
    assert words in one_line(excinfo)


# --- state, optimiser, predict, config ----------------------------------------------------------
def test_state_is_untouched_by_the_optimiser_and_is_what_predict_uses():
    net = nn.Network([nn.Dense(4, 5, "identity"), nn.BatchNorm1D(5, activation="relu"), nn.Dense(5, 3, "softmax")],
                     dtype="float64", seed=2)
    bn = net.layers[1]
    assert net.state.size == 10 and np.shares_memory(bn.state["running_var"], net.state)
    np.testing.assert_array_equal(net.state, [0] * 5 + [1] * 5)
    rng = np.random.default_rng(2)
    x, y = rng.normal(3.0, 2.0, (16, 4)), rng.integers(0, 3, size=16)
    net.gradients(x, y)  # a training pass: the running statistics move
    state, params = net.state.copy(), net.params.copy()
    assert not np.array_equal(state[:5], 0)
    optimizer = nn.optimizers.get("adam", lr=0.1)
    optimizer.step(net.params, net.grads)
    assert not np.array_equal(net.params, params)
    np.testing.assert_array_equal(net.state, state)  # the optimiser never touches state
    # predict: the fixed map with the running statistics, and it leaves them alone
    h = x @ net.layers[0].W + net.layers[0].b
    xhat = (h - bn.state["running_mean"]) / np.sqrt(bn.state["running_var"] + 1e-5)
    a = np.maximum(bn.params["gamma"] * xhat + bn.params["beta"], 0)
    z = a @ net.layers[2].W + net.layers[2].b
    want = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(net.predict(x), want / want.sum(axis=1, keepdims=True), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(net.state, state)
    net.evaluate(x, y)
    np.testing.assert_array_equal(net.state, state)
    # and training with fit moves them again, while a copy keeps them
    before = net.predict(x)
    assert np.array_equal(net.copy().predict(x), before)
    net.fit(x, y, epochs=1, batch_size=8, progress=False)
    assert not np.array_equal(net.state, state)


def test_config_rebuilds_the_same_layer_and_a_saved_model_keeps_its_state(tmp_path):
    for layer in (nn.BatchNorm1D(3, momentum=0.05, eps=1e-3, activation="tanh"), nn.BatchNorm2D(2),
                  nn.LayerNorm(4, eps=1e-6)):
        again = type(layer).from_config(layer.config())
        assert repr(again) == repr(layer) and again.config().keys() == layer.config().keys()
    assert repr(nn.BatchNorm1D(3, momentum=0.05, eps=1e-3, activation="tanh")) == (
        "BatchNorm1D(3, momentum=0.05, eps=0.001, activation='tanh')")
    net = nn.Network([nn.Dense(3, 4, "identity"), nn.BatchNorm1D(4), nn.LayerNorm(4), nn.Dense(4, 2, "softmax")])
    x = np.random.default_rng(0).normal(size=(10, 3))
    net.gradients(x, np.arange(10) % 2)
    net.save(str(tmp_path / "bn.safetensors"))
    loaded = nn.load(str(tmp_path / "bn.safetensors"))
    np.testing.assert_array_equal(loaded.state, net.state)
    np.testing.assert_array_equal(loaded.predict(x), net.predict(x))


# --- ONNX ---------------------------------------------------------------------------------------
def onnx_nets():
    yield nn.Network([nn.Dense(6, 8, "identity"), nn.BatchNorm1D(8, activation="relu"),
                      nn.Dense(8, 3, "softmax")], seed=1)
    yield nn.Network([nn.Reshape((2, 5, 5)), nn.Conv2D(2, 4, 3, activation="identity"),
                      nn.BatchNorm2D(4, eps=1e-3, activation="tanh"), nn.Flatten(), nn.Dense(36, 3, "softmax")],
                     input_shape=(50,), seed=2)
    yield nn.Network([nn.Dense(6, 8, "tanh"), nn.LayerNorm(8, eps=1e-4), nn.Dense(8, 3, "softmax")], seed=3)


@pytest.mark.parametrize("index", range(3))
def test_onnx_runtime_agrees_with_predict(index, tmp_path):
    onnx, ort = pytest.importorskip("onnx"), pytest.importorskip("onnxruntime")
    net = list(onnx_nets())[index]
    rng = np.random.default_rng(index)
    net.params[...] += rng.normal(0.0, 0.3, net.params.shape).astype(net.dtype)
    for _ in range(3):  # running statistics away from 0 and 1
        net.forward(rng.normal(1.0, 2.0, (16, *net.input_shape)).astype(np.float32), training=True)
    path = tmp_path / "norm.onnx"
    net.to_onnx(str(path))
    model = onnx.load(str(path))
    ops = [node.op_type for node in model.graph.node]
    assert ("LayerNormalization" if index == 2 else "BatchNormalization") in ops
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = rng.normal(1.0, 2.0, (50, *net.input_shape)).astype(np.float32)
    (got,) = session.run(["output"], {"input": x})
    assert np.abs(got - net.predict(x)).max() < 1e-5
