"""The training kernels: the C loops give the NumPy reference's bits; the C extension is
built by the install, never at run time, and an install that cannot build it goes on
without it (said once), training with the NumPy kernels."""

from __future__ import annotations

import importlib.machinery
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from disk_faults import limited, read_only_folder

from numpynn import _kernels

ROOT = Path(__file__).resolve().parents[1]
DTYPES = [np.float32, np.float64]


def both(run):
    """``run()`` with the NumPy reference, then with the backend selected now."""
    backend = _kernels.backend_name()
    previous = _kernels.use("numpy")
    try:
        reference = run()
    finally:
        _kernels.use(previous)
    assert _kernels.backend_name() == backend
    return reference, run()


def both_into(kernel, z, in_place):
    """:func:`both` for ``kernel(z, out)``: into a fresh array (filled with 9s, so a value left
    unwritten shows), or in place on a copy of z; each call must return its ``out``."""

    def run():
        a = z.copy() if in_place else np.full_like(z, 9)
        assert kernel(a if in_place else z, a) is a
        return a

    return both(run)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 7, 16, 10_007])  # vector widths and their tails
def test_adam_gives_the_reference_bits(compiled_backend, dtype, n):
    rng = np.random.default_rng(n)
    p, g = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    m, v = (0.1 * rng.standard_normal(n)).astype(dtype), np.abs(rng.standard_normal(n)).astype(dtype)
    g[: n // 3] *= dtype(1e-30)  # tiny gradients: subnormal squares
    v[: n // 5] = 0

    def run():
        P, M, V = p.copy(), m.copy(), v.copy()
        _kernels.adam_update(P, g.copy(), M, V, 0.9, 0.999, 3e-3, 1e-8)
        return P, M, V

    for ref, fused in zip(*both(run), strict=True):
        np.testing.assert_array_equal(fused, ref)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(64, 33), (1, 1), (3, 128)])
