"""The XOR problem: the smallest data set a linear model cannot fit.

The data only; the 2-2-1 network that learns it (``numpynn xor``, with restarts
out of local minima) is :mod:`numpynn.xor`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

__all__ = ["xor"]


def xor(dtype: DTypeLike = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """The four XOR cases.

    Returns ``(x, y)``: ``x`` of shape ``(4, 2)`` = ``[[0, 0], [0, 1], [1, 0],
    [1, 1]]`` and ``y`` of shape ``(4, 1)`` = ``[[0], [1], [1], [0]]``, both of
    ``dtype`` (float32 by default; pass ``np.float64`` for gradient checks).
    """
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=dtype)
    y = np.array([[0], [1], [1], [0]], dtype=dtype)
    return x, y
