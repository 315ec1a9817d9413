"""The shape of the API's answers: numbers made JSON-safe, and errors as ``{"error": message}``.

Every other module of :mod:`numpynn.web` may import this one; it imports none of them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["ApiError", "num", "nums"]


class ApiError(Exception):
    """An error answered as ``{"error": message}`` with an HTTP status (and any extra headers)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = int(status)
        self.message = message
        self.headers = headers or {}


def num(value: Any, digits: int = 6) -> float | None:
    """A JSON-safe float (non-finite values become null), ``digits`` significant."""
    if value is None:
        return None
    v = float(value)
    if not math.isfinite(v):
        return None
    return float(f"{v:.{digits}g}")


def nums(values: Any, digits: int = 5) -> list[float | None]:
    """Any array of numbers, flattened, each as :func:`num` writes it."""
    return [num(v, digits) for v in np.asarray(values, dtype=np.float64).ravel()]
