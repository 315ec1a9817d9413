"""One argument check and one message shape, shared by every room.

:func:`whole_number` is the check a count (epochs, a batch size, a stride, a
seed, a number of jobs) goes through wherever it is read: from Python, the CLI
or a file. :func:`one_line` folds any text into the single line numpynn's
errors are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["one_line", "whole_number"]


def one_line(text: object) -> str:
    """``text`` as one line: every run of whitespace (newlines included) becomes one space."""
    return " ".join(str(text).split())


def whole_number(value: Any, name: str, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as an ``int``, or ``ValueError`` (one line naming ``name``) unless it is a whole
    number (not a bool, not a float) in ``[minimum, maximum]``."""
    ok = not isinstance(value, bool) and isinstance(value, (int, np.integer))
    if ok and value >= minimum and (maximum is None or value <= maximum):
        return int(value)
    if minimum == 1:
        kind = "a positive whole number"
    elif minimum == 0:
        kind = "a non-negative whole number"
    else:
        kind = f"a whole number of at least {minimum}"
    if maximum is not None:
        kind += f" up to {maximum:,}"
    raise ValueError(f"{name} must be {kind}, not {value!r}")
