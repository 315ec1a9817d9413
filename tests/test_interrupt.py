"""Interruption loses nothing: Ctrl-C, SIGTERM and SIGKILL during `numpynn train --checkpoint`.

No test here depends on the machine's speed. A run is signalled or killed only while it is
held at a chosen point (in the middle of an epoch, or inside a checkpoint write after some of
its bytes), which the run announces itself: see :class:`HeldRun`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import pytest

import numpynn as nn
from numpynn.serialization import load_checkpoint

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX signals, /proc")

EPOCHS = 8
TRAIN = ["--data", "mnist-sample", "--shift", "0", "--no-progress", "--no-download"]

from held_runs import HeldRun, held_train  # noqa: E402  (shared with the convnet and resnet tests)

# --- the runs -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> np.ndarray:
    """The weights of a run that was never interrupted."""
    where = tmp_path_factory.mktemp("full")
    p = subprocess.run([sys.executable, "-m", "numpynn", "train", *TRAIN, "--epochs", str(EPOCHS),
                        "--save", "full.safetensors"], cwd=where, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    return nn.load(str(where / "full.safetensors")).params


def _first_run(hold: list, cwd: Path) -> AbstractContextManager[HeldRun]:
    return held_train([*TRAIN, "--epochs", str(EPOCHS), "--checkpoint", "ck.safetensors"], hold, cwd)


def _resumed_run(hold: list, cwd: Path) -> AbstractContextManager[HeldRun]:
    return held_train(["--resume", "ck.safetensors", "--no-progress"], hold, cwd)


def _resume(where: Path) -> np.ndarray:
    p = subprocess.run([sys.executable, "-m", "numpynn", "train", "--resume", "ck.safetensors",
                        "--no-progress", "--save", "resumed.safetensors"],
                       cwd=where, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    return nn.load(str(where / "resumed.safetensors")).params


def _epoch_of(ck: Path) -> int:
    net, _, done, _ = load_checkpoint(str(ck))  # raises if the file is not a whole checkpoint
    assert np.isfinite(net.params).all()
    return done


@pytest.mark.parametrize("hold", [["step", 3, 5], ["write", "ck.safetensors", 3, 0.5]],
                         ids=["mid-epoch", "mid-write"])
@pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"),
                                             (signal.SIGTERM, 143, "terminated")])
def test_signal_saves_a_checkpoint_that_resumes_exactly(sig, code, word, hold, tmp_path, uninterrupted):
    """A signal in the middle of epoch 3 (two checkpoints written, the third epoch's steps half
    done), or while epoch 3's checkpoint is being written: the run stops with the checkpoint of
    the last complete epoch, says how to go on, and going on ends as the unbroken run did."""
    with _first_run(hold, tmp_path) as run:
        run.held()
        run.p.send_signal(sig)
        err = run.end()
    assert run.p.returncode == code, err
    last = err.strip().splitlines()[-1]
    done = 2 if hold[0] == "step" else 3  # rolled back to epoch 2; epoch 3's steps were all done
    assert last.startswith(f"{word}: checkpoint after epoch {done} of {EPOCHS}"), last
    assert "numpynn train --resume ck.safetensors" in last
    assert "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["ck.safetensors"]  # hidden names too: no temporary file left
    assert _epoch_of(tmp_path / "ck.safetensors") == done
    np.testing.assert_array_equal(_resume(tmp_path), uninterrupted)


def test_ctrl_c_reaches_the_run_when_the_suite_was_started_ignoring_it(tmp_path):
    """A test suite started with SIGINT ignored (a background job of a script, nohup) passes that
    on to the runs it starts, which would then never see the tests' Ctrl-C; the held runs
    restore it, so the interruption tests hold wherever the suite runs."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run inherits it when it starts
    try:
        with _first_run(["step", 1, 2], tmp_path) as run:
            signal.signal(signal.SIGINT, previous)
            run.held()
            run.p.send_signal(signal.SIGINT)
            err = run.end(timeout=120)  # a run that ignored it would wait here for good
    finally:
        signal.signal(signal.SIGINT, previous)
    assert run.p.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("interrupted: checkpoint after epoch 0"), err


def _kill_inside_a_write(run: HeldRun, folder: Path, old: int) -> None:
    """Kill the run held inside a checkpoint write; the checkpoint on disk must be a whole one:
    the old one (``old`` epochs) or the new one (``old + 1``); the interrupted write's
    temporary file may stay (kill -9 leaves it no chance), and is then all that is left over."""
    said = json.loads(run.held())
    run.p.kill()
    err = run.end()
    assert run.p.returncode == -signal.SIGKILL, err
    assert _epoch_of(folder / "ck.safetensors") in (old, old + 1), said
    left = sorted(set(os.listdir(folder)) - {"ck.safetensors"})  # hidden names too
    assert left == [said["file"]] and said["file"].startswith(".ck.safetensors.") and \
        said["file"].endswith(".tmp"), (left, said)
    assert (folder / said["file"]).stat().st_size == said["written"]  # the kill landed inside it
    an_hour_ago = time.time() - 3600  # as if left long ago: the next run's writer removes it
    os.utime(folder / said["file"], (an_hour_ago, an_hour_ago))


def test_sigkill_inside_writes_and_epochs_never_corrupts_the_checkpoint(tmp_path, uninterrupted):
    """Kill -9 three times in a row (the first run, then each resumed one): inside the write of
    epoch 3's checkpoint, after a random part of its bytes; in the middle of epoch 5; inside the
    write of epoch 7's checkpoint, before any byte. The checkpoint on disk is always whole (the
    old one or the new one), left-over temporary files (hidden ones included) are only those of
    killed writes, and resuming ends exactly as an unbroken run."""
    rng = np.random.default_rng(0)
    ck = tmp_path / "ck.safetensors"
    with _first_run(["write", "ck.safetensors", 3, float(rng.uniform(0.05, 0.95))], tmp_path) as run:
        _kill_inside_a_write(run, tmp_path, old=2)

    with _resumed_run(["step", 5, 1 + int(rng.integers(20))], tmp_path) as run:
        run.held()
        run.p.kill()
        err = run.end()
    assert run.p.returncode == -signal.SIGKILL, err
    assert sorted(os.listdir(tmp_path)) == ["ck.safetensors"]  # the stale temporary file is gone
    assert _epoch_of(ck) == 4  # the resumed run checkpointed its epochs up to 4

    with _resumed_run(["write", "ck.safetensors", 3, 0.0], tmp_path) as run:  # epoch 7's
        _kill_inside_a_write(run, tmp_path, old=6)

    np.testing.assert_array_equal(_resume(tmp_path), uninterrupted)
    assert sorted(os.listdir(tmp_path)) == ["ck.safetensors", "resumed.safetensors"]
