"""numpynn against PyTorch: same weights, same data -> same loss, outputs, gradients,
optimiser steps and training epoch.

Relative error throughout: max|a − b| / max(max|b|, tiny), b being PyTorch's value.
"""

from __future__ import annotations

import numpy as np
import pytest

import numpynn as nn

try:  # only the tests that compare with PyTorch need it: each of them skips without it
    import torch
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="needs PyTorch: pip install torch")

TOL_GRAD = {"float64": 1e-10, "float32": 1e-4}
TOL_OPT = {"float64": 1e-10, "float32": 1e-5}

TORCH_ACT = {
    "sigmoid": lambda z: torch.sigmoid(z),
    "tanh": lambda z: torch.tanh(z),
    "relu": lambda z: torch.relu(z),
    "leaky_relu": lambda z: torch.nn.functional.leaky_relu(z, 0.01),
    "identity": lambda z: z,
    "softmax": lambda z: torch.softmax(z, dim=1),
}


def rel_error(a, b) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), np.finfo(np.float64).tiny))


# (name, widths, activations, loss, targets)
CASES = [
    ("sigmoid-softmax-ce-labels", [6, 8, 4], ["sigmoid", "softmax"], "cross_entropy", "labels"),
    ("sigmoid-softmax-ce-onehot", [6, 8, 4], ["sigmoid", "softmax"], "cross_entropy", "onehot"),
    ("tanh-relu-softmax-ce", [5, 9, 7, 3], ["tanh", "relu", "softmax"], "cross_entropy", "labels"),
    ("relu-softmax-ce-soft", [5, 7, 3], ["relu", "softmax"], "cross_entropy", "soft"),
    ("tanh-sigmoid-bce-rows", [4, 6, 3], ["tanh", "sigmoid"], "cross_entropy", "unit"),
    ("relu-sigmoid-bce-1", [4, 6, 1], ["relu", "sigmoid"], "cross_entropy", "labels"),
    ("tanh-softmax-se-labels", [6, 5, 4], ["tanh", "softmax"], "squared_error", "labels"),
    ("sigmoid-softmax-se-onehot", [6, 5, 4], ["sigmoid", "softmax"], "squared_error", "onehot"),
    ("leaky-identity-se", [3, 8, 2], ["leaky_relu", "identity"], "squared_error", "normal"),
    ("relu-tanh-sigmoid-se", [4, 7, 6, 3], ["relu", "tanh", "sigmoid"], "squared_error", "unit"),
    ("deep-sigmoid-ce", [8, 6, 6, 6, 5], ["sigmoid", "sigmoid", "tanh", "softmax"], "cross_entropy",
     "labels"),
]
IDS = [c[0] for c in CASES]
BATCH = 9


def make_case(widths, acts, loss, targets, dtype, seed=0):
    """A network with random non-zero biases, inputs x, targets y (for numpynn) and
    the same targets as float rows (for torch)."""
    rng = np.random.default_rng(seed)
    net = nn.Network([nn.Dense(widths[i], widths[i + 1], a) for i, a in enumerate(acts)],
                     loss=loss, seed=seed, dtype=dtype)
    for layer in net.layers:
        layer.b = rng.normal(0.0, 0.5, size=layer.n_out)
    x = rng.normal(size=(BATCH, widths[0])).astype(dtype)
    k = widths[-1]
    if targets == "labels":
        y = rng.integers(0, max(k, 2), size=BATCH)
        rows = np.eye(k)[y] if k > 1 else y.reshape(-1, 1).astype(np.float64)
    elif targets == "onehot":
        y = rows = np.eye(k)[rng.integers(0, k, size=BATCH)]
    elif targets == "soft":
        y = rows = rng.dirichlet(np.ones(k), size=BATCH)
    elif targets == "unit":
        y = rows = rng.uniform(size=(BATCH, k))
    else:
        y = rows = rng.normal(size=(BATCH, k))
    return net, x, y, rows.astype(dtype)


