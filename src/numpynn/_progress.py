"""Progress bars, drawn by rich, on a terminal only.

A bar is drawn on stderr when stderr is a terminal; into a file or a pipe
(``numpynn train 2>log``) nothing is written at all. Updates are cheap (a
counter), and the bar is redrawn at most ten times a second, so a bar costs
nothing measurable per training batch. rich is imported only when a bar is
drawn.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

_REDRAW = 0.1  # seconds between redraws


def on_terminal(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default stderr) is a terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


class Bar:
    """A progress bar over ``total`` units (``"B"``: bytes, else counted things).

    ``update(n)`` adds ``n`` done; ``close()`` (or leaving a ``with`` block)
    removes the bar from the screen. Disabled (``enabled=False``, or stderr
    not a terminal), it does nothing.
    """

    def __init__(self, total: int, *, description: str = "", unit: str = "",
                 enabled: bool = True) -> None:
        self._progress: Any = None
        self._pending = 0
        self._last = 0.0
        if not enabled or not on_terminal():
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        amount = ([DownloadColumn(binary_units=True), TransferSpeedColumn()] if unit == "B"
                  else [MofNCompleteColumn(), TextColumn(unit)])
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), *amount, TimeRemainingColumn(),
            console=Console(file=sys.stderr), transient=True, auto_refresh=False,
        )
        self._task = self._progress.add_task(description, total=total)
        self._progress.start()

    def update(self, n: int = 1) -> None:
        if self._progress is None:
            return
        self._pending += n
        now = time.monotonic()
        if now - self._last >= _REDRAW:
            self._flush(now)

    def _flush(self, now: float) -> None:
        self._progress.update(self._task, advance=self._pending)
        self._pending = 0
        self._last = now
        self._progress.refresh()

    def reset(self, total: int | None = None) -> None:
        """Start again from zero (e.g. the next epoch)."""
        if self._progress is None:
            return
        self._pending = 0
        self._progress.reset(self._task, total=total)

    def set_description(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=text)

    def close(self) -> None:
        if self._progress is None:
            return
        progress, self._progress = self._progress, None
        progress.stop()

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
