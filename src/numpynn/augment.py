"""Data augmentation for image batches.

:func:`random_shift` moves each image of a batch by a random whole number of
pixels (±1 by default), filling with zeros: a standard augmentation for
handwritten digits, which are centred only approximately.

An augmentation is ``f(x, rng) -> x`` on float rows. One that only moves
pixels may also offer ``f.scaled(x_uint8, scale, out, rng)``, which reads
uint8 pixels and writes the moved, scaled floats into ``out``: the training
loop then moves the pixels as it scales them, in one pass over a quarter of
the bytes, instead of scaling first and moving the floats after.
"""

from __future__ import annotations

import numpy as np

from . import _kernels

Array = np.ndarray


class RandomShift:
    """Shift each row's image by (dy, dx), each drawn uniformly from −k … k; see :func:`random_shift`."""

    def __init__(self, max_shift: int, image_shape: tuple[int, int]) -> None:
        if max_shift < 0:
            raise ValueError(f"max_shift must be 0 or more, not {max_shift}")
        self.k = int(max_shift)
        self.h, self.w = image_shape

    def _check(self, x: Array) -> None:
        if x.ndim != 2 or x.shape[1] != self.h * self.w:
            raise ValueError(f"random_shift expects rows of {self.h * self.w} pixels, not shape {x.shape}")

    def _draw(self, n: int, rng: np.random.Generator) -> tuple[Array, Array]:
        """The shifts (dy, dx) of ``n`` rows, each drawn uniformly from −k … k."""
        dy = rng.integers(-self.k, self.k + 1, size=n)
        dx = rng.integers(-self.k, self.k + 1, size=n)
        return dy, dx

    def __call__(self, x: Array, rng: np.random.Generator) -> Array:
        """The rows ``x`` (B, H·W) shifted (a new array of x's dtype)."""
        self._check(x)
        if self.k == 0:
            return x
        images = x.reshape(x.shape[0], self.h, self.w)
        out = _kernels.shift_scale(images, *self._draw(x.shape[0], rng), 1, np.empty_like(images))
        return out.reshape(x.shape[0], -1)

    def scaled(self, x: Array, scale: float, out: Array, rng: np.random.Generator) -> Array:
        """The same shifts (the same draws from ``rng``) of uint8 rows ``x``, times ``scale``,
        written into the float rows ``out``."""
        self._check(x)
        if self.k == 0:
            return np.multiply(x, out.dtype.type(scale), out=out)
        shape = (x.shape[0], self.h, self.w)
        _kernels.shift_scale(x.reshape(shape), *self._draw(x.shape[0], rng), scale, out.reshape(shape))
        return out


def random_shift(max_shift: int = 1, image_shape: tuple[int, int] = (28, 28)) -> RandomShift:
    """An augmentation ``f(x, rng) -> x`` for :meth:`Network.fit`.

    ``x`` is a batch (B, H·W) of flattened images; each row is shifted by
    (dy, dx), each drawn uniformly from −max_shift … max_shift, and the pixels
    shifted in from outside are 0. The pixels move in one pass, by
    :func:`numpynn._kernels.shift_scale` (a C loop, or NumPy slices: one slice
    assignment per distinct shift).
    """
    return RandomShift(max_shift, image_shape)
