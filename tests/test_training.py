"""The training loop's own rules: validation split, early stopping, argument checks."""

from __future__ import annotations

import numpy as np
import pytest

import numpynn as nn
from numpynn import training


def toy(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    return x, (x[:, 0] - x[:, 1] > 0).astype(int)


def test_split_is_seeded_disjoint_and_complete():
    train, val = training.split_indices(100, 0.1, seed=3)
    assert val.size == 10 and train.size == 90
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(100))
    again = training.split_indices(100, 0.1, seed=3)
    assert np.array_equal(again[1], val)
    assert not np.array_equal(training.split_indices(100, 0.1, seed=4)[1], val)
    for bad in (0, 1, -0.5, 1.5):
        with pytest.raises(ValueError, match="validation_split"):
            training.split_indices(100, bad, seed=0)


def test_validation_split_trains_on_the_rest_only():
    x, y = toy()
    net = nn.Network([nn.Dense(5, 8, "tanh"), nn.Dense(8, 2, "softmax")], seed=0)
    history = net.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, progress=False)
    train_rows, val_rows = training.split_indices(200, 0.25, seed=0)
    assert net.evaluate(x[val_rows], y[val_rows])["loss"] == pytest.approx(history["val_loss"][-1], rel=1e-6)
    # training on the 150 training rows alone visits them in the same order: the same weights
    twin = nn.Network([nn.Dense(5, 8, "tanh"), nn.Dense(8, 2, "softmax")], seed=0)
    twin.fit(x[train_rows], y[train_rows], epochs=2, batch_size=16, progress=False)
    np.testing.assert_array_equal(twin.params, net.params)
    assert net.metadata["selection"]["validation"].startswith("validation split 0.25")


def test_selection_needs_validation_data_and_not_both_kinds():
    x, y = toy()
    net = nn.Network([nn.Dense(5, 2, "softmax")])
    with pytest.raises(ValueError, match="need validation data"):
        net.fit(x, y, epochs=1, early_stopping=2, progress=False)
    with pytest.raises(ValueError, match="not both"):
        net.fit(x, y, epochs=1, validation=(x, y), validation_split=0.1, progress=False)
    with pytest.raises(ValueError, match="monitor"):
        net.fit(x, y, epochs=1, validation_split=0.1, monitor="loss", progress=False)
    with pytest.raises(ValueError, match="early_stopping"):
        net.fit(x, y, epochs=1, validation_split=0.1, early_stopping=0, progress=False)


def test_early_stopping_on_accuracy_with_given_validation_data():
    x, y = toy(300)
    net = nn.Network([nn.Dense(5, 16, "tanh"), nn.Dense(16, 2, "softmax")], seed=1)
    weights = []  # the weights after each epoch, as the callback sees them

    def record(epoch, row):
        weights.append(net.params.copy())

    history = net.fit(x[:200], y[:200], epochs=60, batch_size=20, optimizer=nn.Adam(lr=3e-2),
                      validation=(x[200:], y[200:]), early_stopping=4, monitor="val_accuracy",
                      restore_best=True, callback=record, progress=False)
    acc = history["val_accuracy"]
    best = int(np.argmax(acc))  # the first epoch with the highest accuracy
    sel = net.metadata["selection"]
    assert sel["monitor"] == "val_accuracy" and sel["best_epoch"] == best + 1
    assert sel["stopped_early"] == (len(acc) < 60)
    if sel["stopped_early"]:
        assert len(acc) == best + 1 + 4
    assert len(weights) == len(acc) and best + 1 < len(acc)  # the best epoch is not the last
    np.testing.assert_array_equal(net.params, weights[best])  # the kept weights are the best epoch's
    assert not np.array_equal(net.params, weights[-1])
    assert net.evaluate(x[200:], y[200:])["accuracy"] == acc[best]