def test_sigmoid_delta_gives_the_reference_bits(compiled_backend, dtype, shape):
    rng = np.random.default_rng(3)
    a, d = rng.random(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    ref, fused = both(lambda: _kernels.sigmoid_delta(d.copy(), a))
    np.testing.assert_array_equal(fused, ref)


F32 = np.float32
EXP_P = [F32(float.fromhex(h)) for h in ("0x1.a0d2cep-13", "0x1.6e879cp-10", "0x1.111210p-7",
                                         "0x1.555382p-5", "0x1.555554p-3", "0x1p-1")]


def exp32_by_definition(x):
    """e^x for one float32 x, each step a float32 scalar operation: the steps ``_kernels.exp32``
    names, written out once more (x clipped to [−88, 89] first; a NaN stays)."""
    with np.errstate(under="ignore", over="ignore", invalid="ignore"):
        x = min(max(x, F32(-88.0)), F32(89.0)) if not np.isnan(x) else x
        v = x * F32(float.fromhex("0x1.715476p+0")) + F32(1.5 * 2**23)
        n = v - F32(1.5 * 2**23)  # rint(x log₂e)
        r = (x - n * F32(0.693359375)) - n * F32(float.fromhex("-0x1.bd0106p-13"))
        p = EXP_P[0]
        for c in EXP_P[1:]:
            p = p * r + c
        p = (p * (r * r) + r) + F32(1.0)
        bits = (int(np.array(v).view(np.int32)) - 0x4B400000 + 127) << 23
        return p * np.array(bits & 0xFFFFFFFF, np.uint32).view(np.float32)[()]  # e^r 2^n


def sigmoid32_by_definition(z):
    """σ(z) = 1/(1 + e^{−z}) one float32 element at a time."""
    out = np.empty_like(z)
    for i, zi in np.ndenumerate(z):
        out[i] = F32(1.0) / (exp32_by_definition(-zi) + F32(1.0))
    return out


def softmax32_by_definition(z):
    """The float32 softmax one row at a time: e^{z − max z}, summed from the first column."""
    out = np.empty_like(z)
    with np.errstate(invalid="ignore"):
        for i in np.ndindex(*z.shape[:-1]):
            row = z[i]
            m = row[0]
            for value in row[1:]:
                m = np.maximum(m, value)  # as np.max: a NaN wins
            e = [exp32_by_definition(value - m) for value in row]
            total = e[0]
            for value in e[1:]:
                total = total + value
            out[i] = [value / total for value in e]
    return out


@pytest.mark.parametrize("layout", ["rows", "channels-last", "in-place", "strided"])
def test_sigmoid32_gives_the_reference_bits(compiled_backend, layout):
    """The float32 sigmoid: the C loop, the NumPy reference and a scalar loop over its steps agree
    to the bit, on rows, on the (B, C, H, W) view of channels-last memory, in place and on a
    strided view (the reference runs), with ±0, ±∞, NaN, the clip points and the values where
    2^n turns into infinity (σ = 0); and σ is 0 or 1 exactly far out."""
    rng = np.random.default_rng(11)
    z = (rng.standard_normal((4, 6, 5, 7)) * rng.choice([0.01, 1, 8, 40], (4, 6, 5, 7))).astype(np.float32)
    special = [0.0, -0.0, np.inf, -np.inf, np.nan, 80, -80, 88.375, -88.375, -88.38, 89, -89, -1e3, 1e3,
               1e-45, -1e-30, 17, -17, 0.34657359, -0.34657359]
    z.reshape(-1)[: len(special)] = special
    if layout == "channels-last":
        z = z.transpose(0, 3, 1, 2)
    elif layout == "strided":
        z = z[:, ::2]

    ref, fused = both_into(_kernels.sigmoid, z, in_place=layout == "in-place")
    assert fused.tobytes(order="A") == ref.tobytes(order="A")
    by_definition = sigmoid32_by_definition(z)
    assert ref.tobytes(order="A") == by_definition.tobytes(order="A")
    far = np.array([0.0, -0.0, np.inf, -np.inf, 1e3, -1e3, 89, -89, -88.38, 17], np.float32)
    np.testing.assert_array_equal(_kernels.sigmoid(far, np.empty_like(far)), [0.5, 0.5, 1, 0, 1, 0, 1, 0, 0, 1])


@pytest.mark.parametrize("layout", ["rows", "three axes", "in-place", "strided", "one column"])
def test_softmax32_gives_the_reference_bits(compiled_backend, layout):
    """The float32 softmax: the C loop, the NumPy reference and a loop over its steps agree to
    the bit, on rows, on (B, H, k), in place, on a strided view (the reference runs) and on one
    column, with rows holding a NaN, +∞, only −∞, spreads past the clip at −88, ties, ±0; and
    each row of numbers sums to 1 within float32's rounding."""
    rng = np.random.default_rng(12)
    shape = {"three axes": (8, 8, 10), "one column": (9, 1)}.get(layout, (64, 10))
    z = (rng.standard_normal(shape) * rng.choice([0.1, 1, 10, 60], shape)).astype(np.float32)
    rows = z.reshape(-1, shape[-1])
    if shape[-1] == 10:
        rows[0, 3], rows[1, 0], rows[2] = np.nan, np.inf, -np.inf
        rows[3, :4], rows[4, :3], rows[5] = [-200, 200, 0, -0.0], [7, 7, 7], -0.0
    if layout == "strided":
        z = z[::2]

    with np.errstate(invalid="ignore"):  # ∞ − ∞ in the reference, as before
        ref, fused = both_into(_kernels.softmax, z, in_place=layout == "in-place")
    assert fused.tobytes(order="A") == ref.tobytes(order="A")
    assert ref.tobytes(order="A") == softmax32_by_definition(z).tobytes(order="A")
    numbers = np.isfinite(z).all(axis=-1)
    sums = ref.sum(axis=-1, dtype=np.float64)[numbers]
    np.testing.assert_allclose(sums, 1, rtol=0, atol=4 * shape[-1] * np.finfo(np.float32).eps)
    x = z[numbers] - z[numbers].max(axis=-1, keepdims=True)  # rounded to float32, as the kernels have it
    exact = np.exp(x.astype(np.float64))
    exact /= exact.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(ref[numbers], exact, rtol=8 * np.finfo(np.float32).eps, atol=1e-38)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(784,), (28, 28), (5,)])
