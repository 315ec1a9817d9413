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

EPOCHS = "10"
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


def test_sigkill_at_random_moments_never_corrupts_the_checkpoint(tmp_path, uninterrupted):
    """Kill -9 at random moments: the checkpoint on disk is always whole (the old one or the
    new one), never half-written, and resuming from it ends exactly as an unbroken run."""
    rng = np.random.default_rng(0)
    epochs_seen = []
    for _ in range(4):
        if (tmp_path / "ck.safetensors").exists():
            p = subprocess.Popen([sys.executable, "-m", "numpynn", "train", "--resume",
                                  "ck.safetensors", "--no-progress"], cwd=tmp_path,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        else:
            p = _train("--epochs", EPOCHS, "--checkpoint", "ck.safetensors", cwd=tmp_path)
            _wait_for(tmp_path / "ck.safetensors")
        time.sleep(float(rng.uniform(0.3, 2.5)))
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=60)
        assert not [f for f in os.listdir(tmp_path) if f.endswith(".safetensors")
                    and f != "ck.safetensors" and not f.startswith(".")]
        if (tmp_path / "ck.safetensors").exists():
            _, _, done, _ = load_checkpoint(str(tmp_path / "ck.safetensors"))  # always loads
            epochs_seen.append(done)
            if done >= int(EPOCHS):
                break
    assert epochs_seen, "no checkpoint was ever written"
    assert epochs_seen == sorted(epochs_seen)
    if epochs_seen[-1] < int(EPOCHS):
        np.testing.assert_array_equal(_resume(tmp_path), uninterrupted)
