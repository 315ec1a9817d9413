"""The server's log: one line per event on stderr, a traceback only with ``NUMPYNN_DEBUG=1``.

Every other module of :mod:`numpynn.web` may import this one; it imports none of them.
"""

from __future__ import annotations

import os
import sys
import traceback

from .._checks import one_line

__all__ = ["log_failure", "say"]


def say(text: str) -> None:
    """One line to stderr, at once."""
    print(text, file=sys.stderr, flush=True)


def log_failure(what: str, e: BaseException, hint: str = "") -> None:
    """``numpynn serve: {what}: {type}: {message}{hint}`` as one line, or the traceback
    with ``NUMPYNN_DEBUG=1``."""
    if os.environ.get("NUMPYNN_DEBUG"):
        traceback.print_exception(e, file=sys.stderr)
    else:
        say(f"numpynn serve: {what}: {type(e).__name__}: {one_line(e)[:300]}{hint}")
