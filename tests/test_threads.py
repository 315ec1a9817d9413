"""Same seed, same bits, any thread count: numpynn's own threads (numpynn._parallel) run
fixed shards of a batch and add partial gradients in shard order, so training with 1, 2,
3 or all the machine's threads gives the same weights, bit for bit."""

from __future__ import annotations

import os
import threading
import time
import warnings

import numpy as np
import pytest

import numpynn as nn
from numpynn import _parallel, datasets, models

COUNTS = sorted({1, 2, 3, os.cpu_count() or 1})


@pytest.fixture(scope="module")
def digits():
    data = datasets.load("mnist-sample")
    return data.x_train, data.y_train


def dense_weights(digits, threads):
    x, y = digits
    net = nn.Network([nn.Dense(784, 128, "sigmoid"), nn.Dense(128, 64, "sigmoid"),
                      nn.Dense(64, 10, "softmax")], loss="cross_entropy", seed=0, dtype="float32")
    # 1,900 rows at batch 1,024: one batch of 2 shards of 512, one of 876 (512 + 364)
    net.fit(x[:1900], y[:1900], epochs=2, batch_size=1024, optimizer=nn.Adam(lr=1e-3), progress=False,
            threads=threads)
    return net.params.copy(), net.predict(x[:300])


def convnet_weights(digits, threads):
    x, y = digits
    net = models.convnet(seed=0, dtype="float32")
    # 300 digits at batch 100: shards of 16 samples, the last one of 4
    net.fit(x[:300], y[:300], epochs=2, batch_size=100, optimizer=nn.Adam(lr=1e-3), progress=False,
            threads=threads)
    return net.params.copy(), net.predict(x[:300])


def resnet_weights(digits, threads):
    x, y = digits
    net = models.resnet(seed=0, dtype="float32")
    # 700 digits in one batch: the convolutions' shards of 16 samples (the last of 12), the batch
    # norms' and blocks' of 512 and 188; the batch norms' sums are added shard by shard
    net.fit(x[:700], y[:700], epochs=1, batch_size=700, optimizer=nn.Adam(lr=1e-3), progress=False,
            threads=threads)
    return np.concatenate([net.params, net.state]), net.predict(x[:300])


@pytest.mark.parametrize("train", [dense_weights, convnet_weights, resnet_weights],
                         ids=["dense-1024", "convnet", "resnet"])
def test_same_bits_any_thread_count(digits, train):
    params, outputs = {}, {}
    for n in COUNTS:
        params[n], outputs[n] = train(digits, n)
    assert np.isfinite(params[1]).all()
    for n in COUNTS[1:]:
        assert params[n].tobytes() == params[1].tobytes(), \
            f"{n} threads: largest difference {np.abs(params[n] - params[1]).max():.3g}"
        assert outputs[n].tobytes() == outputs[1].tobytes()


def test_shards_run_on_several_threads():
    seen = set()
    barrier = threading.Barrier(2, timeout=10)  # two shards must run at once to pass it

    def work(s):
        seen.add(threading.get_ident())
        if s < 2:
            barrier.wait()

    with _parallel.using(2):
        _parallel.run(work, 4)
    assert len(seen) == 2


def test_shards_of_few_values_stay_on_the_calling_thread():
    """A pass whose shards hold fewer than SHARD_VALUES_MIN values runs on the calling thread;
    from there on, on several (two shards must run at once to pass the barrier)."""
    seen = set()

    def work(s):
        seen.add(threading.get_ident())
        time.sleep(0.005)  # time for a helper thread, were it given the shards, to take some

    with _parallel.using(2):
        _parallel.run(work, 4, _parallel.SHARD_VALUES_MIN - 1)
    assert seen == {threading.get_ident()}
    barrier = threading.Barrier(2, timeout=10)
    with _parallel.using(2):
        _parallel.run(lambda s: barrier.wait() if s < 2 else None, 4, _parallel.SHARD_VALUES_MIN)


@pytest.mark.parametrize("maps, threaded", [((16, 24, 24), True), ((32, 8, 8), False)],
                         ids=["first-pool", "second-pool"])