def test_gather_scale_gives_the_reference_bits(compiled_backend, dtype, shape):
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, (300, *shape), dtype=np.uint8)
    rows = rng.integers(0, 300, 77)
    rows[:3] = [0, 299, 0]

    def run():
        out = np.full((rows.size, *shape), np.nan, dtype)
        assert _kernels.gather_scale(x, rows, 1 / 255, out) is out
        return out

    ref, fused = both(run)
    np.testing.assert_array_equal(fused, ref)
    np.testing.assert_array_equal(ref, x[rows] * dtype(1 / 255))


def shifted_by_definition(images, dy, dx, scale, dtype):
    """out[i, y, x] = images[i, y − dy[i], x − dx[i]] · scale, 0 outside: pixel by pixel."""
    n, h, w = images.shape
    out = np.zeros((n, h, w), dtype)
    for i in range(n):
        for y in range(h):
            for x in range(w):
                if 0 <= y - dy[i] < h and 0 <= x - dx[i] < w:
                    out[i, y, x] = images[i, y - dy[i], x - dx[i]] * dtype(scale)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, k", [((40, 28, 28), 1), ((30, 28, 28), 3), ((25, 5, 7), 9), ((9, 1, 4), 2)])
def test_shift_scale_gives_the_reference_bits(compiled_backend, dtype, shape, k):
    """Every shift up to ±k (beyond the image's size too: nothing moves in) of uint8 images,
    scaled: the C loop, the NumPy reference and the definition agree to the bit."""
    rng = np.random.default_rng(k)
    images = rng.integers(0, 256, shape, dtype=np.uint8)
    dy, dx = rng.integers(-k, k + 1, shape[0]), rng.integers(-k, k + 1, shape[0])

    def run():
        out = np.full(shape, np.nan, dtype)
        assert _kernels.shift_scale(images, dy, dx, 1 / 255, out) is out
        return out

    ref, fused = both(run)
    np.testing.assert_array_equal(fused, ref)
    np.testing.assert_array_equal(ref, shifted_by_definition(images, dy, dx, 1 / 255, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, stride, pad", [((3, 8, 8, 5, 5, 16), (1, 1), 0), ((2, 24, 24, 5, 5, 1), (1, 1), 0),
                                               ((4, 3, 4, 2, 3, 3), (2, 3), 1), ((1, 2, 2, 3, 3, 2), (3, 2), 2)])
def test_col2im_gives_the_reference_bits(compiled_backend, dtype, shape, stride, pad):
    """Patch gradients added back where the patches came from (strided, overlapping or with
    gaps, padded): the C loop, the NumPy reference and a loop over the definition agree to the bit."""
    n, Ho, Wo, kh, kw, C = shape
    sh, sw = stride
    rng = np.random.default_rng(sum(shape))
    gc = rng.standard_normal(shape).astype(dtype)
    Hp, Wp = (Ho - 1) * sh + kh + pad, (Wo - 1) * sw + kw + pad

    def run():
        out = np.zeros((n, Hp, Wp, C), dtype)
        assert _kernels.col2im(gc, out, sh, sw) is out
        return out

    ref, fused = both(run)
    np.testing.assert_array_equal(fused, ref)
    by_definition = np.zeros((n, Hp, Wp, C), dtype)
    for u in range(kh):
        for v in range(kw):
            for i in range(Ho):
                for j in range(Wo):
                    by_definition[:, sh * i + u, sw * j + v] += gc[:, i, j, u, v]
    np.testing.assert_array_equal(ref, by_definition)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["rows", "channels-last", "strided"])
