"""Network behaviour: construction, validation, reproducibility, fit, resume, divergence."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import numpynn as nn
from numpynn.errors import DivergenceError


def small_net(seed=0, dtype="float32", loss="cross_entropy", out="softmax"):
    return nn.Network([nn.Dense(4, 6, "tanh"), nn.Dense(6, 5, "relu"), nn.Dense(5, 3, out)],
                      loss=loss, seed=seed, dtype=dtype)


def random_data(n=60, seed=0, n_in=4, k=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, n_in)), rng.integers(0, k, size=n)


def two_moons(n, seed, noise=0.15):
    """Two interleaving half circles, labels 0/1."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, np.pi, size=n)
    labels = rng.integers(0, 2, size=n)
    x = np.where(labels[:, None] == 0,
                 np.column_stack([np.cos(t), np.sin(t)]),
                 np.column_stack([1 - np.cos(t), 0.5 - np.sin(t)]))
    return x + rng.normal(0, noise, size=x.shape), labels


# --- construction and parameters ---------------------------------------------------------------
def test_sizes_and_parameter_layout():
    net = small_net()
    assert net.sizes == [4, 6, 5, 3]
    assert net.n_in == 4 and net.n_out == 3
    assert net.n_params == 4 * 6 + 6 + 6 * 5 + 5 + 5 * 3 + 3 == net.params.size
    offset = 0
    for layer in net.layers:
        assert layer.W.shape == (layer.n_in, layer.n_out) and layer.b.shape == (layer.n_out,)
        assert np.shares_memory(layer.W, net.params) and np.shares_memory(layer.b, net.params)
        np.testing.assert_array_equal(net.params[offset:offset + layer.W.size], layer.W.ravel())
        offset += layer.n_params
    assert all(not layer.b.any() for layer in net.layers)  # biases start at zero
    assert "3" in net.summary() and "params" in net.summary()


def test_initialisation_scales():
    net = nn.Network([nn.Dense(400, 300, "relu"), nn.Dense(300, 200, "sigmoid")], seed=1,
                     loss="squared_error")
    he, glorot = net.layers[0].W, net.layers[1].W
    assert he.std() == pytest.approx(math.sqrt(2 / 400), rel=0.02)  # He normal
    r = math.sqrt(6 / 500)
    assert np.abs(glorot).max() <= r and glorot.std() == pytest.approx(r / math.sqrt(3), rel=0.02)


def test_same_seed_same_weights_different_seed_different_weights():
    a, b, c = small_net(seed=5), small_net(seed=5), small_net(seed=6)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)


@pytest.mark.parametrize("shuffle", [True, False])
def test_training_is_reproducible_bit_for_bit(shuffle):
    x, y = random_data()
    nets = [small_net(seed=s) for s in (7, 7, 8)]
    histories = [net.fit(x, y, epochs=2, batch_size=16, optimizer=nn.Adam(lr=0.01), progress=False,
                         shuffle=shuffle) for net in nets]
    np.testing.assert_array_equal(nets[0].params, nets[1].params)
    assert histories[0]["loss"] == histories[1]["loss"]
    assert not np.array_equal(nets[0].params, nets[2].params)


def test_shuffle_order_depends_on_fit_seed():
    x, y = random_data()
    a, b = small_net(seed=1), small_net(seed=1)
    a.fit(x, y, epochs=1, batch_size=8, optimizer=nn.SGD(lr=0.1), progress=False, seed=1)
    b.fit(x, y, epochs=1, batch_size=8, optimizer=nn.SGD(lr=0.1), progress=False, seed=2)
    assert not np.array_equal(a.params, b.params)


def test_float32_and_float64_initialisation_agree_to_rounding():
    n32, n64 = small_net(seed=3, dtype="float32"), small_net(seed=3, dtype="float64")
    assert n32.params.dtype == np.float32 and n64.params.dtype == np.float64
    np.testing.assert_array_equal(n32.params, n64.params.astype(np.float32))
    np.testing.assert_allclose(n32.params, n64.params, rtol=np.finfo(np.float32).eps)


