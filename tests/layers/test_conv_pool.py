"""Conv2D, MaxPool2D, AvgPool2D: finite differences over shapes, PyTorch equivalence of
outputs and every gradient, bad shapes, and the digit convnet end to end."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numpynn as nn
from numpynn.layers import build_layers


@pytest.fixture
def torch():
    """PyTorch, for the tests that compare with it (the others run without it)."""
    return pytest.importorskip("torch")

TOL = {"float64": 1e-10, "float32": 1e-5}


def rel(ours, theirs, scale: float | None = None) -> float:
    """max |ours − theirs| relative to ``scale`` (default: max |theirs|)."""
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    scale = np.abs(theirs).max() if scale is None else scale
    return float(np.abs(np.asarray(ours, np.float64) - theirs).max() / max(scale, 1e-30))


@st.composite
def conv_cases(draw):
    C = draw(st.integers(1, 4))
    O = draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    H = draw(st.integers(max(1, kh - 2 * ph), 9))
    W = draw(st.integers(max(1, kw - 2 * pw), 9))
    B = draw(st.integers(1, 5))
    act = draw(st.sampled_from(["tanh", "sigmoid", "identity"]))
    pool = draw(st.sampled_from([None, "max", "avg"]))
    seed = draw(st.integers(0, 2**16))
    return C, O, (kh, kw), (sh, sw), (ph, pw), H, W, B, act, pool, seed


def small_net(case, dtype="float64"):
    """Conv2D (and a pool) between a 1x1 Conv2D and a softmax Dense: the layer before the
    convolution has parameters, so their gradient carries the convolution's ∂C/∂x."""
    C, O, k, s, p, H, W, B, act, pool, seed = case
    C0 = 1 + seed % 3
    layers: list[nn.Layer] = [nn.Conv2D(C0, C, 1, activation="tanh"), nn.Conv2D(C, O, k, s, p, act)]
    Ho = (H + 2 * p[0] - k[0]) // s[0] + 1
    Wo = (W + 2 * p[1] - k[1]) // s[1] + 1
    if pool and Ho >= 2 and Wo >= 2:
        layers.append((nn.MaxPool2D if pool == "max" else nn.AvgPool2D)(2, 1))
    layers += [nn.Flatten()]
    shape = build_layers(list(layers), (C0, H, W))
    layers.append(nn.Dense(shape[0], 3, "softmax"))
    net = nn.Network(layers, input_shape=(C0, H, W), seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed)
    net.layers[0].b = rng.normal(0, 0.5, size=C)
    net.layers[1].b = rng.normal(0, 0.5, size=O)
    x = rng.normal(size=(B, C0, H, W))
    y = rng.integers(0, 3, size=B)
    return net, x, y


def first_layer_error(net, x, y, eps=1e-6) -> float:
    """The largest relative error of backprop against central differences over every parameter
    of the first layer (as nn.gradient_check measures it, floor included): the parameters
    whose gradient reaches them only through the next layer's ∂C/∂x."""
    cost, grads = net.gradients(x, y)
    analytic = np.concatenate([g.ravel() for layer in grads for g in layer])
    rounding = np.finfo(np.float64).eps * abs(cost) / eps  # the central difference's own
    floor = max(1e-4 * float(np.abs(analytic).max()), 1e6 * rounding, 1e-12)
    theta = net.params
    worst = 0.0
    for i in range(sum(g.size for g in grads[0])):
        original = theta[i]
        theta[i] = original + eps
        c_plus = net.gradients(x, y)[0]
        theta[i] = original - eps
        c_minus = net.gradients(x, y)[0]
        theta[i] = original
        numeric = (c_plus - c_minus) / (2 * eps)
        worst = max(worst, abs(numeric - analytic[i]) / max(abs(numeric) + abs(analytic[i]), floor))
    return worst


