"""The element-wise hot spots of training, in two interchangeable forms.

- ``numpy``: the readable reference, plain NumPy ufuncs with ``out=``.
- ``numba``: the same arithmetic as one compiled loop per kernel, so each
  element is read and written once instead of once per ufunc pass: the Adam
  update (about 3-4x faster here on the 110,000 parameters of 784-128-64-10)
  and the sigmoid delta. numba compiles them ahead of time into a small
  extension module in the user's cache folder (see :mod:`numpynn._aot`), once;
  training then loads that module and needs neither numba nor LLVM in memory.
  Used when numba is installed (``pip install 'numpynn[fast]'``).

Both give the same values: the compiled loops keep IEEE semantics (no
fast-math) and the order of the reference's operations, and the tests check
that both backends give the same bits. The sigmoid itself stays in NumPy, whose
vectorised ``tanh`` is faster than a compiled scalar loop.

``use("numpy")`` (or ``NUMPYNN_KERNELS=numpy`` in the environment) forces the
reference path. The compiled module is looked for (and, the first time, built)
on the first training step, never by ``import numpynn`` or by inference.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType

import numpy as np

Array = np.ndarray

_requested = os.environ.get("NUMPYNN_KERNELS", "auto").strip().lower() or "auto"
_backend: str | None = None  # resolved on first use
_fused: ModuleType | None = None  # the compiled module, once loaded


def use(backend: str) -> str:
    """Choose ``"numpy"``, ``"numba"`` or ``"auto"``; returns the previous backend."""
    global _requested, _backend
    if backend not in ("numpy", "numba", "auto"):
        raise ValueError(f"unknown kernel backend {backend!r}: use numpy, numba or auto")
    previous = backend_name()
    _requested, _backend = backend, None
    _resolve()
    return previous


_build_failed = False


def _load_fused() -> ModuleType | None:
    """The compiled module: from the cache, else built once (unless that failed before)."""
    global _fused, _build_failed
    if _fused is None and not _build_failed:
        from . import _aot

        _fused = _aot.load()
        if _fused is None and importlib.util.find_spec("numba") is not None:
            if sys.stderr is not None and sys.stderr.isatty():
                print("numpynn: compiling the fast training kernels with numba, once (about 10 s)",
                      file=sys.stderr, flush=True)
            _fused = _aot.build()
        _build_failed = _fused is None
    return _fused


def _resolve() -> str:
    global _backend
    if _backend is None:
        if _requested == "numpy":
            _backend = "numpy"
        elif _load_fused() is not None:
            _backend = "numba"
        elif _requested == "numba":
            _backend = None
            raise ImportError("the numba kernels are not available: pip install 'numpynn[fast]' "
                              "(numba and a C compiler are needed to build them once)")
        else:
            _backend = "numpy"
    return _backend


def backend_name() -> str:
    """The backend in use (``"numpy"`` or ``"numba"``), resolving ``auto``."""
    return _resolve()


def available() -> list[str]:
    """Backends that can run here (building the compiled kernels if need be)."""
    return ["numpy", "numba"] if _load_fused() is not None else ["numpy"]


def sigmoid(z: Array, out: Array) -> Array:
    """a = σ(z) = ½ tanh(z/2) + ½, into ``out``; (B, n). Never overflows."""
    np.multiply(z, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def _fused_ok(*arrays: Array) -> bool:
    """The compiled loops take C-contiguous float32 or float64 arrays of one dtype."""
    dtype = arrays[0].dtype
    return dtype in (np.float32, np.float64) and all(
        a.dtype == dtype and a.flags.c_contiguous for a in arrays)


def sigmoid_delta(grad_a: Array, a: Array) -> Array:
    """δ = ∂C/∂a ⊙ a ⊙ (1 − a), written over ``grad_a``; (B, n)."""
    if _resolve() == "numba" and _fused is not None and grad_a.ndim == 2 and _fused_ok(grad_a, a):
        kernel = _fused.sigmoid_delta_f4 if a.dtype == np.float32 else _fused.sigmoid_delta_f8
        kernel(grad_a, a, a.dtype.type(1))
        return grad_a
    grad_a *= a
    grad_a *= 1 - a
    return grad_a


def adam_update(
    params: Array, grads: Array, m: Array, v: Array,
    beta1: float, beta2: float, step: float, eps: float,
) -> None:
    """One Adam update, in place, with the bias corrections folded into the scalars:

    m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;  θ ← θ − step · m / (√v + eps).

    All arrays are flat and of one dtype; ``grads`` may be overwritten.
    """
    t = params.dtype.type
    b1, c1, b2, c2, s, e = t(beta1), t(1.0 - beta1), t(beta2), t(1.0 - beta2), t(step), t(eps)
    g = grads
    if _resolve() == "numba" and _fused is not None and params.ndim == 1 and _fused_ok(params, g, m, v):
        kernel = _fused.adam_f4 if params.dtype == np.float32 else _fused.adam_f8
        kernel(params, g, m, v, b1, c1, b2, c2, s, e)
        return
    m *= b1  # m ← β₁m + (1 − β₁)g
    m += c1 * g
    np.multiply(g, g, out=g)  # v ← β₂v + (1 − β₂)g²
    g *= c2
    v *= b2
    v += g
    np.sqrt(v, out=g)  # θ ← θ − step · m / (√v + eps)
    g += e
    np.divide(m, g, out=g)
    g *= s
    params -= g
