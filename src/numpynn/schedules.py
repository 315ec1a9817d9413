"""Learning-rate schedules: ``f(step, total_steps) -> factor`` of the base rate, by name.

Each registers itself where it is defined; ``numpynn train --schedule``, sweeps and
recipes read the registry. ``constant`` is no schedule (None): the optimiser's rate.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ._registry import Registry

Schedule = Callable[[int, int], float]

#: Learning-rate schedules by name (None: constant).
SCHEDULES: Registry[Schedule | None] = Registry("schedule")
SCHEDULES.add("constant", None)


@SCHEDULES.register("cosine")
def cosine(step: int, total: int) -> float:
    """Half a cosine from 1 to 0 over the run: ``½ (1 + cos(π s / S))``."""
    return 0.5 * (1.0 + math.cos(math.pi * step / total))


def get_schedule(schedule: str | Schedule | None) -> Schedule | None:
    """A schedule from its name, a function ``f(step, total) -> factor``, or None (constant)."""
    if schedule is None:
        return None
    if isinstance(schedule, str) and schedule in SCHEDULES:
        return SCHEDULES[schedule]
    if callable(schedule):
        return schedule
    raise ValueError(f"unknown schedule {schedule!r}: use {', '.join(map(repr, SCHEDULES))} or a function")