def torch_reference(net, x, rows):
    """Loss, output and [(dW, db)] computed by autograd: z = x @ W + b, a = σ(z)."""
    dt = getattr(torch, net.dtype.name)
    Ws = [torch.tensor(np.array(layer.W), dtype=dt, requires_grad=True) for layer in net.layers]
    bs = [torch.tensor(np.array(layer.b), dtype=dt, requires_grad=True) for layer in net.layers]
    a = torch.tensor(x, dtype=dt)
    y = torch.tensor(rows, dtype=dt)
    for layer, W, b in zip(net.layers, Ws, bs, strict=True):
        z = a @ W + b
        a = TORCH_ACT[layer.activation.name](z)
    n = x.shape[0]
    out = net.layers[-1].activation.name
    if net.loss.name == "squared_error":
        loss = 0.5 * ((y - a) ** 2).sum() / n
    elif out == "softmax":
        loss = -(y * torch.log_softmax(z, dim=1)).sum() / n
    else:  # binary cross-entropy on a sigmoid output
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="sum") / n
    loss.backward()
    grads = [(W.grad.numpy(), b.grad.numpy()) for W, b in zip(Ws, bs, strict=True)]
    return loss.item(), a.detach().numpy(), grads


def compare(case, dtype):
    """Relative errors (loss, output, worst gradient) of numpynn against torch."""
    _, widths, acts, loss, targets = case
    net, x, y, rows = make_case(widths, acts, loss, targets, dtype)
    t_loss, t_out, t_grads = torch_reference(net, x, rows)
    n_loss, n_grads = net.gradients(x, y)
    n_out = net.predict(x)
    grad_err = max(max(rel_error(dW, tW), rel_error(db, tb))
                   for (dW, db), (tW, tb) in zip(n_grads, t_grads, strict=True))
    for (dW, db), layer in zip(n_grads, net.layers, strict=True):
        assert dW.shape == layer.W.shape and db.shape == layer.b.shape
        assert dW.dtype == net.dtype
    return rel_error(n_loss, t_loss), rel_error(n_out, t_out), grad_err


@needs_torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_loss_outputs_and_gradients_match_torch(case, dtype, kernel_backend):
    loss_err, out_err, grad_err = compare(case, dtype)
    tol = TOL_GRAD[dtype]
    assert loss_err < tol, f"loss: {loss_err:.2e}"
    assert out_err < tol, f"outputs: {out_err:.2e}"
    assert grad_err < tol, f"gradients: {grad_err:.2e}"


def test_labels_and_one_hot_rows_give_identical_gradients():
    _, widths, acts, loss, _ = CASES[0]
    net, x, labels, rows = make_case(widths, acts, loss, "labels", "float64")
    loss_a, grads_a = net.gradients(x, labels)
    loss_b, grads_b = net.gradients(x, rows)
    assert loss_a == loss_b
    for (dW, db), (dW2, db2) in zip(grads_a, grads_b, strict=True):
        np.testing.assert_array_equal(dW, dW2)
        np.testing.assert_array_equal(db, db2)
@needs_torch
def test_summary_largest_gradient_error():
    """The largest relative gradient error against torch over every case, reported."""
    worst = {}
    for dtype in ("float64", "float32"):
        errors = {case[0]: compare(case, dtype)[2] for case in CASES}
        name = max(errors, key=errors.get)
        worst[dtype] = (errors[name], name)
    line = ("largest relative gradient error vs torch: "
            f"float64 {worst['float64'][0]:.3e} ({worst['float64'][1]}), "
            f"float32 {worst['float32'][0]:.3e} ({worst['float32'][1]})")
    print("\n" + line)
    assert worst["float64"][0] < 1e-10, line
    assert worst["float32"][0] < 1e-4, line


# --- optimisers ------------------------------------------------------------------------------
OPTIMIZERS = [
    ("sgd", dict(lr=0.1), dict(lr=0.1)),
    ("sgd-momentum", dict(lr=0.05, momentum=0.9), dict(lr=0.05, momentum=0.9)),
    ("sgd-nesterov", dict(lr=0.05, momentum=0.8, nesterov=True),
     dict(lr=0.05, momentum=0.8, nesterov=True)),
    ("sgd-weight-decay", dict(lr=0.1, weight_decay=0.05), dict(lr=0.1, weight_decay=0.05)),
    ("sgd-momentum-weight-decay", dict(lr=0.05, momentum=0.9, weight_decay=0.01),
     dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    ("sgd-dampening", dict(lr=0.05, momentum=0.9, dampening=0.3),
     dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("sgd-nesterov-weight-decay", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.02),
     dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.02)),
    ("adam", dict(), dict()),
    ("adam-custom", dict(lr=0.02, betas=(0.8, 0.95), eps=1e-6),
     dict(lr=0.02, betas=(0.8, 0.95), eps=1e-6)),
    ("adam-weight-decay", dict(lr=0.01, weight_decay=0.1), dict(lr=0.01, weight_decay=0.1)),
    ("adamw", dict(lr=0.01, weight_decay=0.1, decoupled=True), dict(lr=0.01, weight_decay=0.1)),
]


