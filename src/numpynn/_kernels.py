"""The element-wise hot spots of training, in two interchangeable forms.

- ``numpy``: the readable reference, plain NumPy ufuncs with ``out=``.
- ``numexpr``: the same expressions evaluated by numexpr in one pass over
  memory per output (no temporaries), used when numexpr is installed
  (``pip install 'numpynn[fast]'``).

Both give the same values up to floating-point rounding; the tests run each
kernel both ways and compare. ``use("numpy")`` forces the reference path.
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray

try:  # optional accelerator
    import numexpr as _ne
except ImportError:  # pragma: no cover - depends on the environment
    _ne = None

_backend = "numpy"


def use(backend: str) -> str:
    """Choose ``"numpy"``, ``"numexpr"`` or ``"auto"``; returns the previous backend."""
    global _backend
    previous = _backend
    if backend == "auto":
        backend = "numexpr" if _ne is not None else "numpy"
    if backend not in ("numpy", "numexpr"):
        raise ValueError(f"unknown kernel backend {backend!r}: use numpy, numexpr or auto")
    if backend == "numexpr" and _ne is None:
        raise ImportError("numexpr is not installed: pip install 'numpynn[fast]'")
    _backend = backend
    return previous


def backend() -> str:
    """The backend in use: ``"numpy"`` or ``"numexpr"``."""
    return _backend


def sigmoid(z: Array, out: Array) -> Array:
    """a = σ(z) = ½ tanh(z/2) + ½, into ``out``; (B, n)."""
    if _backend == "numexpr":
        half = z.dtype.type(0.5)
        return _ne.evaluate("half * tanh(half * z) + half", out=out, casting="same_kind")
    np.multiply(z, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def sigmoid_delta(grad_a: Array, a: Array) -> Array:
    """δ = ∂C/∂a ⊙ a ⊙ (1 − a), written over ``grad_a``; (B, n)."""
    if _backend == "numexpr":
        one = a.dtype.type(1.0)
        return _ne.evaluate("grad_a * a * (one - a)", out=grad_a, casting="same_kind")
    grad_a *= a
    grad_a -= grad_a * a
    return grad_a


def adam_update(
    params: Array, grads: Array, m: Array, v: Array,
    beta1: float, beta2: float, step: float, eps: float,
) -> None:
    """One Adam update, in place, with the bias corrections folded into the scalars:

    m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;  θ ← θ − step · m / (√v + eps).

    ``grads`` may be overwritten.
    """
    t = params.dtype.type
    b1, c1, b2, c2, s, e = t(beta1), t(1.0 - beta1), t(beta2), t(1.0 - beta2), t(step), t(eps)
    g = grads
    if _backend == "numexpr":
        _ne.evaluate("b1 * m + c1 * g", out=m, casting="same_kind")
        _ne.evaluate("b2 * v + c2 * g * g", out=v, casting="same_kind")
        _ne.evaluate("params - s * m / (sqrt(v) + e)", out=params, casting="same_kind")
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
