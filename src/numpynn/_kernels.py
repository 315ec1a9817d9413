"""The element-wise hot spots of training, in two interchangeable forms.

- ``numpy``: the readable reference, plain NumPy ufuncs with ``out=``.
- ``c``: the same arithmetic as one C loop per kernel (the extension module
  ``numpynn._fused``, from ``_fused.c``), so each element is read and written once
  instead of once per ufunc pass: the Adam update (about 4x faster here on the
  110,000 parameters of 784-128-64-10), the sigmoid delta, uint8 pixels
  gathered (or shifted) and scaled to floats, ReLU and its delta (about 3.5x and 2.5x
  faster than np.maximum and the product with a flag array), col2im, batch normalization's
  passes over a block of columns (its sums, x̂ and z, and ∂C/∂x: about a third less time
  than the ufunc passes), and max pooling's forward pass
  (about 2.5x faster than its four ufunc passes on a 16-sample shard of the convnet's
  first pool; a NaN sends it to the reference, whose np.maximum keeps the first NaN it
  meets) and its backward pass for windows that do not overlap (about 3x faster than
  the reference's twelve ufunc passes for a 2×2 window). The package's own build compiles it at
  install time (``setup.py``); where that could not be done (no C compiler) the
  install goes on without it and training uses the reference.

Both give the same values: the C loops keep IEEE semantics (no fast-math, no fused
multiply-add) and the order of the reference's operations, and the tests check that
both backends give the same bits. The float32 sigmoid and softmax are built for that:
NumPy's ``exp`` and ``tanh`` are not the same code on every machine and a C loop could not
promise their bits, so :func:`exp32` computes e^x from additions and products, each rounded
to float32, which the C loops repeat (the sigmoid about 3.5x faster than NumPy's ``tanh`` form
here on a 64 × 128 batch, the softmax about 4.5x on 64 × 10: ``benchmarks/micro.py``); float64
keeps NumPy's.

``use("numpy")`` (or ``NUMPYNN_KERNELS=numpy`` in the environment) forces the
reference path; ``use("c")`` insists on the C kernels.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Any

import numpy as np

Array = np.ndarray


def _find_compiled() -> ModuleType | None:
    """The C extension ``numpynn._fused``, wherever the install put it: beside this file (an
    editable install builds it in place, a regular one installs it with the package), else the
    ``_fused`` module of this Python's extension suffix found in a build folder of the source
    tree (``build/lib.*/numpynn``, ``build/__editable__.*/numpynn``: a strict editable install's
    link tree, or ``setup.py build_ext`` without ``--inplace``) or in another ``numpynn``
    folder on ``sys.path``. None where it was not built (no C compiler at install time)."""
    try:
        from . import _fused

        return _fused
    except ImportError:
        if sys.modules.get(f"{__package__}._fused", False) is None:  # blocked on purpose: not built
            return None
    import importlib.machinery
    import importlib.util
    from pathlib import Path

    here = Path(__file__).resolve().parent
    root = here.parent.parent if here.parent.name == "src" else here.parent  # the source tree
    package = sys.modules.get(__package__ or "")
    folders = [Path(p) for p in getattr(package, "__path__", [])]  # an editable finder's mapping
    for pattern in ("lib.*/numpynn", "__editable__.*/numpynn"):
        folders += sorted((root / "build").glob(pattern))
    folders += [Path(p) / "numpynn" for p in sys.path if p]
    seen: set[Path] = set()
    for folder in folders:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            candidate = folder / f"_fused{suffix}"
            if candidate in seen or not candidate.is_file():
                continue
            seen.add(candidate)
            spec = importlib.util.spec_from_file_location(f"{__package__}._fused", candidate)
            if spec is None or spec.loader is None:
                continue
            try:
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            except (ImportError, OSError):  # built for another Python, or a broken file: look on
                continue
            sys.modules[spec.name] = module
            return module
    return None


_compiled = _find_compiled()

BACKENDS = ("numpy", "c", "auto")
_fast: ModuleType | None = None  # the C kernels while they are in use, else None


def use(backend: str) -> str:
    """Choose ``"numpy"``, ``"c"`` or ``"auto"`` (C where built); returns the previous backend."""
    global _fast
    if backend not in BACKENDS:
        raise ValueError(f"unknown kernel backend {backend!r}: use numpy, c or auto")
    if backend == "c" and _compiled is None:
        raise ImportError("the C kernels were not built when numpynn was installed (it needs a C "
                          "compiler): install one and reinstall numpynn, e.g. pip install -e .")
    previous = backend_name()
    _fast = None if backend == "numpy" else _compiled
    return previous


def backend_name() -> str:
    """The backend in use: ``"numpy"`` or ``"c"``."""
    return "c" if _fast is not None else "numpy"


def available() -> list[str]:
    """Backends that can run here: ``numpy`` always, ``c`` where the extension was built."""
    return ["numpy", "c"] if _compiled is not None else ["numpy"]


def _from_environment() -> None:
    requested = os.environ.get("NUMPYNN_KERNELS", "auto").strip().lower() or "auto"
    if requested not in BACKENDS:
        print(f"numpynn: warning: NUMPYNN_KERNELS={requested!r} is not numpy, c or auto; using auto",
              file=sys.stderr)
        requested = "auto"
    if requested == "c" and _compiled is None:
        print("numpynn: warning: NUMPYNN_KERNELS=c but the C kernels were not built; "
              "training with the NumPy kernels", file=sys.stderr)
        requested = "numpy"
    use(requested)


_from_environment()


# --- the kernels ---------------------------------------------------------------------------------


def sigmoid(z: Array, out: Array) -> Array:
    """a = σ(z) = 1/(1 + e^{−z}), into ``out``; (B, n). Never overflows. float32: :func:`sigmoid32`
    (the C loop where it was built); float64: ½ tanh(z/2) + ½."""
    if z.dtype == np.float32 and out.dtype == np.float32:
        if _fast is not None and _c_loop(_fast.sigmoid, z, out):
            return out
        return sigmoid32(z, out)
    np.multiply(z, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


# e^x in float32 from rounded float32 operations alone (the C loops do each one in this order):
# e^x = 2^n e^r with n = rint(x log₂e) and r = x − n ln 2, |r| ≤ ½ ln 2 (Cody and Waite:
# ln 2 = HI + LO, HI with 9 bits so that n·HI is exact); e^r ≈ 1 + r + r² P(r), P from
# Cephes' expf; 2^n written into a float's exponent bits. For x in [−88, 89]: below −87.3,
# n = −127 and 2^n's bits are those of 0 (e^x = 0); from 88.4 on, n = 128 and they are those
# of infinity (e^x = ∞): no underflow or overflow to signal.
_F = np.float32
_LOW, _HIGH = _F(-88.0), _F(89.0)
_LOG2E = _F(float.fromhex("0x1.715476p+0"))  # log₂ e
_ROUND = _F(1.5 * 2**23)  # (y + 1.5·2²³) − 1.5·2²³ = rint(y) for |y| < 2²²; its low bits hold rint(y)
_ROUND_BITS = 0x4B400000  # the bits of 1.5·2²³
_LN2_HI, _LN2_LO = _F(0.693359375), _F(float.fromhex("-0x1.bd0106p-13"))  # ln 2 = HI + LO
_EXP_P = tuple(_F(float.fromhex(h)) for h in (  # P(r) = ((((P₀ r + P₁) r + P₂) r + P₃) r + P₄) r + P₅
    "0x1.a0d2cep-13", "0x1.6e879cp-10", "0x1.111210p-7", "0x1.555382p-5", "0x1.555554p-3", "0x1p-1"))


def exp32(x: Array) -> Array:
    """e^x for float32 x already clipped to [−88, 89] (0 below −87.3, ∞ from 88.4 on), as a
    new array; ``x`` is left as it is."""
    v = np.multiply(x, _LOG2E)  # v = x log₂e + 1.5·2²³: n = rint(x log₂e) = v − 1.5·2²³
    v += _ROUND
    n = np.subtract(v, _ROUND)
    r = np.multiply(n, _LN2_HI)  # r = (x − n·HI) − n·LO = x − n ln 2
    np.subtract(x, r, out=r)
    t = np.multiply(n, _LN2_LO)
    r -= t
    p = np.multiply(r, _EXP_P[0], out=n)  # e^r ≈ ((P(r) · r²) + r) + 1
    p += _EXP_P[1]
    for c in _EXP_P[2:]:
        p *= r
        p += c
    np.multiply(r, r, out=t)
    p *= t
    p += r
    p += _F(1.0)
    two = v.view(np.int32)  # 2^n: exponent field n + 127, from v's low bits (which hold n)
    two -= _ROUND_BITS - 127
    two <<= 23
    p *= two.view(np.float32)  # e^x = e^r 2^n
    return p


def sigmoid32(z: Array, out: Array) -> Array:
    """a = σ(z) = 1/(1 + e^{−z}) for float32 z, into ``out``; (B, n). Within 2.5 units in the
    last place of σ everywhere (``tests/test_activations.py``); the same bits on every
    machine, and from the C loop ``_fused.sigmoid``. Beyond the clip σ is 0 or 1 (σ(88) = 1
    since e^{−88} is far below float32's step at 1; σ(−88.4) = 1/(1 + ∞) = 0)."""
    x = np.negative(z, out=out)  # x = −z, clipped to [−88, 89]: σ = 1/(1 + e^x)
    np.clip(x, _LOW, _HIGH, out=x)
    e = exp32(x)
    e += _F(1.0)
    return np.divide(_F(1.0), e, out=out)  # σ = 1/(1 + e^{−z})


def softmax(z: Array, out: Array) -> Array:
    """a_j = e^{z_j − m} / Σ_k e^{z_k − m}, m = max_k z_k, over the last axis, into ``out``;
    (B, n). float32: e^x by :func:`exp32` and the sum taken column by column from the first (the
    C loop where it was built: the same bits); float64: NumPy's ``exp`` and ``sum``."""
    if z.dtype == np.float32 and out.dtype == np.float32:
        if _fast is not None and _fast.softmax(z, out):
            return out
        x = np.subtract(z, z.max(axis=-1, keepdims=True), out=out)  # x = z − max(z) ≤ 0
        np.clip(x, _LOW, _HIGH, out=x)
        e = exp32(x)
        total = np.add.accumulate(e, axis=-1)[..., -1:]  # Σ_k e^{x_k}, column by column from the first
        return np.divide(e, total, out=out)
    a = np.subtract(z, z.max(axis=-1, keepdims=True), out=out)
    np.exp(a, out=a)
    a /= a.sum(axis=-1, keepdims=True)
    return a


def sigmoid_delta(grad_a: Array, a: Array) -> Array:
    """δ = ∂C/∂a ⊙ a ⊙ (1 − a), written over ``grad_a``; (B, n)."""
    if _fast is not None and _fast.sigmoid_delta(grad_a, a):
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
    if _fast is not None and _fast.adam(params, grads, m, v, beta1, 1.0 - beta1, beta2, 1.0 - beta2,
                                        step, eps):
        return
    t = params.dtype.type
    b1, c1, b2, c2, s, e = t(beta1), t(1.0 - beta1), t(beta2), t(1.0 - beta2), t(step), t(eps)
    g = grads
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


def _c_loop(loop: Any, *arrays: Array) -> bool:
    """``loop(*arrays)`` (an element-wise C loop), on the arrays as they are when they are
    C-contiguous, else on their views in memory order; False where it did not do the work."""
    if loop(*arrays):  # the C loop takes C-contiguous arrays of one shape as they are
        return True
    if all(a.flags.c_contiguous for a in arrays):  # not for it (a dtype, a NaN for relu)
        return False
    flat = _in_memory_order(*arrays)
    return flat is not None and loop(*flat)


def _in_memory_order(*arrays: Array) -> tuple[Array, ...] | None:
    """1-D views of arrays of one shape and one layout, their elements in memory order (e.g. the
    (B, C, H, W) view of channels-last memory), for an element-wise C loop; None where they are
    laid out differently or do not fill one block of memory."""
    first = arrays[0]
    if any(a.shape != first.shape or a.strides != first.strides for a in arrays[1:]):
        return None
    axes = sorted(range(first.ndim), key=lambda i: -abs(first.strides[i]))
    views = tuple(a.transpose(axes) for a in arrays)
    if not views[0].flags.c_contiguous:
        return None
    return tuple(v.reshape(-1) for v in views)


def relu(z: Array, out: Array) -> Array:
    """a = max(z, 0) into ``out``, as ``np.maximum(z, 0)``: −0 gives +0, a NaN stays; returns ``out``.
    The C loop is about 3.5x faster on a batch norm's 802,816 values; a NaN sends it to the reference."""
    if _fast is not None and z is not out and _c_loop(_fast.relu, z, out):
        return out
    return np.maximum(z, 0, out=out)


def relu_delta(grad_a: Array, z: Array) -> Array:
    """δ = ∂C/∂a ⊙ 1[z > 0], written over ``grad_a`` (a product with the 0/1 flag, not a masked
    assignment: about 15x faster, and −0 and NaN as the product gives them); returns ``grad_a``."""
    if _fast is not None and _c_loop(_fast.relu_delta, grad_a, z):
        return grad_a
    return np.multiply(grad_a, z > 0, out=grad_a)


def gather_scale(x: Array, rows: Array, scale: float, out: Array) -> Array:
    """``out`` = x[rows] · scale: uint8 pixel rows gathered by index and scaled to ``out``'s
    float dtype, in one pass; returns ``out``."""
    if _fast is not None and _fast.gather_scale(x, rows, scale, out):
        return out
    return np.multiply(np.take(x, rows, axis=0), out.dtype.type(scale), out=out)


def shift_scale(images: Array, dy: Array, dx: Array, scale: float, out: Array) -> Array:
    """``out[i]`` = image ``i`` moved by (dy[i], dx[i]) pixels, times ``scale``; pixels moved in
    from outside are 0. ``images`` and ``out`` are (n, h, w); returns ``out``.

    The rows that share a shift move together: one slice assignment per distinct shift,
    out[rows, y, x] = images[rows, y − dy, x − dx], never a loop over rows or pixels.
    """
    if _fast is not None and _fast.shift_scale(images, dy, dx, scale, out):
        return out
    n, h, w = images.shape
    out[...] = 0
    k = int(max(np.abs(dy).max(initial=0), np.abs(dx).max(initial=0)))
    side = 2 * k + 1
    group = (np.asarray(dy) + k) * side + (np.asarray(dx) + k)  # one number per distinct shift
    order = np.argsort(group, kind="stable")
    counts = np.bincount(group, minlength=side * side)
    ends = np.cumsum(counts)
    for g in np.flatnonzero(counts):
        rows = order[ends[g] - counts[g] : ends[g]]
        sy, sx = g // side - k, g % side - k
        y0, y1 = min(max(sy, 0), h), max(h + min(sy, 0), 0)  # the rows and columns they go to
        x0, x1 = min(max(sx, 0), w), max(w + min(sx, 0), 0)
        out[rows, y0:y1, x0:x1] = images[rows, y0 - sy : y1 - sy, x0 - sx : x1 - sx] * out.dtype.type(scale)
    return out


def col2im(grad_col: Array, out: Array, sh: int, sw: int) -> Array:
    """col2im for a convolution's backward pass: every patch's gradient added back where the
    patch came from, ``out[n, sh·i + u, sw·j + v, c] += grad_col[n, i, j, u, v, c]``, the
    offsets (u, v) in row-major order (so each element of ``out`` sums its terms in that
    order). ``grad_col`` (n, Ho, Wo, kh, kw, C), ``out`` (n, Hp, Wp, C) C-contiguous, of one
    dtype; returns ``out``."""
    if _fast is not None and _fast.col2im(grad_col, out, sh, sw):
        return out
    _, Ho, Wo, kh, kw, _ = grad_col.shape
    for u in range(kh):
        for v in range(kw):
            out[:, u : u + sh * Ho : sh, v : v + sw * Wo : sw, :] += grad_col[:, :, :, u, v, :]
    return out


def window_views(x: Array, kh: int, kw: int, sh: int, sw: int, Ho: int, Wo: int) -> Any:
    """(k, x[:, u : u + sh·Ho : sh, v : v + sw·Wo : sw, :]) for each window element (u, v),
    k = u·kw + v in row-major order: strided views (n, Ho, Wo, C) of channels-last x."""
    for u in range(kh):
        for v in range(kw):
            yield u * kw + v, x[:, u : u + sh * Ho : sh, v : v + sw * Wo : sw, :]


def maxpool(x: Array, out: Array, kh: int, kw: int, sh: int, sw: int) -> Array:
    """Max pooling, channels last: ``out[n, i, j, c]`` = the largest ``x[n, sh·i + u, sw·j + v, c]``
    over the kh×kw window, its elements (u, v) taken in row-major order by ``np.maximum`` (a NaN
    wins). ``x`` (n, H, W, C), ``out`` (n, Ho, Wo, C), of one dtype; returns ``out``."""
    if _fast is not None and _fast.maxpool(x, out, kh, kw, sh, sw):
        return out
    _, Ho, Wo, _ = out.shape
    for k, x_k in window_views(x, kh, kw, sh, sw, Ho, Wo):
        if k == 0:
            np.copyto(out, x_k)
        else:
            np.maximum(out, x_k, out=out)  # m = max over the window
    return out


def maxpool_backward(x: Array, m: Array, grad_y: Array, out: Array, kh: int, kw: int, sh: int, sw: int,
                     scratch: tuple[Array, Array, Array]) -> Array:
    """∂C/∂x of max pooling: each window's ∂C/∂y goes to its *first* arg-max (the first (u, v) in
    row-major order where x equals the max m, as PyTorch breaks ties; the last element where none
    does, e.g. for a NaN), and ∂C/∂y·0 to its other elements. Windows that do not overlap write
    their elements of ``out``; overlapping ones (stride < kernel) add to them, so ``out`` must
    start at 0 there, as it must wherever an input lies in no window. ``x``, ``out`` (n, H, W, C);
    ``m``, ``grad_y`` (n, Ho, Wo, C); ``scratch``: two bool arrays and one of ``out``'s dtype,
    each (n, Ho, Wo, C). Returns ``out``. Windows that do not overlap have a C loop that takes
    each window once (about 3x faster on the convnet's pools), with the same bits."""
    overlapping = sh < kh or sw < kw
    if _fast is not None and not overlapping:
        g = grad_y if grad_y.flags.c_contiguous else np.ascontiguousarray(grad_y)  # e.g. from Flatten
        if _fast.maxpool_backward(x, m, g, out, kh, kw, sh, sw):
            return out
    free, hit, routed = scratch  # free: windows whose arg-max is still to find
    last = kh * kw - 1
    _, Ho, Wo, _ = m.shape
    views = zip(window_views(x, kh, kw, sh, sw, Ho, Wo), window_views(out, kh, kw, sh, sw, Ho, Wo),
                strict=True)
    for (k, x_k), (_, dx_k) in views:
        if k == last:  # the last element wins wherever no earlier one did (a 1×1 window's: everywhere)
            if k == 0:
                free[...] = True
            hit = free
        elif k == 0:  # window element 0 wins where it is the max
            np.equal(x_k, m, out=hit)
            np.logical_not(hit, out=free)
        else:  # element k wins where it is the max and no earlier one is (ties: the first)
            np.equal(x_k, m, out=hit)
            np.logical_and(hit, free, out=hit)
            np.greater(free, hit, out=free)  # free ← free ∧ ¬hit
        if overlapping:  # ∂C/∂x += ∂C/∂y where k won (an input may win several windows)
            dx_k += np.multiply(grad_y, hit, out=routed)
        else:  # ∂C/∂x = ∂C/∂y where k won, else ∂C/∂y·0
            np.multiply(grad_y, hit, out=dx_k)
    return out


# --- batch normalization, a block of columns at a time --------------------------------------------
# The passes over "wide rows" x (rows, width) that batch normalization makes (numpynn.layers.norm),
# each on the columns c0 ≤ c < c1 only: a column's statistics are sums over all the rows, added in
# row order, so a block of columns is a whole piece of work, and the bits do not depend on how the
# columns are split among threads. Matrices (rows, width) and vectors (width,), C-contiguous, of
# one dtype.


def column_sums(x: Array, out: Array, c0: int = 0, c1: int | None = None) -> Array:
    """out[c] = Σ_rows x[r, c] (for the columns c0 … c1 − 1: all by default), each column
    summed in row order from row 0; returns ``out``."""
    c1 = x.shape[1] if c1 is None else c1
    if _fast is None or not _fast.column_sums(x, out, c0, c1):
        np.add.reduce(x[:, c0:c1], axis=0, out=out[c0:c1])
    return out


def centre(x: Array, xc: Array, mu: Array, sq: Array, c0: int, c1: int, scratch: Array) -> Array:
    """xc = x − μ and sq[c] = Σ_rows xc[r, c]² (``scratch``, a matrix, holds the squares in the
    reference); returns ``sq``."""
    if _fast is not None and _fast.centre(x, xc, mu, sq, c0, c1):
        return sq
    xc, b = xc[:, c0:c1], slice(c0, c1)
    np.subtract(x[:, b], mu[b], out=xc)  # x − μ_B
    np.multiply(xc, xc, out=scratch[:, b])  # (x − μ_B)²
    np.add.reduce(scratch[:, b], axis=0, out=sq[b])  # Σ (x − μ_B)²
    return sq


def normalize(xhat: Array, z: Array, scale: Array, gamma: Array, beta: Array, c0: int, c1: int) -> Array:
    """x̂ ← (x − μ)·(1/σ) in place (``xhat`` holds x − μ), then z = γ x̂ + β; returns ``z``."""
    if _fast is not None and _fast.normalize(xhat, z, scale, gamma, beta, c0, c1):
        return z
    b = slice(c0, c1)
    xhat, z = xhat[:, b], z[:, b]
    xhat *= scale[b]  # x̂ = (x − μ)/σ
    np.multiply(xhat, gamma[b], out=z)  # z = γ x̂ + β
    z += beta[b]
    return z


def grad_sums(g: Array, xhat: Array, s: Array, sx: Array, c0: int, c1: int, scratch: Array) -> None:
    """s[c] = Σ_rows g[r, c] and sx[c] = Σ_rows g[r, c]·x̂[r, c] (``scratch`` holds the products in
    the reference)."""
    if _fast is not None and _fast.grad_sums(g, xhat, s, sx, c0, c1):
        return
    b = slice(c0, c1)
    np.add.reduce(g[:, b], axis=0, out=s[b])  # Σ g
    np.multiply(g[:, b], xhat[:, b], out=scratch[:, b])
    np.add.reduce(scratch[:, b], axis=0, out=sx[b])  # Σ g ⊙ x̂


def input_grad(g: Array, xhat: Array, mean_g: Array, mean_gx: Array, scale: Array, out: Array,
               c0: int, c1: int) -> Array:
    """∂C/∂x = (γ/σ_B)·(g − mean(g) − x̂·mean(g ⊙ x̂)) into ``out`` (``scale`` = γ/σ_B); returns it."""
    if _fast is not None and _fast.input_grad(g, xhat, mean_g, mean_gx, scale, out, c0, c1):
        return out
    b = slice(c0, c1)
    grad_x = out[:, b]
    np.multiply(xhat[:, b], mean_gx[b], out=grad_x)  # x̂·mean(g ⊙ x̂)
    grad_x += mean_g[b]  # + mean(g)
    np.subtract(g[:, b], grad_x, out=grad_x)  # g − mean(g) − x̂·mean(g ⊙ x̂)
    grad_x *= scale[b]  # · γ/σ_B
    return out
