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

from collections.abc import Iterator

import numpy as np

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

    def _moves(self, x: Array, rng: np.random.Generator) -> Iterator[tuple[Array, tuple[slice, ...],
                                                                           tuple[slice, ...]]]:
        """For each distinct shift among the rows: (the rows, where their pixels go, where they come
        from), so that out[rows, *to] = in[rows, *source]; (2k+1)² moves at most, whatever the rows."""
        B, (h, w), k = x.shape[0], (self.h, self.w), self.k
        dy = rng.integers(-k, k + 1, size=B)
        dx = rng.integers(-k, k + 1, size=B)
        side = 2 * k + 1
        group = (dy + k) * side + (dx + k)
        order = np.argsort(group, kind="stable")
        counts = np.bincount(group, minlength=side * side)
        ends = np.cumsum(counts)
        for g in np.flatnonzero(counts):
            rows = order[ends[g] - counts[g] : ends[g]]
            sy, sx = g // side - k, g % side - k  # out[y, x] = in[y − sy, x − sx], 0 outside
            y0, y1, x0, x1 = max(sy, 0), h + min(sy, 0), max(sx, 0), w + min(sx, 0)
            yield rows, (slice(y0, y1), slice(x0, x1)), (slice(y0 - sy, y1 - sy), slice(x0 - sx, x1 - sx))

    def __call__(self, x: Array, rng: np.random.Generator) -> Array:
        """The rows ``x`` (B, H·W) shifted (a new array of x's dtype)."""
        self._check(x)
        if self.k == 0:
            return x
        images = x.reshape(x.shape[0], self.h, self.w)
        out = np.zeros_like(images)
        for rows, to, source in self._moves(x, rng):
            out[(rows, *to)] = images[(rows, *source)]
        return out.reshape(x.shape[0], -1)

    def scaled(self, x: Array, scale: float, out: Array, rng: np.random.Generator) -> Array:
        """The same shifts (the same draws from ``rng``) of uint8 rows ``x``, times ``scale``,
        written into the float rows ``out``."""
        self._check(x)
        images, dest = x.reshape(x.shape[0], self.h, self.w), out.reshape(x.shape[0], self.h, self.w)
        if self.k == 0:
            return np.multiply(x, out.dtype.type(scale), out=out)
        dest[...] = 0
        for rows, to, source in self._moves(x, rng):
            dest[(rows, *to)] = images[(rows, *source)] * out.dtype.type(scale)
        return out


def random_shift(max_shift: int = 1, image_shape: tuple[int, int] = (28, 28)) -> RandomShift:
    """An augmentation ``f(x, rng) -> x`` for :meth:`Network.fit`.

    ``x`` is a batch (B, H·W) of flattened images; each row is shifted by
    (dy, dx), each drawn uniformly from −max_shift … max_shift, and the pixels
    shifted in from outside are 0. The rows that share a shift move together,
    one slice assignment per distinct shift, never a loop over rows or pixels.
    """
    return RandomShift(max_shift, image_shape)
