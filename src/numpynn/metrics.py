"""What training, plots and the web share about answers and pixels.

``PIXEL_SCALE`` turns uint8 pixels into [0, 1]; :func:`classes` reads the class
of each row of outputs or targets; :func:`count_correct` counts the rows whose
output picks the target's class.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PIXEL_SCALE", "classes", "count_correct"]

#: uint8 pixel → [0, 1]: x = pixel · PIXEL_SCALE.
PIXEL_SCALE = 1.0 / 255.0


def classes(rows: np.ndarray) -> np.ndarray:
    """The class of each row of outputs or targets (B, k) → (B,): the arg-max, or > ½ for one column."""
    if rows.shape[1] == 1:
        return (rows[:, 0] > 0.5).astype(np.int64)
    return rows.argmax(axis=1)


def count_correct(a: np.ndarray, y: np.ndarray) -> int:
    """How many rows of the output a (B, k) pick the class of the target rows y (B, k)."""
    return int(np.count_nonzero(classes(a) == classes(y)))