def test_weight_assignment_copies_into_params():
    net = small_net(dtype="float64")
    new_W = np.arange(24, dtype=np.float64).reshape(4, 6)
    net.layers[0].W = new_W
    new_W[0, 0] = 99.0  # the network holds a copy
    assert net.layers[0].W[0, 0] == 0.0
    np.testing.assert_array_equal(net.params[:24], np.arange(24))
    net.layers[1].b = [1, 2, 3, 4, 5]
    start = 24 + 6 + 30
    np.testing.assert_array_equal(net.params[start:start + 5], [1, 2, 3, 4, 5])
    assert np.shares_memory(net.layers[0].W, net.params)


@pytest.mark.parametrize(
    "attr, value, match",
    [
        ("W", np.zeros((6, 4)), r"W must have shape \(4, 6\), not \(6, 4\)"),
        ("W", np.zeros(24), r"W must have shape \(4, 6\)"),
        ("b", np.zeros(7), r"b must have shape \(6,\), not \(7,\)"),
        ("W", np.full((4, 6), np.nan), "NaN or infinite"),
        ("b", np.array([0, 0, np.inf, 0, 0, 0]), "NaN or infinite"),
    ],
)
def test_weight_assignment_validates(attr, value, match):
    net = small_net()
    before = net.params.copy()
    with pytest.raises(ValueError, match=match):
        setattr(net.layers[0], attr, value)
    np.testing.assert_array_equal(net.params, before)  # nothing was written


def test_dense_initial_weights_are_used():
    W = np.full((2, 3), 0.25)
    net = nn.Network([nn.Dense(2, 3, "tanh", W=W, b=[1, 2, 3]), nn.Dense(3, 1, "sigmoid")],
                     loss="squared_error")
    np.testing.assert_array_equal(net.layers[0].W, W)
    np.testing.assert_array_equal(net.layers[0].b, [1, 2, 3])
    with pytest.raises(ValueError, match="shape"):
        nn.Network([nn.Dense(2, 3, W=np.zeros((3, 2)))])


def test_layer_without_network_has_no_weights():
    with pytest.raises(RuntimeError, match="Network"):
        _ = nn.Dense(2, 3).W


def test_layer_size_mismatch_names_the_layers():
    with pytest.raises(ValueError) as info:
        nn.Network([nn.Dense(4, 6), nn.Dense(6, 5), nn.Dense(7, 3, "softmax")])
    message = str(info.value)
    assert "layer 2" in message and "layer 1" in message
    assert "7" in message and "5" in message


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: nn.Network([]), ValueError, "at least one layer"),
        (lambda: nn.Network([nn.Dense(2, 2), "dense"]), TypeError, "layer 1"),
        (lambda: nn.Network([nn.Dense(2, 2, "softmax"), nn.Dense(2, 2, "softmax")]), ValueError,
         "layer 0 uses softmax"),
        (lambda: nn.Network([nn.Dense(2, 2, "softmax")], dtype="float16"), ValueError, "dtype"),
        (lambda: nn.Dense(0, 3), ValueError, "n_in"),
        (lambda: nn.Dense(3, 2.5), ValueError, "n_out"),
        (lambda: nn.Dense(True, 2), ValueError, "n_in"),
        (lambda: nn.Dense(2, 2, init="lecun"), ValueError, "init"),
    ],
)
def test_construction_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


# --- input and target validation ------------------------------------------------------------------
@pytest.mark.parametrize("method", ["predict", "classify", "evaluate", "gradients", "fit"])
def test_wrong_input_width_reports_expected_and_actual(method):
    net = small_net()
    x = np.zeros((5, 7))
    y = np.zeros(5, dtype=int)
    args = (x,) if method in ("predict", "classify") else (x, y)
    kwargs = {"progress": False} if method == "fit" else {}
    with pytest.raises(ValueError) as info:
        getattr(net, method)(*args, **kwargs)
    message = str(info.value)
    assert "7" in message and "4" in message


