"""Data augmentation for image batches.

:func:`random_shift` moves each image of a batch by a random whole number of
pixels (±1 by default), filling with zeros: a standard augmentation for
handwritten digits, which are centred only approximately.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Array = np.ndarray


def random_shift(
    max_shift: int = 1, image_shape: tuple[int, int] = (28, 28)
) -> Callable[[Array, np.random.Generator], Array]:
    """An augmentation ``f(x, rng) -> x`` for :meth:`Network.fit`.

    ``x`` is a batch (B, H·W) of flattened images; each row is shifted by
    (dy, dx), each drawn uniformly from −max_shift … max_shift.
    """
    if max_shift < 0:
        raise ValueError(f"max_shift must be 0 or more, not {max_shift}")
    h, w = image_shape
    k = max_shift

    def shift(x: Array, rng: np.random.Generator) -> Array:
        B = x.shape[0]
        if x.shape[1] != h * w:
            raise ValueError(f"random_shift expects rows of {h * w} pixels, not {x.shape[1]}")
        if k == 0:
            return x
        padded = np.zeros((B, h + 2 * k, w + 2 * k), x.dtype)
        padded[:, k : k + h, k : k + w] = x.reshape(B, h, w)
        dy = rng.integers(-k, k + 1, size=B)
        dx = rng.integers(-k, k + 1, size=B)
        rows = (k - dy)[:, None] + np.arange(h)  # (B, h): source row of each output row
        cols = (k - dx)[:, None] + np.arange(w)  # (B, w)
        out = padded[np.arange(B)[:, None, None], rows[:, :, None], cols[:, None, :]]
        return out.reshape(B, h * w)

    return shift