@pytest.mark.parametrize("nan", [False, True], ids=["numbers", "nan"])
def test_relu_and_its_delta_give_the_reference_bits(compiled_backend, dtype, layout, nan):
    """ReLU and its delta on rows, on the (B, C, H, W) view of channels-last memory (the C loops
    run in memory order) and on a strided view (the reference runs): with +0, −0, ties at 0 and,
    apart, NaNs in z and in ∂C/∂a (the C forward hands a NaN to the reference): the C loops and
    NumPy agree to the bit, and a = max(z, 0) element by element."""
    rng = np.random.default_rng(7)
    z = rng.integers(-3, 4, (4, 5, 6, 3)).astype(dtype)
    z[z == 0] = np.where(rng.random(int((z == 0).sum())) < 0.5, -0.0, 0.0)
    g = rng.standard_normal(z.shape).astype(dtype)
    g[0, 0, 0] = -0.0
    if nan:
        z[1, 2, 3, 1] = g[2, 1, 0, 2] = np.nan
    if layout == "channels-last":
        z, g = z.transpose(0, 3, 1, 2), g.transpose(0, 3, 1, 2)  # (B, C, H, W) views, NHWC memory
    elif layout == "strided":
        z, g = z[:, ::2], g[:, ::2]

    def run():
        a = np.full_like(z, 9)
        assert _kernels.relu(z, a) is a
        d = g.copy(order="K")
        assert _kernels.relu_delta(d, z) is d
        return a, d

    (a_ref, d_ref), (a_fused, d_fused) = both(run)
    assert a_fused.tobytes(order="A") == a_ref.tobytes(order="A")
    assert d_fused.tobytes(order="A") == d_ref.tobytes(order="A")
    by_definition = np.array([np.maximum(v, dtype(0)) for v in z.ravel()], dtype).reshape(z.shape)
    np.testing.assert_array_equal(a_ref, by_definition)
    assert not np.signbit(a_ref[~np.isnan(a_ref)]).any()  # −0 gives +0, as np.maximum


def pooled_by_definition(x, kh, kw, sh, sw, Ho, Wo, grad_y):
    """Max pooling and its ∂C/∂x one window at a time: the max, and ∂C/∂y to the first arg-max
    in row-major order (the last element where the max equals none, e.g. NaN), added up window
    element by window element (an input in several windows sums its terms in that order)."""
    m, won = np.empty(grad_y.shape, x.dtype), np.empty(grad_y.shape, int)
    for n, i, j, c in np.ndindex(*grad_y.shape):
        window = x[n, sh * i : sh * i + kh, sw * j : sw * j + kw, c].reshape(-1)
        best = window[0]
        for value in window[1:]:
            best = np.maximum(best, value)
        m[n, i, j, c] = best
        won[n, i, j, c] = next((k for k in range(kh * kw - 1) if window[k] == best), kh * kw - 1)
    dx = np.zeros_like(x)
    for k in range(kh * kw):
        for n, i, j, c in np.ndindex(*grad_y.shape):
            if won[n, i, j, c] == k:
                dx[n, sh * i + k // kw, sw * j + k % kw, c] += grad_y[n, i, j, c]
    return m, dx


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, kernel, stride", [((3, 8, 8, 16), (2, 2), (2, 2)), ((2, 24, 24, 1), (2, 2), (2, 2)),
                                                   ((2, 7, 9, 3), (3, 2), (3, 4)), ((2, 6, 6, 4), (3, 3), (1, 2)),
                                                   ((1, 5, 5, 2), (1, 1), (1, 1))])
@pytest.mark.parametrize("nan", [False, True], ids=["numbers", "nan"])
def test_maxpool_gives_the_reference_bits(compiled_backend, dtype, shape, kernel, stride, nan):
    """Max pooling and its backward (windows apart, with gaps, overlapping, 1×1), with ties
    (values on a coarse grid, +0 beside -0) and, apart, NaNs (the forward C loop hands those to
    the reference; the backward one routes them itself): the C loops (the backward one for
    windows apart), the NumPy reference and a loop over the definition agree to the bit."""
    (kh, kw), (sh, sw) = kernel, stride
    n, H, W, C = shape
    Ho, Wo = (H - kh) // sh + 1, (W - kw) // sw + 1
    rng = np.random.default_rng(sum(shape))
    x = rng.integers(-3, 4, shape).astype(dtype)  # many ties in a window
    x[x == 0] = np.where(rng.random(int((x == 0).sum())) < 0.5, -0.0, 0.0)  # ties of +0 and -0 too
    if nan:
        x[0, 0, 0, 0] = x[-1, -1, -1, -1] = np.nan
    grad_y = rng.standard_normal((n, Ho, Wo, C)).astype(dtype)
    grad_y[0, 0, 0, 0] = -0.0  # −0 to the arg-max, −0·0 = −0 to the others
    clear = sh < kh or sw < kw or (Ho - 1) * sh + kh < H or (Wo - 1) * sw + kw < W

    def run():
        m = np.full((n, Ho, Wo, C), 7, dtype)
        assert _kernels.maxpool(x, m, kh, kw, sh, sw) is m
        dx = np.zeros(shape, dtype) if clear else np.full(shape, 5, dtype)
        scratch = (np.empty(m.shape, bool), np.empty(m.shape, bool), np.empty(m.shape, dtype))
        assert _kernels.maxpool_backward(x, m, grad_y, dx, kh, kw, sh, sw, scratch) is dx
        return m, dx

    (m_ref, dx_ref), (m_fused, dx_fused) = both(run)
    assert m_fused.tobytes() == m_ref.tobytes() and dx_fused.tobytes() == dx_ref.tobytes()
    m_def, dx_def = pooled_by_definition(x, kh, kw, sh, sw, Ho, Wo, grad_y)
    np.testing.assert_array_equal(m_ref, m_def)
    np.testing.assert_array_equal(dx_ref, dx_def)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows, width, c0, c1", [(64, 3136, 0, 3136), (64, 3136, 1568, 3136), (7, 33, 3, 20),
                                                 (1, 5, 0, 5), (300, 16, 0, 16), (5, 9, 4, 4)])
