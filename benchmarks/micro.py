"""Micro-benchmarks of one training step's pieces: 784-128-64-10, batch 64, float32.

Not part of the test suite (pytest's ``testpaths`` is ``tests/`` and this file's
name does not match ``test_*.py``, so only naming it runs it):

    pytest benchmarks/micro.py --benchmark-only
    pytest benchmarks/micro.py --benchmark-only --benchmark-group-by=func -k "adam or backward"

Everything runs with one BLAS thread, as ``Network.fit`` does (numpynn's own threads run the
shards of a batch; at batch 64 a dense layer is one shard, so these are one thread's work).
Benchmarks marked ``[numpy]`` / ``[c]`` run with that kernel backend
(``numpynn._kernels.use``). ``test_train_step`` is one whole step of ``fit``;
``test_gemm_floor`` is its 8 matrix products alone, for comparison.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytest_benchmark")

import numpynn as nn  # noqa: E402
from numpynn import _kernels, datasets  # noqa: E402
from numpynn.metrics import count_correct  # noqa: E402

B = 64
BACKENDS = _kernels.available()


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(params=BACKENDS)
def kernels(request):
    _kernels.use(request.param)
    yield request.param
    _kernels.use("auto")


class Setup:
    """A network, one batch of MNIST-sample digits (uint8 and scaled) and its targets."""

    def __init__(self) -> None:
        data = datasets.load("mnist-sample")
        self.x = data.x_train  # (8000, 784) uint8
        self.net = nn.Network(
            [nn.Dense(784, 128, "sigmoid"), nn.Dense(128, 64, "sigmoid"),
             nn.Dense(64, 10, "softmax")],
            loss="cross_entropy", seed=0,
        )
        self.t = self.net.targets(data.y_train)  # one-hot rows (8000, 10)
        rng = np.random.default_rng(0)
        self.idx = rng.permutation(self.x.shape[0])[:B]
        self.xbuf = np.empty((B, 784), np.uint8)
        self.fbuf = np.empty((B, 784), np.float32)
        self.ybuf = np.empty((B, 10), np.float32)
        self.xb = np.multiply(self.x[self.idx], np.float32(1 / 255), dtype=np.float32)
        self.yb = self.t[self.idx]
        self.net.forward(self.xb)  # fill every layer's z and a
        self.net.backward(self.yb)
        self.g0 = self.net.grads.copy()


@pytest.fixture(scope="module")
def s() -> Setup:
    return Setup()


def test_gather_scale(benchmark, s, kernels):
    """Batch gather from the uint8 set and scale by 1/255, as fit does (per block)."""
    benchmark(_kernels.gather_scale, s.x, s.idx, 1 / 255, s.fbuf)


def test_shift_scale(benchmark, s, kernels):
    """The ±1 px random shifts of a gathered uint8 batch, moved as they are scaled."""
    shift = nn.augment.random_shift(1)
    xb = s.x[s.idx]
    rng = np.random.default_rng(0)
    benchmark(shift.scaled, xb, 1 / 255, s.fbuf, rng)


def test_gather_targets(benchmark, s):
    benchmark(lambda: np.take(s.t, s.idx, axis=0, out=s.ybuf))


def test_forward(benchmark, s):
    benchmark(s.net.forward, s.xb)


def test_sigmoid_forward(benchmark, s, kernels):
    z = s.net.layers[0].z.copy()
    out = np.empty_like(z)
    benchmark(_kernels.sigmoid, z, out)


def test_softmax_forward(benchmark, s, kernels):
    out = s.net.layers[-1]
    z = out.z.copy()
    a = np.empty_like(z)
    benchmark(out.activation.forward, z, a)


def test_loss_value(benchmark, s):
    s.net.forward(s.xb)
    benchmark(s.net._batch_loss, s.yb)


def test_count_correct(benchmark, s):
    """fit's running training accuracy: two argmaxes per step."""
    s.net.forward(s.xb)
    benchmark(count_correct, s.net.layers[-1].a, s.yb)


def test_output_delta(benchmark, s):
    out = s.net.layers[-1]
    benchmark(s.net.loss.output_delta, out.z, out.a, s.yb, out.activation)


def test_sigmoid_delta(benchmark, s, kernels):
    """δ = g ⊙ a ⊙ (1 − a) on the first layer's activations, with fresh gradients every
    call: the kernel overwrites g, and called again on its own output g would shrink
    4x or more a call (a(1 − a) <= 1/4), through subnormals after about 60 calls to
    zeros after about 80: values that training never sees."""
    a = s.net.layers[0].a
    g0 = np.random.default_rng(1).normal(0.0, 0.01, a.shape).astype(a.dtype)
    g = np.empty_like(g0)

    def restore():
        np.copyto(g, g0)
        return (g, a), {}

    benchmark.pedantic(_kernels.sigmoid_delta, setup=restore, rounds=3000, warmup_rounds=50)
    # the timed calls saw realistic values: the last one's result is one step from g0
    np.testing.assert_allclose(g, g0 * a * (1 - a), rtol=1e-6)


def test_backward(benchmark, s, kernels):
    s.net.forward(s.xb)
    benchmark(s.net.backward, s.yb)


def _optimizer_step(benchmark, s, opt):
    params = s.net.params.copy()
    grads = s.g0.copy()
    opt.step(params, grads)  # allocate the state

    def restore():  # the step may overwrite the gradients; time the step alone
        np.copyto(grads, s.g0)
        return (params, grads), {}

    benchmark.pedantic(opt.step, setup=restore, rounds=3000, warmup_rounds=50)


def test_adam_step(benchmark, s, kernels):
    _optimizer_step(benchmark, s, nn.Adam(lr=1e-3))


def test_sgd_momentum_step(benchmark, s):
    _optimizer_step(benchmark, s, nn.SGD(lr=0.1, momentum=0.9))


def test_gemm_floor(benchmark, s):
    """The 8 matrix products of a step alone (3 forward, 5 backward)."""
    rng = np.random.default_rng(0)
    W = [l.W for l in s.net.layers]
    dW = [np.empty_like(w) for w in W]
    a1, a2, a3 = (np.empty((B, n), np.float32) for n in (128, 64, 10))
    d1, d2, d3 = (rng.standard_normal((B, n)).astype(np.float32) for n in (128, 64, 10))
    x, mm = s.xb, np.matmul

    def step():
        mm(x, W[0], out=a1)
        mm(a1, W[1], out=a2)
        mm(a2, W[2], out=a3)
        mm(a2.T, d3, out=dW[2])
        mm(d3, W[2].T, out=d2)
        mm(a1.T, d2, out=dW[1])
        mm(d2, W[1].T, out=d1)
        mm(x.T, d1, out=dW[0])

    benchmark(step)


def test_train_step(benchmark, s, kernels):
    """One whole step of Network.fit: gather and scale, forward, keep the outputs, backward,
    Adam, and the loss and accuracy (fit takes those once per block of batches; here, per step)."""
    net, opt = s.net.copy(), nn.Adam(lr=1e-3)
    z, a = np.empty((B, 10), np.float32), np.empty((B, 10), np.float32)

    def step():
        xb = _kernels.gather_scale(s.x, s.idx, 1 / 255, s.fbuf)
        yb = np.take(s.t, s.idx, axis=0, out=s.ybuf)
        net.forward(xb, training=True)
        z[...], a[...] = net.last_pass()
        net.backward(yb)
        opt.step(net.params, net.grads)
        net.loss_of(z, a, yb)
        count_correct(a, yb)

    benchmark(step)