@settings(max_examples=60, deadline=None)
@given(conv_cases())
def test_conv_and_pool_pass_finite_differences(case):
    net, x, y = small_net(case)
    # a tie inside a max-pool window (or a kink) would make the central difference meaningless;
    # random normal inputs make exact ties vanishingly rare
    result = nn.gradient_check(net, x, y, max_params=300, seed=case[-1])
    assert result.ok, f"{net!r}: {result}"
    # the 1x1 convolution's parameters, all of them: the checked subset may hold none
    assert first_layer_error(net, x, y) < 1e-5, repr(net)


@settings(max_examples=40, deadline=None)
@given(conv_cases(), st.sampled_from(["float64", "float32"]))
def test_conv_and_pool_match_torch(case, dtype):
    torch = pytest.importorskip("torch")
    C, O, k, s, p, H, W, B, act, pool, seed = case
    rng = np.random.default_rng(seed)
    conv = nn.Conv2D(C, O, k, s, p, act)
    layers: list[nn.Layer] = [conv]
    out = build_layers([nn.Conv2D(C, O, k, s, p, act)], (C, H, W))
    use_pool = pool is not None and out[1] >= 2 and out[2] >= 2
    if use_pool:
        layers.append(nn.MaxPool2D(2, 1) if pool == "max" else nn.AvgPool2D((2, 1), 1))
    shape = build_layers(list(layers), (C, H, W))
    net = nn.Network([*layers, nn.Flatten(), nn.Dense(int(np.prod(shape)), 2, "identity")],
                     loss="squared_error", input_shape=(C, H, W), seed=seed, dtype=dtype)
    # weights of the size training gives them (z about N(0, 1)): with unscaled ones tanh saturates,
    # where σ' = 1 − a² cancels to a few float32 ulps and the comparison measures rounding, not code
    conv.W = rng.normal(size=conv.W.shape) / np.sqrt(C * k[0] * k[1])
    conv.b = rng.normal(size=conv.b.shape) * 0.5
    x = rng.normal(size=(B, C, H, W)).astype(dtype)
    # the network holds the parameters; the conv (and pool) part is run alone on a random ∂C/∂y
    g_out = rng.normal(size=(B, int(np.prod(shape)))).astype(dtype)
    assert net.layers[0] is conv
    feats = x
    for layer in layers:
        feats = layer.forward(feats)
    for layer in layers:
        layer.needs_input_grad = True
    g = g_out.reshape(B, *shape).copy()
    for layer in reversed(layers):
        g = layer.backward(g)
    tdtype = torch.float64 if dtype == "float64" else torch.float32
    xt = torch.tensor(x, dtype=tdtype, requires_grad=True)
    Wt = torch.tensor(conv.W, requires_grad=True)
    bt = torch.tensor(conv.b, requires_grad=True)
    acts = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "identity": lambda z: z}
    yt = acts[act](torch.nn.functional.conv2d(xt, Wt, bt, stride=s, padding=p))
    if use_pool:
        yt = torch.nn.functional.max_pool2d(yt, 2, 1) if pool == "max" else torch.nn.functional.avg_pool2d(yt, (2, 1), 1)
    yt.backward(torch.tensor(g_out.reshape(yt.shape)))
    tol = TOL[dtype]
    assert rel(feats, yt) < tol
    assert rel(g, xt.grad) < tol
    # ∇b is a sum over every output position and can cancel to far below its terms (a few
    # float32 roundings then loom large): both parameter gradients are measured against the
    # layer's largest one
    scale = max(float(Wt.grad.abs().max()), float(bt.grad.abs().max()))
    assert rel(conv.dW, Wt.grad, scale) < tol
    assert rel(conv.db, bt.grad, scale) < tol