@pytest.mark.parametrize("special", [False, True], ids=["numbers", "zeros-nan-inf"])
def test_batch_norm_passes_give_the_reference_bits(compiled_backend, dtype, rows, width, c0, c1, special):
    """The five passes of batch normalization over a block of columns (numpynn.layers.norm): C and
    reference give the same bits, write only inside the block, and sum each column in row order."""
    rng = np.random.default_rng(rows * width + c0)
    x, g, mu, scale, gamma, beta, mg, mgx = (rng.standard_normal(shape).astype(dtype) for shape in
                                             [(rows, width)] * 2 + [(width,)] * 6)
    if special:  # a column of −0 (its sum is +0, as from NumPy's identity), a NaN and an infinity
        x[:, 0], g[:, 0] = dtype(-0.0), dtype(-0.0)
        x[0, -1], g[-1, -1], scale[-1] = np.nan, np.inf, dtype(-0.0)

    def run():
        sums, sq, s, sx = (np.full(width, 7, dtype) for _ in range(4))
        xc, z, out, scratch = (np.full((rows, width), 7, dtype) for _ in range(4))
        with np.errstate(invalid="ignore", over="ignore"):  # the NaN and ∞ cases, as fit runs them
            _kernels.column_sums(x, sums, c0, c1)
            _kernels.centre(x, xc, mu, sq, c0, c1, scratch)
            _kernels.normalize(xc, z, scale, gamma, beta, c0, c1)
            _kernels.grad_sums(g, xc, s, sx, c0, c1, scratch)
            _kernels.input_grad(g, xc, mg, mgx, scale, out, c0, c1)
        return sums, sq, xc, z, s, sx, out

    ref, fused = both(run)
    for name, r, f in zip(["sums", "squares", "xhat", "z", "Σg", "Σg·x̂", "∂C/∂x"], ref, fused, strict=True):
        np.testing.assert_array_equal(f, r, err_msg=name)  # a NaN where the other has one (its sign
        assert (np.signbit(f) == np.signbit(r))[~np.isnan(r)].all(), name  # bit may differ), ±0 kept
        outside = np.ones(f.shape[-1], bool)
        outside[c0:c1] = False
        assert (f[..., outside] == 7).all(), name  # nothing written outside the block
    # each column summed in row order, from 0: ((0 + x_0) + x_1) + …
    by_definition = np.zeros(width, dtype)
    for r in range(rows):
        by_definition += x[r]
    np.testing.assert_array_equal(ref[0][c0:c1], by_definition[c0:c1])
    assert (np.signbit(ref[0][c0:c1]) == np.signbit(by_definition[c0:c1])).all()


