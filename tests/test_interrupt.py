"""Interruption loses nothing: Ctrl-C, SIGTERM and SIGKILL during `numpynn train --checkpoint`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import numpynn as nn
from numpynn.serialization import load_checkpoint

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")

EPOCHS = "16"  # three kills, each two or three epochs after the last, fall inside the run
TRAIN = ["--data", "mnist-sample", "--shift", "0", "--no-progress", "--no-download"]


def _train(*extra: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "numpynn", "train", *TRAIN, *extra], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> np.ndarray:
    """The weights of a run that was never interrupted."""
    where = tmp_path_factory.mktemp("full")
    p = _train("--epochs", EPOCHS, "--save", "full.safetensors", cwd=where)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    return nn.load(str(where / "full.safetensors")).params


def _resume(where: Path) -> np.ndarray:
    p = subprocess.run([sys.executable, "-m", "numpynn", "train", "--resume", "ck.safetensors",
                        "--no-progress", "--save", "resumed.safetensors"],
                       cwd=where, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return nn.load(str(where / "resumed.safetensors")).params


@pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"),
                                             (signal.SIGTERM, 143, "terminated")])
def test_signal_saves_a_checkpoint_that_resumes_exactly(sig, code, word, tmp_path, uninterrupted):
    p = _train("--epochs", EPOCHS, "--checkpoint", "ck.safetensors", cwd=tmp_path)
    _wait_for(tmp_path / "ck.safetensors")  # after the first epoch
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    assert p.returncode == code, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"{word}: checkpoint after epoch")
    assert "numpynn train --resume ck.safetensors" in last
    assert "Traceback" not in err
    _, _, done, _ = load_checkpoint(str(tmp_path / "ck.safetensors"))
    assert 1 <= done < int(EPOCHS)
    np.testing.assert_array_equal(_resume(tmp_path), uninterrupted)


def _write_mark(path: Path) -> tuple[int, int, int] | None:
    """What changes each time the file is written (replaced): inode, mtime, size."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _wait_for_a_write(path: Path, p: subprocess.Popen, since: tuple | None,
                      timeout: float = 60.0) -> tuple[int, int, int]:
    """Wait until ``path`` is written again (its mark is no longer ``since``) by the
    still-running ``p``."""
    deadline = time.monotonic() + timeout
    while (mark := _write_mark(path)) is None or mark == since:
        assert p.poll() is None, f"training ended (exit {p.returncode}) before writing {path.name}"
        assert time.monotonic() < deadline, f"{path} was not written within {timeout:.0f} s"
        time.sleep(0.002)
    return mark


def _kill_during_a_later_epoch(p: subprocess.Popen, ck: Path, rng: np.random.Generator) -> None:
    """Let the run write its checkpoint twice (two epochs done), then SIGKILL it at a
    random moment of the next epoch and a half: while it trains, or while it writes the
    next checkpoint (at about one epoch), or in the epoch after."""
    first = _wait_for_a_write(ck, p, _write_mark(ck))
    t1 = time.monotonic()
    _wait_for_a_write(ck, p, first)
    epoch = time.monotonic() - t1
    time.sleep(float(rng.uniform(0.0, 1.5 * epoch)))
    p.send_signal(signal.SIGKILL)
    _, err = p.communicate(timeout=60)
    assert p.returncode == -signal.SIGKILL, f"the run ended before the kill (exit {p.returncode}): {err}"


def test_sigkill_at_random_moments_never_corrupts_the_checkpoint(tmp_path, uninterrupted):
    """Kill -9 at random moments of a running training, three times in a row (the first
    run, then each resumed one): the checkpoint on disk is always whole (the old one or
    the new one), never half-written, and resuming from it ends exactly as an unbroken run."""
    rng = np.random.default_rng(0)
    ck = tmp_path / "ck.safetensors"
    epochs_seen = [0]
    for _ in range(3):
        if ck.exists():
            p = subprocess.Popen([sys.executable, "-m", "numpynn", "train", "--resume",
                                  "ck.safetensors", "--no-progress"], cwd=tmp_path,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        else:
            p = _train("--epochs", EPOCHS, "--checkpoint", "ck.safetensors", cwd=tmp_path)
        _kill_during_a_later_epoch(p, ck, rng)
        assert not [f for f in os.listdir(tmp_path) if f.endswith(".safetensors")
                    and f != "ck.safetensors" and not f.startswith(".")]
        _, _, done, _ = load_checkpoint(str(ck))  # always loads
        assert epochs_seen[-1] < done < int(EPOCHS), (epochs_seen, done)  # killed mid-run, after progress
        epochs_seen.append(done)
    print(f"killed with {epochs_seen[1:]} of {EPOCHS} epochs checkpointed")
    # every time: resuming the thrice-killed run ends exactly where the unbroken one did
    np.testing.assert_array_equal(_resume(tmp_path), uninterrupted)