def test_pools_hand_out_shards_that_hold_enough_values(monkeypatch, maps, threaded):
    """The convnet's pools: the first one's shards (16 samples of 16×24×24) go to numpynn's threads,
    the second one's (16 of 32×8×8) stay on the calling thread, forward and backward."""
    calls = []
    real = _parallel.run
    monkeypatch.setattr(_parallel, "run", lambda work, n, values=None: (calls.append(values),
                                                                         real(work, n, values)))
    pool = nn.MaxPool2D(2)
    nn.Network([nn.Reshape(maps), pool, nn.Flatten(), nn.Dense(maps[0] * maps[1] * maps[2] // 4, 10, "softmax")],
               input_shape=(maps[0] * maps[1] * maps[2],))
    pool.needs_input_grad = True
    x = np.random.default_rng(0).standard_normal((64, *maps)).astype(np.float32)
    y = pool.forward(x)
    pool.backward(np.ones_like(y))
    assert len(calls) == 2
    assert all((v >= _parallel.SHARD_VALUES_MIN) == threaded for v in calls), calls


def test_scratch_is_each_threads_own_and_kept():
    """One array per name, shape and dtype on each thread, the same one on every call (``fill`` set
    once, when it is made), another thread's its own; a thread keeps SCRATCH_KEPT at most."""
    first = _parallel.scratch("test", (3, 4), np.float32, fill=1)
    first[0] = 7  # what the thread leaves there stays
    again = _parallel.scratch("test", (3, 4), np.float32, fill=1)
    assert again is first and again[0, 0] == 7 and again[1, 0] == 1
    assert _parallel.scratch("test", (3, 5), np.float32) is not first
    assert _parallel.scratch("test", (3, 4), np.float64) is not first
    other = []
    thread = threading.Thread(target=lambda: other.append(_parallel.scratch("test", (3, 4), np.float32, fill=1)))
    thread.start()
    thread.join()
    assert other[0] is not first and (other[0] == 1).all()
    for k in range(_parallel.SCRATCH_KEPT):
        _parallel.scratch(f"test {k}", (2,), np.float32)
    assert _parallel.scratch("test", (3, 4), np.float32, fill=1) is not first  # the oldest went


@pytest.mark.parametrize("channels", [1, 16])
def test_a_convolution_keeps_no_patch_matrix_of_the_whole_batch(channels):
    """A convolution gathers each shard's [col 1] into its thread's scratch, in the forward pass
    and again in the backward one, instead of keeping the batch's (B·Ho·Wo, kh·kw·C + 1) matrix
    and its gradient (B·Ho·Wo, kh·kw·C): none of its own buffers has either's size; its gradients
    are those of a whole-batch im2col."""
    B, H = 256, 12
    conv = nn.Conv2D(channels, 32, 5)
    nn.Network([conv, nn.Flatten(), nn.Dense(32 * 8 * 8, 10, "softmax")], input_shape=(channels, H, H),
               seed=0, dtype="float64")  # builds the layer
    conv.needs_input_grad = True
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, channels, H, H))
    y = conv.forward(x)
    g = rng.standard_normal(y.shape)
    dx = conv.backward(g.copy())
    K = 25 * channels
    assert {b.size for b in conv._buffers.values()}.isdisjoint({B * 64 * (K + 1), B * 64 * K})
    # the same gradients from one whole-batch patch matrix
    from numpy.lib.stride_tricks import sliding_window_view
    col = sliding_window_view(x.transpose(0, 2, 3, 1), (5, 5), axis=(1, 2))  # (B, 8, 8, C, 5, 5)
    col = col.transpose(0, 1, 2, 4, 5, 3).reshape(B * 64, 25 * channels)
    W = conv.params["W"].transpose(2, 3, 1, 0).reshape(25 * channels, 32)
    delta = (g.transpose(0, 2, 3, 1).reshape(B * 64, 32)) * (conv.z > 0)  # ReLU's δ
    np.testing.assert_allclose(conv.grads["W"].transpose(2, 3, 1, 0).reshape(25 * channels, 32), col.T @ delta,
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(conv.grads["b"], delta.sum(axis=0), rtol=1e-10, atol=1e-10)
    grad_col = (delta @ W.T).reshape(B, 8, 8, 5, 5, channels)  # ∂C/∂col, put back where each patch came from
    expected = np.zeros((B, H, H, channels))
    for u in range(5):
        for v in range(5):
            expected[:, u : u + 8, v : v + 8] += grad_col[:, :, :, u, v]
    np.testing.assert_allclose(dx, expected.transpose(0, 3, 1, 2), rtol=1e-10, atol=1e-10)


def test_every_shard_runs_once_and_before_run_returns():
    """A thousand short runs back to back, so that helper threads wake late, for an older run or
    while the next one is being given out: each shard of each run is worked exactly once, and
    none after its run has returned."""
    counts = np.zeros((1000, 7), int)
    returned = np.zeros(1000, bool)
    late = []

    def job(i):
        def work(s):
            time.sleep(1e-4 * (s % 2))  # lets the other threads in: every thread takes shards
            if returned[i]:
                late.append((i, s))
            counts[i, s] += 1
        return work

    with _parallel.using(3):
        for i in range(len(counts)):
            _parallel.run(job(i), counts.shape[1])
            returned[i] = True
    assert not late, late[:5]
    assert (counts == 1).all(), np.argwhere(counts != 1)[:5]


def test_callers_on_several_threads_share_the_helpers():
    """Two threads of the user's own calling run at once (two networks trained side by side): each
    call's shards all run, once, and neither call waits for the other's."""
    results, errors = {}, []

    def caller(name):
        try:
            got = []
            for _ in range(300):
                seen = np.zeros(5, int)
                _parallel.run(lambda s, seen=seen: seen.__setitem__(s, seen[s] + 1), 5)
                got.append(seen.copy())
            results[name] = np.array(got)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    with _parallel.using(2):
        callers = [threading.Thread(target=caller, args=(k,)) for k in "ab"]
        for t in callers:
            t.start()
        for t in callers:
            t.join(timeout=120)
    assert not any(t.is_alive() for t in callers), "a caller never returned"
    assert not errors, errors
    assert all((results[k] == 1).all() for k in "ab")


def test_errors_in_a_shard_reach_the_caller():
    def work(s):
        if s == 3:
            raise RuntimeError("shard 3")

    with _parallel.using(2), pytest.raises(RuntimeError, match="shard 3"):
        _parallel.run(work, 6)


def test_shards_do_not_depend_on_threads():
    assert _parallel.shards(100, 16) == [slice(i, min(i + 16, 100)) for i in range(0, 100, 16)]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_thread_counts_are_checked(digits, bad):
    with pytest.raises(ValueError, match="threads must be"):
        _parallel.set_threads(bad)
    net = nn.Network([nn.Dense(784, 10, "softmax")], loss="cross_entropy", seed=0)
    with pytest.raises(ValueError, match="threads must be"):
        net.fit(digits[0][:10], digits[1][:10], epochs=1, progress=False, threads=bad)


def test_set_threads_is_the_default_and_fit_overrides_it():
    previous = _parallel.set_threads(3)
    try:
        assert _parallel.threads() == 3
        with _parallel.using(1):
            assert _parallel.threads() == 1
        assert _parallel.threads() == 3
    finally:
        _parallel.set_threads(previous)
    assert _parallel.threads() == (previous or _parallel.cores())


def test_shards_keep_the_callers_floating_point_error_handling():
    big = np.full(4, 1e38, np.float32)

    def work(s):
        np.multiply(big, big)  # overflows, on whichever thread runs it

    with _parallel.using(2), np.errstate(over="raise"), pytest.raises(FloatingPointError):
        _parallel.run(work, 8)
    with _parallel.using(2), np.errstate(over="ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")
        _parallel.run(work, 8)


@pytest.mark.parametrize("batch_size", [16, 200])
def test_blas_runs_on_one_thread_while_training_and_as_before_after(batch_size):
    """numpynn's threads spread the shards; BLAS stays on one thread during fit, whatever the
    batch, and is as it was before afterwards."""
    from threadpoolctl import threadpool_info

    def blas() -> list[int]:
        return [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"]

    before = blas()
    x = np.random.default_rng(0).random((400, 6))
    net = nn.Network([nn.Dense(6, 4, "sigmoid"), nn.Dense(4, 2, "softmax")], seed=0)
    seen: list[list[int]] = []
    for _ in range(2):
        net.fit(x, np.arange(400) % 2, epochs=1, batch_size=batch_size, progress=False,
                callback=lambda epoch, logs: seen.append(blas()))
        assert blas() == before
    assert seen == [[1] * len(before)] * 2
