"""Plain-text tables for the terminal, drawn by rich (imported only when a table is made)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    title: str | None = None,
    right: Sequence[int] = (),
    footer: str | None = None,
) -> str:
    """Render ``rows`` under ``headers`` as a boxed text table; columns listed in
    ``right`` are right-aligned (numbers). No colour codes: safe to print anywhere."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for i, header in enumerate(headers):
        t.add_column(str(header), justify="right" if i in right else "left")
    for row in rows:
        t.add_row(*(str(cell) for cell in row))
    out = io.StringIO()
    Console(file=out, width=200, color_system=None, highlight=False, emoji=False).print(t)
    text = "\n".join(line.rstrip() for line in out.getvalue().splitlines()).strip("\n")
    return f"{text}\n{footer}" if footer else text
