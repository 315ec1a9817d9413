"""The fused training kernels, compiled ahead of time by numba into a small extension module.

Why ahead of time: numba's just-in-time compiler keeps LLVM in the process, about
125 MB of memory for two tiny loops. Compiled once with ``numba.pycc`` into the
user's cache folder, the same loops load as an ordinary extension module of about
0.7 MB that needs neither numba nor LLVM at run time.

- :func:`load` imports the module from the cache, or returns None.
- :func:`build` compiles it in a separate process (so the compiler's memory never
  enters the training process) in a scratch folder, about 10 s, once per machine,
  Python and numba version, then copies it into the cache atomically. It needs
  numba and a C compiler; without numba it returns None and training uses the
  NumPy kernels. A build that fails (no C compiler, a full disk, a file-size
  limit) says so once and returns None; a cache that cannot take the module (a
  full disk, a read-only folder) says so once and the module is used from the
  scratch folder, uncached.

``python -m numpynn._aot`` builds it by hand and prints where it went.

The loops are the same arithmetic as the NumPy reference in :mod:`numpynn._kernels`,
in the same order, with IEEE semantics (no fast-math): the tests check that both
give the same bits.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.machinery
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import numpy as np

MODULE = "_numpynn_fused"
SIGNATURES = {
    # m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;  θ ← θ − (m / (√v + ε')) · step
    "adam_f4": "void(f4[::1], f4[::1], f4[::1], f4[::1], f4, f4, f4, f4, f4, f4)",
    "adam_f8": "void(f8[::1], f8[::1], f8[::1], f8[::1], f8, f8, f8, f8, f8, f8)",
    # δ = ∂C/∂a ⊙ a ⊙ (1 − a), over ∂C/∂a
    "sigmoid_delta_f4": "void(f4[:, ::1], f4[:, ::1], f4)",
    "sigmoid_delta_f8": "void(f8[:, ::1], f8[:, ::1], f8)",
}


def adam(p, g, m, v, b1, c1, b2, c2, s, e):  # pragma: no cover - compiled by numba
    for i in range(p.shape[0]):
        gi = g[i]
        mi = b1 * m[i] + c1 * gi  # m ← β₁m + (1 − β₁)g
        vi = b2 * v[i] + c2 * (gi * gi)  # v ← β₂v + (1 − β₂)g²
        m[i] = mi
        v[i] = vi
        p[i] -= mi / (np.sqrt(vi) + e) * s  # θ ← θ − step · m / (√v + eps)


def sigmoid_delta(g, a, one):  # pragma: no cover - compiled by numba
    for i in range(g.shape[0]):
        for j in range(g.shape[1]):
            aij = a[i, j]
            g[i, j] = g[i, j] * aij * (one - aij)  # δ = ∂C/∂a ⊙ a ⊙ (1 − a)


def _cpu_fingerprint() -> str:
    """The compiled code is tuned for this CPU: its cache entry must not be used on another."""
    flags = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith(("flags", "model name", "Features", "CPU part")):
                flags += line
            if line.strip() == "" and flags:
                break
    return flags or platform.processor() or platform.machine()


def kernel_dir() -> Path:
    """Where the compiled module for this Python, numba, CPU and kernel source lives."""
    import platformdirs

    try:
        from importlib.metadata import version

        numba_version = version("numba")
    except Exception:  # noqa: BLE001 - numba absent or unreadable metadata: no cache entry
        numba_version = "none"
    source = Path(__file__).read_bytes()
    key = hashlib.sha256(source + _cpu_fingerprint().encode() + numba_version.encode()).hexdigest()[:16]
    root = Path(os.environ.get("NUMPYNN_KERNEL_CACHE") or platformdirs.user_cache_dir("numpynn"))
    return root / "kernels" / f"{sys.implementation.cache_tag}-{platform.machine()}-{key}"


def _module_file(folder: Path) -> Path | None:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = folder / f"{MODULE}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def load() -> ModuleType | None:
    """The compiled module from the cache, or None if it is not there or does not load."""
    path = _module_file(kernel_dir())
    return None if path is None else _load_file(path)


def build(timeout: float = 600.0) -> ModuleType | None:
    """Compile the module in a child process, cache it and load it; None if it cannot be built."""
    if importlib.util.find_spec("numba") is None:
        return None
    from .errors import WriteError

    target = kernel_dir()
    package_root = str(Path(__file__).resolve().parents[1])  # so the child finds this numpynn
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)}
    try:
        scratch = Path(tempfile.mkdtemp(prefix="numpynn-kernels-"))
    except OSError as e:
        _warn(f"could not build the fast training kernels ({WriteError.of(tempfile.gettempdir(), e)})")
        return None
    try:
        built = scratch / target.name
        try:
            done = subprocess.run([sys.executable, "-m", "numpynn._aot", str(built)],
                                  capture_output=True, text=True, timeout=timeout, env=env)
        except (OSError, subprocess.SubprocessError) as e:
            _warn(f"could not build the fast training kernels ({_one_line(e)})")
            return None
        module_file = _module_file(built)
        if done.returncode != 0 or module_file is None:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            why = _one_line(lines[-1]) if lines else f"exit code {done.returncode}, no module"
            _warn(f"could not build the fast training kernels ({why})")
            return None
        try:
            _install(module_file, target)
        except WriteError as e:
            _warn(f"{e}: the fast training kernels are used this time but not cached, so they are "
                  "compiled again next time (set NUMPYNN_KERNEL_CACHE to a writable folder)", numpy=False)
            return _load_file(module_file)  # a loaded extension module no longer needs its file
        return load()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _install(module_file: Path, target: Path) -> None:
    """Copy the built module into the cache folder ``target``: into a fresh folder beside
    it, renamed into place, so a reader never sees half a module; a
    :class:`~numpynn.errors.WriteError` (and nothing left) if the cache cannot take it."""
    from ._io import atomic_write_bytes, make_folder
    from .errors import WriteError

    make_folder(target.parent)
    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as e:
        raise WriteError.of(target, e) from None
    try:
        atomic_write_bytes(stage / module_file.name, module_file.read_bytes())
        try:
            stage.rename(target)
        except OSError as e:
            if _module_file(target) is None:
                raise WriteError.of(target, e) from None
            shutil.rmtree(stage, ignore_errors=True)  # another process finished first: use its module
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _load_file(path: Path) -> ModuleType | None:
    try:
        spec = importlib.util.spec_from_file_location(MODULE, path)
        if spec is None or spec.loader is None:
            return None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except (ImportError, OSError):
        return None
    return module if all(hasattr(module, name) for name in SIGNATURES) else None


_warned: set[str] = set()


def _warn(text: str, numpy: bool = True) -> None:
    """Say on stderr, once per process, why the cache or the build failed."""
    line = f"numpynn: warning: {text}" + ("; training with the NumPy kernels" if numpy else "")
    if line not in _warned:
        _warned.add(line)
        print(line, file=sys.stderr, flush=True)


def _one_line(text: object) -> str:
    """One short line: a failed compiler command as its program and exit status."""
    line = " ".join(str(text).split())
    command = re.search(r"Command '\['([^']+)'.*(exit status -?\d+)", line)
    if command:
        return f"{Path(command.group(1)).name} failed with {command.group(2)}"
    return line if len(line) <= 300 else line[:297] + "..."


def _compile(target: Path) -> Path:
    """Compile into a fresh folder next to ``target``, then rename it into place, so a
    reader never sees half a module and two builders never clash."""
    import warnings

    import numba.pycc.compiler as pycc_compiler
    from numba.core.compiler import Flags
    from numba.pycc import CC

    class NumpyErrorModel(Flags):
        """Division without Python's zero check (NumPy semantics), so the loops vectorise."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.error_model = "numpy"

    pycc_compiler.Flags = NumpyErrorModel
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        cc = CC(MODULE)
        cc.output_dir = str(scratch)
        cc.target_cpu = "host"
        cc.verbose = False
        for name, signature in SIGNATURES.items():
            cc.export(name, signature)(adam if name.startswith("adam") else sigmoid_delta)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cc.compile()
        for leftover in scratch.iterdir():  # keep only the module itself
            if not leftover.name.startswith(MODULE):
                shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink()
        try:
            scratch.rename(target)
        except OSError:  # another process finished first: use its module
            shutil.rmtree(scratch, ignore_errors=True)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return target


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else kernel_dir()
    if _module_file(folder) is None:
        _compile(folder)
    print(_module_file(folder))