def test_max_pool_sends_the_gradient_to_the_first_of_tied_maxima_as_torch_does(torch):
    pool = nn.MaxPool2D(2)
    build_layers([pool], (1, 2, 4))
    pool.needs_input_grad = True
    x = np.array([[[[1.0, 3.0, 2.0, 2.0], [3.0, 0.0, 2.0, 2.0]]]])
    y = pool.forward(x)
    np.testing.assert_array_equal(y, [[[[3.0, 2.0]]]])
    dx = pool.backward(np.array([[[[10.0, 20.0]]]]))
    xt = torch.tensor(x, requires_grad=True)
    torch.nn.functional.max_pool2d(xt, 2).backward(torch.tensor([[[[10.0, 20.0]]]], dtype=torch.float64))
    np.testing.assert_array_equal(dx, xt.grad.numpy())
    np.testing.assert_array_equal(dx, [[[[0.0, 10.0, 20.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]])


def test_overlapping_and_uneven_windows_add_up_like_torch(torch):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 3, 7, 6))
    for k, s in ((3, 1), (3, 2), (2, 3), ((3, 2), (1, 2))):
        pool = nn.MaxPool2D(k, s)
        build_layers([pool], (3, 7, 6))
        pool.needs_input_grad = True
        g = rng.normal(size=(2, *pool.output_shape))
        y = pool.forward(x)
        dx = pool.backward(g.copy())
        xt = torch.tensor(x, requires_grad=True)
        yt = torch.nn.functional.max_pool2d(xt, k, s)
        yt.backward(torch.tensor(g))
        assert rel(y, yt) < 1e-12 and rel(dx, xt.grad) < 1e-12, (k, s)


@pytest.mark.parametrize("make, match", [
    (lambda: nn.Network([nn.Conv2D(1, 4, 7), nn.Flatten()], input_shape=(1, 5, 5)), r"layer 0 \(Conv2D\).*7x7 kernel is larger"),
    (lambda: nn.Network([nn.Conv2D(3, 4, 3), nn.Flatten()], input_shape=(1, 5, 5)), r"layer 0 \(Conv2D\).*3 input channels but gets 1"),
    (lambda: nn.Network([nn.Reshape((1, 4, 4)), nn.Conv2D(1, 2, 3), nn.MaxPool2D(3), nn.Flatten()], input_shape=(16,)),
     r"layer 2 \(MaxPool2D\).*3x3 window does not fit the 2x2 input"),
    (lambda: nn.Network([nn.Conv2D(1, 2, 3), nn.Flatten()], input_shape=(25,)), r"layer 0 \(Conv2D\).*Reshape"),
    (lambda: nn.Conv2D(1, 2, 0), "kernel_size"),
    (lambda: nn.Conv2D(1, 2, 3, stride=(1, 0)), "stride"),
    (lambda: nn.Conv2D(1, 2, 3, padding=-1), "padding"),
    (lambda: nn.Conv2D(1, 2, 3, activation="softmax"), "softmax"),
    (lambda: nn.Conv2D(0, 2, 3), "in_channels"),
])
def test_bad_shapes_fail_at_construction_naming_the_layer(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_weights_are_in_torch_layout_and_a_model_file_loads_into_torch(tmp_path, torch):
    from safetensors.torch import load_file

    net = nn.models.convnet(seed=1)
    conv = net.layers[1]
    assert conv.W.shape == (16, 1, 5, 5) and conv.b.shape == (16,)
    path = tmp_path / "cnn.safetensors"
    net.save(path)
    t = load_file(str(path))
    tconv = torch.nn.Conv2d(1, 16, 5)
    tconv.weight.data, tconv.bias.data = t["layers.1.W"], t["layers.1.b"]
    x = np.random.default_rng(0).random((3, 784)).astype(np.float32)
    ours = conv.forward(x.reshape(3, 1, 28, 28))
    theirs = torch.relu(tconv(torch.tensor(x).reshape(3, 1, 28, 28)))
    assert rel(ours, theirs) < 1e-5
    back = nn.load(path)
    np.testing.assert_array_equal(back.predict(x), net.predict(x))