def test_other_input_errors():
    net = small_net()
    with pytest.raises(ValueError, match="2-D"):
        net.predict(np.zeros((2, 2, 4)))
    with pytest.raises(ValueError, match="no rows"):
        net.predict(np.zeros((0, 4)))
    with pytest.raises(ValueError, match="NaN"):
        net.predict([[0, 1, np.nan, 0]])
    with pytest.raises(TypeError, match="numeric"):
        net.predict(np.array([["a", "b", "c", "d"]]))
    assert net.predict([0.1, 0.2, 0.3, 0.4]).shape == (1, 3)  # one sample as a 1-D row


@pytest.mark.parametrize("labels, bad", [([0, 1, 3, 2], "3"), ([0, -1, 2, 1], "-1")])
@pytest.mark.parametrize("method", ["evaluate", "gradients", "fit"])
def test_labels_out_of_range(labels, bad, method):
    net = small_net()
    kwargs = {"progress": False} if method == "fit" else {}
    with pytest.raises(ValueError) as info:
        getattr(net, method)(np.zeros((4, 4)), np.array(labels), **kwargs)
    message = str(info.value)
    assert bad in message and "0..2" in message


def test_target_errors():
    net = small_net()
    x = np.zeros((4, 4))
    with pytest.raises(ValueError, match="3 rows but x has 4"):
        net.gradients(x, [0, 1, 2])
    with pytest.raises(ValueError, match="integer class labels"):
        net.gradients(x, [0.5, 1, 2, 0])
    with pytest.raises(ValueError, match=r"rows \(n, 3\)"):
        net.gradients(x, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        net.gradients(x, np.full((4, 3), np.nan))
    # whole floats are accepted as labels
    loss_f, _ = net.gradients(x, np.array([0.0, 1.0, 2.0, 0.0]))
    loss_i, _ = net.gradients(x, np.array([0, 1, 2, 0]))
    assert loss_f == loss_i


def test_fit_argument_errors():
    net = small_net()
    x, y = random_data(8)
    for kwargs, match in [({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch_size"),
                          ({"initial_epoch": -1}, "initial_epoch"), ({"schedule": "step"}, "schedule"),
                          ({"validation": (x,)}, "validation"), ({"optimizer": "lbfgs"}, "lbfgs")]:
        with pytest.raises(ValueError, match=match):
            net.fit(x, y, progress=False, **kwargs)


# --- inference --------------------------------------------------------------------------------------
def test_predict_classify_evaluate_agree():
    net = small_net(dtype="float64")
    x, y = random_data(50, seed=2)
    probs = net.predict(x)
    assert probs.shape == (50, 3) and probs.dtype == np.float64
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_array_equal(net.classify(x), probs.argmax(axis=1))
    scores = net.evaluate(x, y, batch_size=7)
    assert scores["accuracy"] == pytest.approx(np.mean(probs.argmax(axis=1) == y))
    expected_loss = -np.mean(np.log(probs[np.arange(50), y]))
    assert scores["loss"] == pytest.approx(expected_loss, rel=1e-12)
    np.testing.assert_allclose(net.predict(x, batch_size=7), probs, rtol=1e-12)
    counts = net.confusion_matrix(x, y)
    assert counts.sum() == 50 and np.trace(counts) == round(scores["accuracy"] * 50)


def test_predict_returns_a_fresh_array():
    net = small_net()
    x1, _ = random_data(5, seed=1)
    x2, _ = random_data(5, seed=2)
    first = net.predict(x1)
    kept = first.copy()
    net.predict(x2)
    net.gradients(x2, [0, 1, 2, 0, 1])
    np.testing.assert_array_equal(first, kept)


def test_single_output_classify_uses_one_half():
    net = nn.Network([nn.Dense(1, 1, "sigmoid", W=[[1.0]])], loss="cross_entropy")
    np.testing.assert_array_equal(net.classify([[-2.0], [-0.01], [0.01], [3.0]]), [0, 0, 1, 1])
    assert net.evaluate([[-1.0], [1.0]], [0, 1])["accuracy"] == 1.0


def test_uint8_inputs_are_pixels_scaled_by_255():
    rng = np.random.default_rng(4)
    pixels = rng.integers(0, 256, size=(40, 4), dtype=np.uint8)
    net = small_net()
    np.testing.assert_allclose(net.predict(pixels), net.predict(pixels / 255.0), atol=1e-6)
    labels = rng.integers(0, 3, size=40)
    a, b = net.evaluate(pixels, labels), net.evaluate(pixels.astype(np.float64) / 255.0, labels)
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-6) and a["accuracy"] == b["accuracy"]
    # and training on pixels equals training on the scaled floats (to float32 rounding)
    n1, n2 = small_net(seed=9), small_net(seed=9)
    n1.fit(pixels, labels, epochs=2, batch_size=8, optimizer=nn.SGD(lr=0.1), progress=False)
    n2.fit(pixels / 255.0, labels, epochs=2, batch_size=8, optimizer=nn.SGD(lr=0.1), progress=False)
    np.testing.assert_allclose(n1.params, n2.params, atol=1e-5)


# --- fit -----------------------------------------------------------------------------------------
def test_fit_history_keys_and_lengths():
    x, y = random_data(50)
    net = small_net()
    history = net.fit(x, y, epochs=3, batch_size=16, optimizer=nn.SGD(lr=0.05), progress=False)
    assert set(history) == {"epoch", "loss", "accuracy", "lr", "seconds"}
    assert all(len(v) == 3 for v in history.values())
    assert history["epoch"] == [1, 2, 3]
    assert history["lr"] == [0.05] * 3
    assert all(0 <= a <= 1 for a in history["accuracy"]) and all(s >= 0 for s in history["seconds"])
    assert all(math.isfinite(v) and v > 0 for v in history["loss"])
    assert net.metadata["epochs_trained"] == 3
    assert isinstance(net.optimizer, nn.SGD) and net.optimizer.t == 3 * 4  # ceil(50 / 16) steps


def test_fit_validation_keys_and_values():
    x, y = random_data(50)
    xv, yv = random_data(20, seed=1)
    net = small_net()
    history = net.fit(x, y, epochs=2, batch_size=10, validation=(xv, yv), progress=False)
    assert set(history) == {"epoch", "loss", "accuracy", "lr", "seconds", "val_loss", "val_accuracy"}
    assert len(history["val_loss"]) == len(history["val_accuracy"]) == 2
    final = net.evaluate(xv, yv)
    assert history["val_loss"][-1] == pytest.approx(final["loss"], rel=1e-12)
    assert history["val_accuracy"][-1] == final["accuracy"]


def test_fit_epoch_loss_is_the_mean_of_batch_losses():
    x, y = random_data(30)
    net = small_net(dtype="float64")
    probe = net.copy()
    opt = nn.SGD(lr=0.2)
    history = net.fit(x, y, epochs=1, batch_size=12, optimizer=opt, progress=False, shuffle=False)
    total = 0.0
    probe_opt = nn.SGD(lr=0.2)
    for start in range(0, 30, 12):
        loss, _ = probe.gradients(x[start:start + 12], y[start:start + 12])
        total += loss * len(x[start:start + 12])
        probe_opt.step(probe.params, probe.grads)
    assert history["loss"][0] == pytest.approx(total / 30, rel=1e-12)
    np.testing.assert_allclose(net.params, probe.params, rtol=1e-12)


def test_cosine_schedule_decays_to_near_zero():
    x, y = random_data(64)
    net = small_net()
    history = net.fit(x, y, epochs=10, batch_size=16, optimizer=nn.SGD(lr=0.1), schedule="cosine",
                      progress=False)
    lrs = history["lr"]  # the rate of each epoch's last step
    total = 10 * 4
    expected = [0.1 * 0.5 * (1 + math.cos(math.pi * (4 * e + 3) / total)) for e in range(10)]
    assert lrs == pytest.approx(expected, rel=1e-12)
    assert (np.diff(lrs) < 0).all()
    assert lrs[-1] < 0.001 * 0.1 * 10  # near zero: 1.5e-4 of the base rate


def test_callable_schedule():
    x, y = random_data(32)
    seen = []

    def schedule(step, total):
        seen.append((step, total))
        return 0.5

    history = small_net().fit(x, y, epochs=2, batch_size=16, optimizer=nn.SGD(lr=0.2),
                              schedule=schedule, progress=False)
    assert seen == [(0, 4), (1, 4), (2, 4), (3, 4)]
    assert history["lr"] == [0.1, 0.1]


def test_callback_returning_true_stops_training():
    x, y = random_data(40)
    calls = []

    def callback(epoch, logs):
        calls.append((epoch, set(logs)))
        return epoch == 3

    net = small_net()
    history = net.fit(x, y, epochs=10, batch_size=8, optimizer=nn.SGD(lr=0.05), callback=callback,
                      progress=False)
    assert [c[0] for c in calls] == [1, 2, 3]
    assert calls[0][1] == {"epoch", "loss", "accuracy", "lr", "seconds"}
    assert history["epoch"] == [1, 2, 3]
    assert net.optimizer.t == 3 * 5


def test_callback_returning_false_or_none_continues():
    x, y = random_data(16)
    history = small_net().fit(x, y, epochs=4, batch_size=8, optimizer=nn.SGD(lr=0.05),
                              callback=lambda e, logs: None if e % 2 else False, progress=False)
    assert history["epoch"] == [1, 2, 3, 4]


@pytest.mark.parametrize("make_opt", [lambda: nn.SGD(lr=0.05, momentum=0.9),
                                      lambda: nn.Adam(lr=0.01)], ids=["sgd", "adam"])
def test_resume_is_exact(make_opt):
    """fit(epochs=4) == fit(epochs=2) then fit(initial_epoch=2, epochs=4), same optimiser."""
    x, y = random_data(50)
    whole = small_net(seed=4)
    h_whole = whole.fit(x, y, epochs=4, batch_size=16, optimizer=make_opt(), progress=False)
    split = small_net(seed=4)
    opt = make_opt()
    h1 = split.fit(x, y, epochs=2, batch_size=16, optimizer=opt, progress=False)
    h2 = split.fit(x, y, epochs=4, batch_size=16, optimizer=opt, progress=False, initial_epoch=2)
    np.testing.assert_array_equal(split.params, whole.params)
    assert h1["epoch"] + h2["epoch"] == [1, 2, 3, 4]
    assert h1["loss"] + h2["loss"] == h_whole["loss"]
    assert opt.t == 4 * 4


@pytest.mark.parametrize("make_opt", [lambda: nn.SGD(lr=0.05, momentum=0.9),
                                      lambda: nn.Adam(lr=0.01)], ids=["sgd", "adam"])
def test_resume_with_cosine_schedule_is_exact(make_opt):
    """A 4-epoch cosine run stopped after epoch 2 (by the callback) and resumed with
    initial_epoch=2 follows the same schedule: the optimiser's lr was left at a decayed
    value, and the base rate must come back from the network's metadata."""
    x, y = random_data(50)
    whole = small_net(seed=4)
    h_whole = whole.fit(x, y, epochs=4, batch_size=16, optimizer=make_opt(), schedule="cosine",
                        progress=False)
    split = small_net(seed=4)
    opt = make_opt()
    h1 = split.fit(x, y, epochs=4, batch_size=16, optimizer=opt, schedule="cosine", progress=False,
                   callback=lambda epoch, logs: epoch == 2)
    assert h1["epoch"] == [1, 2] and opt.lr < make_opt().lr
    h2 = split.fit(x, y, epochs=4, batch_size=16, optimizer=opt, schedule="cosine", progress=False,
                   initial_epoch=2)
    np.testing.assert_array_equal(split.params, whole.params)
    assert h1["lr"] + h2["lr"] == h_whole["lr"]
    assert h1["loss"] + h2["loss"] == h_whole["loss"]


def test_training_reaches_high_accuracy_on_two_moons():
    x, y = two_moons(600, seed=0)
    x_test, y_test = two_moons(400, seed=1)
    net = nn.Network([nn.Dense(2, 16, "tanh"), nn.Dense(16, 16, "tanh"), nn.Dense(16, 2, "softmax")],
                     loss="cross_entropy", seed=0)
    before = net.evaluate(x_test, y_test)
    history = net.fit(x, y, epochs=60, batch_size=32, optimizer=nn.Adam(lr=0.01),
                      validation=(x_test, y_test), progress=False)
    after = net.evaluate(x_test, y_test)
    assert after["accuracy"] > 0.95, after
    assert after["loss"] < 0.5 * before["loss"]
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] == after["accuracy"]


# --- divergence ----------------------------------------------------------------------------------
def regression_net(dtype):
    return nn.Network([nn.Dense(3, 4, "tanh"), nn.Dense(4, 2, "identity")], loss="squared_error",
                      seed=0, dtype=dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_divergence_raises_and_restores_the_last_epoch(dtype):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 3)), rng.normal(size=(32, 2))
    net = regression_net(dtype)
    snapshots = [net.params.copy()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow on the way to inf is expected
        with pytest.raises(DivergenceError) as info:
            net.fit(x, y, epochs=100, batch_size=8, optimizer=nn.SGD(lr=1e6), progress=False,
                    callback=lambda e, logs: snapshots.append(net.params.copy()))
    message = str(info.value)
    assert "epoch" in message and "learning rate" in message
    assert np.isfinite(net.params).all()
    np.testing.assert_array_equal(net.params, snapshots[-1])  # the end of the last full epoch
    assert len(snapshots) < 20  # quickly


def test_divergence_keeps_finite_weights_with_full_batch_training():
    """One step per epoch: the step that overflows the weights is the last of its epoch,
    and the NaN loss only shows in the next epoch. The weights kept must still be the
    last finite ones, not the overflowed ones that epoch started from."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 3)), rng.normal(size=(32, 2))
    net = regression_net("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(DivergenceError, match="learning rate"):
            net.fit(x, y, epochs=100, batch_size=32, optimizer=nn.SGD(lr=1e6), progress=False)
    assert np.isfinite(net.params).all(), "weights after DivergenceError are not finite"
    assert np.isfinite(net.predict(x)).all()


def test_divergence_error_type():
    assert issubclass(DivergenceError, ArithmeticError) and issubclass(DivergenceError, nn.NumpynnError)


def test_copy_is_independent_and_can_change_dtype():
    net = small_net()
    clone = net.copy("float64")
    assert clone.dtype == np.float64
    np.testing.assert_array_equal(clone.params, net.params.astype(np.float64))
    clone.layers[0].W = np.zeros((4, 6))
    assert net.layers[0].W.any()
    x, _ = random_data(5)
    np.testing.assert_allclose(clone.copy("float32").predict(x), clone.predict(x), atol=1e-6)


def test_a_second_fit_continues_with_the_same_optimizer_and_schedule_restarts():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)), rng.integers(0, 3, 64)
    net = nn.Network([nn.Dense(4, 8, "tanh"), nn.Dense(8, 3, "softmax")], seed=0)
    first = net.fit(x, y, epochs=3, batch_size=16, optimizer=nn.Adam(lr=0.01), schedule="cosine",
                    progress=False)
    opt = net.optimizer
    assert opt is not None and opt.t == 12 and first["lr"][-1] < 0.001
    second = net.fit(x, y, epochs=3, batch_size=16, schedule="cosine", progress=False)
    assert net.optimizer is opt and opt.t == 24  # same Adam state, carried on
    assert second["lr"][0] > 0.005  # the schedule starts again from the initial rate, not from ~0


def test_input_gradient_matches_finite_differences():
    """∂ log p_c / ∂x by the δ recursion carried down to the input (the web page's saliency)."""
    rng = np.random.default_rng(3)
    net = nn.Network([nn.Dense(5, 4, "tanh"), nn.Dense(4, 3, "softmax")], seed=1, dtype="float64")
    x = rng.random((2, 5))
    p = net.predict(x)
    c = p.argmax(axis=1)
    rows = np.arange(2)
    grad = np.zeros_like(p)
    grad[rows, c] = 1 / p[rows, c]
    analytic = net.input_gradient(x, grad)
    numeric = np.zeros_like(x)
    eps = 1e-6
    for b in range(2):
        for j in range(5):
            up, down = x.copy(), x.copy()
            up[b, j] += eps
            down[b, j] -= eps
            numeric[b, j] = (np.log(net.predict(up)[b, c[b]]) - np.log(net.predict(down)[b, c[b]])) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)
