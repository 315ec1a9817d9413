"""The element-wise hot spots of training, in two interchangeable forms.

- ``numpy``: the readable reference, plain NumPy ufuncs with ``out=``.
- ``numba``: the same arithmetic as one compiled loop per kernel, so each
  element is read and written once instead of once per ufunc pass. Used
  when numba is installed (``pip install 'numpynn[fast]'``) for the two
  kernels where it pays: the Adam update (about 4x faster here on the
  110,000 parameters of 784-128-64-10) and the sigmoid delta.

Both give the same values: the compiled loops keep IEEE semantics (no
fast-math), so results match the reference to the last bit or within an ulp;
the tests run every kernel both ways. The sigmoid itself stays in NumPy, whose
vectorised ``tanh`` is faster than a compiled scalar loop.

``use("numpy")`` (or ``NUMPYNN_KERNELS=numpy`` in the environment) forces the
reference path. numba is imported on the first training step, never by
``import numpynn`` or by inference.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

Array = np.ndarray

_requested = os.environ.get("NUMPYNN_KERNELS", "auto").strip().lower() or "auto"
_backend: str | None = None  # resolved on first use
_numba_kernels: Any = None


def _load_numba() -> Any:
    """Compile (or load from numba's on-disk cache) the fused loops."""
    import numba

    jit = numba.njit(cache=True, nogil=True, error_model="numpy")

    @jit
    def adam(p, g, m, v, b1, c1, b2, c2, s, e):  # pragma: no cover - compiled
        for i in range(p.shape[0]):
            gi = g[i]
            mi = b1 * m[i] + c1 * gi  # m ← β₁m + (1 − β₁)g
            vi = b2 * v[i] + c2 * (gi * gi)  # v ← β₂v + (1 − β₂)g²
            m[i] = mi
            v[i] = vi
            p[i] -= mi / (np.sqrt(vi) + e) * s  # θ ← θ − step · m / (√v + eps)

    @jit
    def sigmoid_delta(g, a, one):  # pragma: no cover - compiled
        for i in range(g.shape[0]):
            for j in range(g.shape[1]):
                aij = a[i, j]
                g[i, j] = g[i, j] * aij * (one - aij)  # δ = ∂C/∂a ⊙ a ⊙ (1 − a)

    class Kernels:
        pass

    kernels = Kernels()
    kernels.adam, kernels.sigmoid_delta = adam, sigmoid_delta
    return kernels


def use(backend: str) -> str:
    """Choose ``"numpy"``, ``"numba"`` or ``"auto"``; returns the previous backend."""
    global _requested, _backend
    previous = backend_name()
    if backend not in ("numpy", "numba", "auto"):
        raise ValueError(f"unknown kernel backend {backend!r}: use numpy, numba or auto")
    _requested, _backend = backend, None
    if backend == "numba":
        _resolve()
    return previous


def _resolve() -> str:
    global _backend, _numba_kernels
    if _backend is None:
        if _requested == "numpy":
            _backend = "numpy"
        else:
            try:
                if _numba_kernels is None:
                    _numba_kernels = _load_numba()
                _backend = "numba"
            except ImportError:
                if _requested == "numba":
                    raise ImportError("numba is not installed: pip install 'numpynn[fast]'") from None
                _backend = "numpy"
    return _backend


def backend_name() -> str:
    """The backend in use (``"numpy"`` or ``"numba"``), resolving ``auto``."""
    return _resolve()


def available() -> list[str]:
    """Backends that can run here."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return ["numpy"]
    return ["numpy", "numba"]


def sigmoid(z: Array, out: Array) -> Array:
    """a = σ(z) = ½ tanh(z/2) + ½, into ``out``; (B, n). Never overflows."""
    np.multiply(z, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def sigmoid_delta(grad_a: Array, a: Array) -> Array:
    """δ = ∂C/∂a ⊙ a ⊙ (1 − a), written over ``grad_a``; (B, n)."""
    if _resolve() == "numba" and grad_a.ndim == 2 and grad_a.dtype == a.dtype:
        _numba_kernels.sigmoid_delta(grad_a, a, a.dtype.type(1))
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
    if _resolve() == "numba":
        _numba_kernels.adam(params, g, m, v, b1, c1, b2, c2, s, e)
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