def test_what_the_c_loops_do_not_take_falls_back_to_numpy(compiled_backend):
    """Views that are not contiguous, mixed or integer dtypes, an index out of range: the
    NumPy reference does the work (and raises what NumPy raises)."""
    rng = np.random.default_rng(2)
    a = rng.random((8, 10)).astype(np.float32)
    g = rng.standard_normal((8, 20)).astype(np.float32)[:, ::2]  # not C-contiguous
    expected = g * a * (1 - a)
    np.testing.assert_array_equal(_kernels.sigmoid_delta(g, a), expected)
    g64 = rng.standard_normal((8, 10))  # float64 gradient, float32 activations
    expected = g64 * a
    expected *= 1 - a
    np.testing.assert_array_equal(_kernels.sigmoid_delta(g64, a), expected)
    p = np.zeros(5, np.float32)
    _kernels.adam_update(p, np.ones(5, np.float32), np.zeros(5), np.zeros(5, np.float32), 0.9, 0.999, 0.1, 1e-8)
    np.testing.assert_allclose(p, -0.1 * 0.1 / (np.sqrt(0.001) + 1e-8), rtol=1e-6)
    x = np.arange(12, dtype=np.uint8).reshape(4, 3)
    out = np.empty((2, 3), np.float32)
    np.testing.assert_array_equal(_kernels.gather_scale(x, np.array([3, 1], np.int32), 0.5, out),
                                  x[[3, 1]] * np.float32(0.5))
    with pytest.raises(IndexError):
        _kernels.gather_scale(x, np.array([0, 4]), 0.5, out)
    images = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    floats = images.astype(np.float32)  # not uint8: shifted as it is
    moved = _kernels.shift_scale(floats, np.array([1, 0]), np.array([0, -1]), 1, np.empty_like(floats))
    np.testing.assert_array_equal(moved, shifted_by_definition(floats, [1, 0], [0, -1], 1, np.float32))
    gc = rng.standard_normal((2, 3, 3, 2, 2, 4)).astype(np.float32)
    out = np.zeros((2, 4, 4, 4))  # float64 into float32's place: NumPy adds
    np.testing.assert_array_equal(_kernels.col2im(gc, out, 1, 1), _kernels.col2im(gc, np.zeros_like(out), 1, 1))
    strided = np.zeros((2, 4, 4, 8), np.float32)[..., ::2]  # not C-contiguous
    previous = _kernels.use("numpy")
    try:
        expected = _kernels.col2im(gc, np.zeros((2, 4, 4, 4), np.float32), 1, 1)
    finally:
        _kernels.use(previous)
    np.testing.assert_array_equal(_kernels.col2im(gc, strided, 1, 1), expected)


def test_the_backend_can_be_chosen():
    previous = _kernels.use("numpy")
    try:
        assert _kernels.backend_name() == "numpy"
        with pytest.raises(ValueError, match="unknown kernel backend"):
            _kernels.use("numba")
        assert _kernels.backend_name() == "numpy"
    finally:
        _kernels.use(previous)


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})


def test_without_the_extension_training_uses_the_numpy_kernels():
    """An install whose build could not compile the extension: numpynn imports, trains, and
    names the reference as its backend; asking for the C kernels says why not."""
    code = (
        "import sys; sys.modules['numpynn._fused'] = None  # as if it was never built\n"
        "import numpy as np, numpynn as nn\n"
        "from numpynn import _kernels\n"
        "net = nn.Network([nn.Dense(6, 5, 'sigmoid'), nn.Dense(5, 3, 'softmax')], seed=0)\n"
        "x = np.random.default_rng(0).random((40, 6)); y = np.arange(40) % 3\n"
        "net.fit(x, y, epochs=2, batch_size=8, progress=False)\n"
        "print(_kernels.available(), _kernels.backend_name())\n"
        "try:\n    _kernels.use('c')\nexcept ImportError as e:\n    print(e)\n"
    )
    done = run_python(code, NUMPYNN_KERNELS="auto")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "['numpy'] numpy" and "C compiler" in lines[1], done.stdout
    assert done.stderr == ""
    done = run_python(code, NUMPYNN_KERNELS="c")  # insisted on in the environment: said once
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["numpynn: warning: NUMPYNN_KERNELS=c but the C kernels were not "
                                        "built; training with the NumPy kernels"]