def torch_optimizer(name, params, kwargs):
    if name == "adamw":
        return torch.optim.AdamW(params, **kwargs)
    if name.startswith("adam"):
        return torch.optim.Adam(params, **kwargs)
    return torch.optim.SGD(params, **kwargs)


@needs_torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name, ours, theirs", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_optimizer_steps_match_torch(name, ours, theirs, dtype, kernel_backend):
    rng = np.random.default_rng(42)
    n = 257
    theta = rng.normal(size=n).astype(dtype)
    theta0 = theta.copy()
    grads = [rng.normal(size=n).astype(dtype) for _ in range(5)]
    grads[2][:10] = 0  # a few zero gradients: Adam's ε path
    opt = (nn.Adam if name.startswith("adam") else nn.SGD)(**ours)
    p = torch.tensor(theta.copy(), requires_grad=True)
    topt = torch_optimizer(name, [p], theirs)
    worst = 0.0
    for g in grads:
        opt.step(theta, g.copy())
        p.grad = torch.tensor(g.copy())
        topt.step()
        worst = max(worst, rel_error(theta, p.detach().numpy()))
    assert theta.dtype == np.dtype(dtype)
    assert opt.t == 5
    assert worst < TOL_OPT[dtype], f"{name} {dtype}: relative error {worst:.2e}"
    assert rel_error(theta, theta0) > 1e-4  # the parameters really moved


# --- one epoch of training ------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("optimizer", ["sgd-momentum", "adam"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_one_training_epoch_matches_torch(optimizer, dtype, kernel_backend):
    rng = np.random.default_rng(3)
    n, batch = 100, 16  # the last batch has 4 rows
    net = nn.Network([nn.Dense(5, 8, "tanh"), nn.Dense(8, 6, "relu"), nn.Dense(6, 3, "softmax")],
                     loss="cross_entropy", seed=1, dtype=dtype)
    for layer in net.layers:
        layer.b = rng.normal(0.0, 0.3, size=layer.n_out)
    x = rng.normal(size=(n, 5)).astype(dtype)
    labels = rng.integers(0, 3, size=n)
    dt = getattr(torch, dtype)
    params = []
    for layer in net.layers:
        params += [torch.tensor(np.array(layer.W), dtype=dt, requires_grad=True),
                   torch.tensor(np.array(layer.b), dtype=dt, requires_grad=True)]
    if optimizer == "adam":
        ours, theirs = nn.Adam(lr=0.01), torch.optim.Adam(params, lr=0.01)
    else:
        ours = nn.SGD(lr=0.1, momentum=0.9)
        theirs = torch.optim.SGD(params, lr=0.1, momentum=0.9)

    history = net.fit(x, labels, epochs=1, batch_size=batch, optimizer=ours, progress=False,
                      shuffle=False)

    xt = torch.tensor(x, dtype=dt)
    yt = torch.tensor(np.eye(3)[labels], dtype=dt)
    losses = []
    for start in range(0, n, batch):
        a = xt[start:start + batch]
        for i, act in enumerate(["tanh", "relu"]):
            a = TORCH_ACT[act](a @ params[2 * i] + params[2 * i + 1])
        z = a @ params[4] + params[5]
        loss = -(yt[start:start + batch] * torch.log_softmax(z, dim=1)).sum() / z.shape[0]
        theirs.zero_grad()
        loss.backward()
        theirs.step()
        losses.append(loss.item() * z.shape[0])

    tol = 1e-9 if dtype == "float64" else 1e-4
    for i, layer in enumerate(net.layers):
        err_W = rel_error(layer.W, params[2 * i].detach().numpy())
        err_b = rel_error(layer.b, params[2 * i + 1].detach().numpy())
        assert max(err_W, err_b) < tol, f"layer {i}: W {err_W:.2e}, b {err_b:.2e}"
    assert history["loss"][0] == pytest.approx(sum(losses) / n, rel=tol)
    assert ours.t == 7
