"""Holding a ``numpynn train`` run at a chosen point, by an event, never by a clock.

Used by the interruption tests (tests/test_interrupt.py, tests/test_convnet.py,
tests/test_resnet.py): a run stops where the test asks, says so on a pipe, and waits
until the test releases, signals or kills it.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# --- holding a run at a chosen point ------------------------------------------------------------
# The run is `python -m numpynn train ...` started through this bootstrap (test code only: the
# library has no hook), which stops it at one chosen point, says so on a pipe, and waits there
# until the test releases it (a byte on a second pipe) or signals or kills it. The points:
#   ["step", e, b]         before batch b of epoch e (both from 1): in the middle of an epoch
#   ["write", name, n, f]  inside the n-th file opened for writing whose name contains `name`
#                          (the checkpoint of this run's n-th epoch, or its temporary file), on
#                          its first write, after a fraction f of that write's bytes are written
#                          and flushed; writes by other means (os.write, native code) are not
#                          seen, and the test then fails with "never reached" instead of passing
_BOOTSTRAP = r"""
import io, json, os, runpy, signal, sys, builtins
# Ctrl-C raises KeyboardInterrupt, as in a run started from a terminal, even where the test suite
# itself was started with SIGINT ignored (a background job of a script, nohup), which the run
# would otherwise inherit and keep: a test's SIGINT would then never arrive
signal.signal(signal.SIGINT, signal.default_int_handler)
# a run that does not end after the test's signal is asked (SIGUSR1) to print every thread's stack
import faulthandler; faulthandler.register(signal.SIGUSR1, all_threads=True)
say, wait = map(int, os.environ.pop("NUMPYNN_TEST_HOLD_FDS").split(","))
kind, *where = json.loads(os.environ.pop("NUMPYNN_TEST_HOLD"))

def hold(what):
    os.write(say, (what + "\n").encode())
    os.read(wait, 1)  # until released; a signal arrives here

if kind == "step":
    from numpynn import training
    epoch, batch = where
    run_epoch, step, now = training._run_epoch, training._step, [0, 0]
    def _run_epoch(net, run, e, *rest):
        now[:] = [e + 1, 0]
        return run_epoch(net, run, e, *rest)
    def _step(*args):
        now[1] += 1
        if now == [epoch, batch]:
            hold(f"before batch {batch} of epoch {epoch}")
        return step(*args)
    training._run_epoch, training._step = _run_epoch, _step
elif kind == "write":
    name, nth, fraction = where
    real_open, opened = io.open, [0]
    class Held:
        def __init__(self, f, path):
            self._f, self._path, self._held = f, path, False
        def write(self, data):
            if self._held:
                return self._f.write(data)
            self._held = True
            view = memoryview(data).cast("B")
            k = int(len(view) * fraction)
            self._f.write(view[:k])
            self._f.flush()
            hold(json.dumps({"file": os.path.basename(self._path), "written": k, "of": len(view)}))
            return k + self._f.write(view[k:])
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return self._f.__exit__(*exc)
        def __getattr__(self, attr):
            return getattr(self._f, attr)
    def opener(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        if not any(c in mode for c in "wax+"):
            return f
        path = os.readlink(f"/proc/self/fd/{file}") if isinstance(file, int) else os.fspath(file)
        if name in os.path.basename(path):
            opened[0] += 1
            if opened[0] == nth:
                return Held(f, path)
        return f
    io.open = builtins.open = opener  # os.fdopen and pathlib open files through io.open
else:
    sys.exit(f"unknown hold {kind!r}")
runpy.run_module("numpynn", run_name="__main__", alter_sys=True)
"""


class HeldRun:
    """A ``numpynn train`` run in ``cwd`` that stops at ``hold`` (see ``_BOOTSTRAP``) and waits."""

    def __init__(self, args: list[str], hold: list, cwd: Path) -> None:
        say_r, say_w = os.pipe()
        wait_r, wait_w = os.pipe()
        env = {**os.environ, "NUMPYNN_TEST_HOLD": json.dumps(hold), "NUMPYNN_TEST_HOLD_FDS": f"{say_w},{wait_r}"}
        self.hold = hold
        self.p = subprocess.Popen([sys.executable, "-c", _BOOTSTRAP, "train", *args], cwd=cwd, env=env,
                                  pass_fds=(say_w, wait_r), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        os.close(say_w)
        os.close(wait_r)
        self._say, self._wait = say_r, wait_w

    def held(self, timeout: float = 600.0) -> str:
        """Wait until the run says it is held (the timeout only stops a hung test: the run
        announces the hold itself, however slow the machine); what it said."""
        said = b""
        while not said.endswith(b"\n"):
            ready, _, _ = select.select([self._say], [], [], timeout)
            if not ready:
                self.p.kill()
                pytest.fail(f"the run did not reach {self.hold} within {timeout:.0f} s")
            chunk = os.read(self._say, 4096)
            if not chunk:  # the run ended: it never reached the hold
                _, err = self.p.communicate(timeout=60)
                pytest.fail(f"the run ended (exit {self.p.returncode}) and never reached {self.hold}:\n{err}")
            said += chunk
        return said.decode().strip()

    def end(self, timeout: float = 300.0) -> str:
        """Wait for the run to end (after a signal, a kill or a release); its stderr. A run still
        going after ``timeout`` is a failure that shows where each of its threads stood."""
        try:
            _, err = self.p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.send_signal(signal.SIGUSR1)  # faulthandler: every thread's stack to stderr
            try:
                self.p.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            self.p.kill()
            _, err = self.p.communicate()  # all of stderr: a retried communicate loses nothing
            pytest.fail(f"the run did not end within {timeout:.0f} s; its stderr and threads:\n{err}")
        return err

    def close(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.communicate()
        for fd in (self._say, self._wait):
            os.close(fd)


@contextmanager
def held_train(args: list[str], hold: list, cwd: Path) -> Iterator[HeldRun]:
    run = HeldRun(args, hold, cwd)
    try:
        yield run
    finally:
        run.close()