def test_training_compiles_nothing(compiled_backend):
    """The C kernels are loaded as a plain extension module: no compiler, no numba, no LLVM
    in the training process, even with no compiler on the PATH."""
    code = (
        "import sys, numpy as np, numpynn as nn\n"
        "from numpynn import _kernels\n"
        "net = nn.Network([nn.Dense(6, 5, 'sigmoid'), nn.Dense(5, 3, 'softmax')], seed=0)\n"
        "x = np.random.default_rng(0).random((40, 6)); y = np.arange(40) % 3\n"
        "net.fit(x, y, epochs=2, batch_size=8, progress=False)\n"
        "print(_kernels.backend_name(), 'numba' in sys.modules, 'llvmlite' in sys.modules)\n"
    )
    done = run_python(code, NUMPYNN_KERNELS="auto", PATH="/nonexistent", CC="false")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["c", "False", "False"] and done.stderr == ""


@pytest.mark.parametrize("where", ["build/lib.linux-x86_64-cpython-311/numpynn",
                                   "build/__editable__.numpynn-0.1.0-cp311-cp311-linux_x86_64/numpynn",
                                   "elsewhere/numpynn"])
def test_the_c_kernels_are_found_where_an_install_built_them(compiled_backend, tmp_path, where):
    """The extension is found though it is not beside the package's sources: in the build
    folder of a ``build_ext`` without ``--inplace``, in a strict editable install's link
    tree, or in another ``numpynn`` folder on ``sys.path``; so every process (a pytest-xdist
    worker too) trains with the C kernels that were built."""
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "src" / "numpynn", tree / "src" / "numpynn",
                    ignore=shutil.ignore_patterns("_fused*.so", "_fused*.pyd", "__pycache__"))
    assert built(tree / "src") == []
    (tree / where).mkdir(parents=True)
    shutil.copy(_kernels._compiled.__file__, tree / where)
    path = [str(tree / "src")] + ([str(tree / "elsewhere")] if where.startswith("elsewhere") else [])
    code = ("import numpynn, numpynn._kernels as k\n"
            "print(numpynn.__file__, ','.join(k.available()), k.backend_name(), k._compiled.__file__,"
            " sep='|')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": os.pathsep.join(path),
                                             "NUMPYNN_KERNELS": "auto"})
    assert done.returncode == 0, done.stderr
    package, backends, backend, extension = done.stdout.strip().split("|")
    assert Path(package).parent == tree / "src" / "numpynn", done.stdout  # the copy, not the install
    assert (backends, backend) == ("numpy,c", "c"), done.stdout
    assert Path(extension).parent == tree / where, done.stdout


# --- the build ----------------------------------------------------------------------------------


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A copy of what the build of the extension reads."""
    tree = tmp_path / "src-tree"
    (tree / "src" / "numpynn").mkdir(parents=True)
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    shutil.copy(ROOT / "src" / "numpynn" / "_fused.c", tree / "src" / "numpynn" / "_fused.c")
    (tree / "src" / "numpynn" / "__init__.py").write_text("")
    return tree


def build(tree: Path, out: Path, preexec_fn=None, **env: str) -> subprocess.CompletedProcess[str]:
    """``setup.py build_ext`` of the extension into ``out``, as the install runs it."""
    return subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--build-lib", str(out), "--build-temp",
         str(tree / "tmp")],
        cwd=tree, capture_output=True, text=True, timeout=300, env={**os.environ, **env},
        preexec_fn=preexec_fn)


def built(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("_fused*") if p.name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))]


def test_the_build_makes_the_extension(source, tmp_path):
    done = build(source, tmp_path / "lib")
    assert done.returncode == 0, done.stderr
    assert len(built(tmp_path / "lib")) == 1


@pytest.mark.parametrize("trouble", ["no compiler", "file-size limit", "read-only"])
def test_a_build_that_fails_does_not_fail_the_install(source, tmp_path, monkeypatch, trouble):
    """No C compiler, a file-size limit (EFBIG) or a folder that takes no file: the build
    warns and ends well without the extension (training then uses the NumPy kernels)."""
    out = tmp_path / "lib"
    if trouble == "no compiler":
        done = build(source, out, CC="/nonexistent/cc")
    elif trouble == "file-size limit":
        done = build(source, out, preexec_fn=limited(2_000))
    else:
        with read_only_folder(out, monkeypatch) as how:
            if how == "injected":  # a refusal injected in this process would not reach the build's
                out.rmdir()
                out.write_bytes(b"")  # a file where the folder should be: it takes nothing either
            done = build(source, out)
    assert done.returncode == 0, done.stderr
    assert "warning" in done.stderr.lower() and "_fused" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert built(out) == []
