"""The compiled training kernels: same bits as the NumPy reference, built once, no numba at run time."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from numpynn import _aot, _kernels

needs_numba = pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="numba not installed")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_kernels_give_the_reference_bits(dtype):
    if "numba" not in _kernels.available():
        pytest.skip("compiled kernels not available here")
    rng = np.random.default_rng(1)
    n = 10_007
    p, g = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    m, v = (0.1 * rng.standard_normal(n)).astype(dtype), np.abs(rng.standard_normal(n)).astype(dtype)
    a, d = rng.random((64, 33)).astype(dtype), rng.standard_normal((64, 33)).astype(dtype)
    results = {}
    for backend in ("numpy", "numba"):
        previous = _kernels.use(backend)
        try:
            P, M, V = p.copy(), m.copy(), v.copy()
            _kernels.adam_update(P, g.copy(), M, V, 0.9, 0.999, 3e-3, 1e-8)
            D = _kernels.sigmoid_delta(d.copy(), a)
        finally:
            _kernels.use(previous)
        results[backend] = (P, M, V, D)
    for ref, fused in zip(results["numpy"], results["numba"], strict=True):
        np.testing.assert_array_equal(ref, fused)


def test_views_that_are_not_contiguous_fall_back_to_numpy():
    rng = np.random.default_rng(2)
    a = rng.random((8, 10)).astype(np.float32)
    g = rng.standard_normal((8, 20)).astype(np.float32)[:, ::2]  # not C-contiguous
    expected = g * a * (1 - a)
    np.testing.assert_allclose(_kernels.sigmoid_delta(g, a), expected, rtol=1e-6)


def test_a_broken_cache_entry_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMPYNN_KERNEL_CACHE", str(tmp_path))
    folder = _aot.kernel_dir()
    folder.mkdir(parents=True)
    import importlib.machinery

    (folder / f"{_aot.MODULE}{importlib.machinery.EXTENSION_SUFFIXES[0]}").write_bytes(b"not a library")
    assert _aot.load() is None


@needs_numba
def test_build_from_scratch_then_train_without_numba_in_memory(tmp_path):
    """A fresh cache: the first training step builds the module in a child process;
    the training process itself never imports numba (nor LLVM)."""
    code = (
        "import sys, numpy as np, numpynn as nn\n"
        "from numpynn import _kernels\n"
        "net = nn.Network([nn.Dense(6, 5, 'sigmoid'), nn.Dense(5, 3, 'softmax')], seed=0)\n"
        "x = np.random.default_rng(0).random((40, 6)); y = np.arange(40) % 3\n"
        "net.fit(x, y, epochs=2, batch_size=8, progress=False)\n"
        "print(_kernels.backend_name(), 'numba' in sys.modules, 'llvmlite' in sys.modules)\n"
    )
    env = {**os.environ, "NUMPYNN_KERNEL_CACHE": str(tmp_path), "NUMPYNN_KERNELS": "auto"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["numba", "False", "False"]
    assert list(tmp_path.glob(f"kernels/*/{_aot.MODULE}*")), "the module was not cached"
