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


@pytest.mark.parametrize("batch_size, inside", [(16, 1), (200, None)])
def test_blas_runs_on_one_thread_for_small_batches_and_as_before_after(batch_size, inside):
    """Batches up to 128: one BLAS thread while training (each call of fit, not only the first);
    larger ones: BLAS as it was; and afterwards as it was before, either way."""
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
    expected = before if inside is None else [inside] * len(before)
    assert seen == [expected, expected]