def test_a_resumed_run_with_restore_best_ends_where_an_uninterrupted_one_does(tmp_path):
    from numpynn.serialization import load_checkpoint, save_checkpoint

    x, y = toy(300, seed=2)

    def make():
        return nn.Network([nn.Dense(5, 16, "tanh"), nn.Dropout(0.2), nn.Dense(16, 2, "softmax")], seed=3)

    options = dict(batch_size=20, validation_split=0.2, early_stopping=50, restore_best=True,
                   schedule="cosine", progress=False)
    whole = make()
    weights = []  # the weights after each epoch, as the callback sees them
    history = whole.fit(x, y, epochs=12, optimizer=nn.Adam(lr=5e-2),
                        callback=lambda epoch, row: weights.append(whole.params.copy()), **options)
    best = whole.metadata["selection"]["best_epoch"]
    assert 1 < best < 12, history["val_loss"]  # the best epoch is not the last: restoring matters
    assert best == 1 + int(np.argmin(history["val_loss"])) and len(weights) == 12
    np.testing.assert_array_equal(whole.params, weights[best - 1])  # the best epoch's weights, kept
    assert not np.array_equal(whole.params, weights[-1])
    first = make()
    opt = nn.Adam(lr=5e-2)
    path = tmp_path / "ck.safetensors"
    stop_at = best + 1  # checkpoint after the best epoch: its weights must survive the file

    def checkpoint(epoch, row):  # as numpynn train --checkpoint does, after every epoch
        save_checkpoint(path, first, opt, epoch)
        return epoch == stop_at  # then stop, as a kill would

    first.fit(x, y, epochs=12, optimizer=opt, callback=checkpoint, **options)
    net, opt2, done, _ = load_checkpoint(path)
    assert done == stop_at and net.best_params is not None
    net.fit(x, y, epochs=12, optimizer=opt2, initial_epoch=done, **options)
    assert net.metadata["selection"]["best_epoch"] == best
    np.testing.assert_array_equal(net.params, whole.params)


@pytest.mark.parametrize("stop_at", [5, 2 * 13 + 5, "callback"])
def test_ctrl_c_rolls_back_to_the_last_complete_epoch_rate_included(stop_at, tmp_path):
    """Ctrl-C during a step of epoch e rolls back to the start of epoch e, the scheduled rate
    included, so the checkpoint resumes exactly, even at e = 0 where the resumed run starts its
    schedule from the checkpoint's rate; Ctrl-C after an epoch's steps (in the callback that
    writes its checkpoint) keeps that epoch."""
    from numpynn.serialization import load_checkpoint, save_checkpoint

    x, y = toy(200, seed=5)  # 13 batches of 16 per epoch
    cosine = training.SCHEDULES["cosine"]

    def make():
        return nn.Network([nn.Dense(5, 8, "tanh"), nn.Dense(8, 2, "softmax")], seed=1)

    options = dict(epochs=5, batch_size=16, progress=False)
    whole = make()
    rates = whole.fit(x, y, optimizer=nn.Adam(lr=1e-2), schedule=cosine, **options)["lr"]

    def schedule(step, total):  # Ctrl-C arrives as step `stop_at` begins
        if step == stop_at:
            raise KeyboardInterrupt
        return cosine(step, total)

    def callback(epoch, row):
        if stop_at == "callback" and epoch == 3:
            raise KeyboardInterrupt

    net, opt = make(), nn.Adam(lr=1e-2)
    with pytest.raises(training.TrainingInterrupted) as stop:
        net.fit(x, y, optimizer=opt, schedule=schedule, callback=callback, **options)
    done = stop.value.epochs_done
    assert done == (3 if stop_at == "callback" else stop_at // 13)
    assert opt.lr == (rates[done - 1] if done else 1e-2)  # the rate as epoch `done` began
    save_checkpoint(tmp_path / "ck.safetensors", net, opt, done)
    again, opt2, done2, _ = load_checkpoint(tmp_path / "ck.safetensors")
    again.fit(x, y, optimizer=opt2, initial_epoch=done2, schedule=cosine, **options)
    np.testing.assert_array_equal(again.params, whole.params)


# --- warm-up and gradient clipping -------------------------------------------------------------------
def test_warmup_raises_the_rate_linearly_then_runs_the_schedule():
    x, y = toy(100, seed=4)
    net = nn.Network([nn.Dense(5, 8, "tanh"), nn.Dense(8, 2, "softmax")], seed=1)
    rates = []
    original = training._step
    try:
        training._step = lambda net, run, xb, yb, start: (rates.append(run.opt.lr),
                                                         original(net, run, xb, yb, start))
        net.fit(x, y, epochs=4, batch_size=25, optimizer=nn.SGD(lr=0.2), schedule="cosine", warmup=1,
                progress=False)
    finally:
        training._step = original
    steps = 4  # per epoch: 100 rows, batch 25
    assert rates[:steps] == pytest.approx([0.05, 0.1, 0.15, 0.2])  # (s + 1)/W of the base rate
    after = [0.2 * 0.5 * (1 + np.cos(np.pi * s / (3 * steps))) for s in range(3 * steps)]
    assert rates[steps:] == pytest.approx(after)  # then the cosine over the 12 steps left
    with pytest.raises(ValueError, match="warmup .5 epochs. cannot be longer than the training .4 epochs."):
        net.fit(x, y, epochs=4, warmup=5, progress=False)
    with pytest.raises(ValueError, match="warmup must be a non-negative whole number"):
        net.fit(x, y, epochs=4, warmup=-1, progress=False)


def test_clip_norm_matches_torch_clip_grad_norm():
    torch = pytest.importorskip("torch")
    x, y = toy(16, seed=5)
    net = nn.Network([nn.Dense(5, 8, "tanh"), nn.Dense(8, 2, "softmax")], dtype="float64", seed=2)
    theta = net.params.copy()
    _, grads = net.gradients(x, y)
    g = torch.tensor(net.grads.copy(), requires_grad=False)
    p = torch.nn.Parameter(torch.tensor(theta))
    p.grad = g
    torch.nn.utils.clip_grad_norm_([p], max_norm=0.05)
    assert float(g.norm()) == pytest.approx(0.05, rel=1e-4)  # it did clip
    expected = theta - 0.5 * p.grad.numpy()
    net.fit(x, y, epochs=1, batch_size=16, optimizer=nn.SGD(lr=0.5), clip_norm=0.05, shuffle=False,
            progress=False)
    np.testing.assert_allclose(net.params, expected, rtol=1e-12, atol=1e-14)
    loose = nn.Network([nn.Dense(5, 8, "tanh"), nn.Dense(8, 2, "softmax")], dtype="float64", seed=2)
    plain = loose.copy()
    loose.fit(x, y, epochs=1, batch_size=16, optimizer=nn.SGD(lr=0.5), clip_norm=1e6, shuffle=False,
              progress=False)
    plain.fit(x, y, epochs=1, batch_size=16, optimizer=nn.SGD(lr=0.5), shuffle=False, progress=False)
    np.testing.assert_array_equal(loose.params, plain.params)  # a norm under the cap is left alone
    with pytest.raises(ValueError, match="clip_norm must be a positive number"):
        plain.fit(x, y, epochs=1, clip_norm=0, progress=False)


def test_a_resumed_run_with_warmup_clipping_and_batch_norm_state_is_bit_exact(tmp_path):
    from numpynn.serialization import load_checkpoint, save_checkpoint

    x, y = toy(200, seed=6)

    @nn.register_layer
    class RunningMean(nn.Layer):
        """y = x; keeps a running mean of its training inputs (state, as batch norm keeps)."""

        def build(self, input_shape):
            self.add_state("mean", input_shape)
            return input_shape

        def forward(self, x, training=False):
            if training:
                self.state["mean"] *= 0.9
                self.state["mean"] += 0.1 * x.mean(axis=0)
            return x + 0 * self.state["mean"]

        def backward(self, grad_y):
            return grad_y

    def make():
        return nn.Network([nn.Dense(5, 16, "tanh"), RunningMean(), nn.Dense(16, 2, "softmax")], seed=3)

    options = dict(batch_size=20, validation_split=0.2, restore_best=True, schedule="cosine", warmup=2,
                   clip_norm=0.5, progress=False)
    whole = make()
    whole.fit(x, y, epochs=8, optimizer=nn.AdamW(lr=2e-2), **options)
    first = make()
    opt = nn.AdamW(lr=2e-2)
    path = tmp_path / "ck.safetensors"

    def checkpoint(epoch, row):
        save_checkpoint(path, first, opt, epoch)
        return epoch == 3

    first.fit(x, y, epochs=8, optimizer=opt, callback=checkpoint, **options)
    net, opt2, done, _ = load_checkpoint(path)
    assert done == 3 and type(opt2) is nn.AdamW and net.state.size == 16
    net.fit(x, y, epochs=8, optimizer=opt2, initial_epoch=done, **options)
    np.testing.assert_array_equal(net.params, whole.params)
    np.testing.assert_array_equal(net.state, whole.state)
