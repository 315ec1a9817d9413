"""Choosing an epoch on validation data: the seeded split of the training rows, the
tracker that remembers the best epoch (its weights and state) and stops early, and
what the network's metadata records about the choice.

The test set never enters here: an epoch is chosen on rows held out of the training
data (or on validation data the caller gives), never on the rows a report scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .network import Network

Array = np.ndarray
_SPLIT_STREAM = 0x5EED  # the validation split's generator: (seed, _SPLIT_STREAM), apart from batch orders

__all__ = ["EarlyStopping", "record_selection", "resume_tracker", "split_indices"]


def split_indices(n: int, fraction: float, seed: int | None) -> tuple[Array, Array]:
    """Rows (train, validation) of a seeded split of ``n`` rows, each sorted;
    ``round(fraction · n)`` rows (at least 1) go to validation."""
    if not (isinstance(fraction, (int, float)) and 0.0 < fraction < 1.0):
        raise ValueError(f"validation_split must be a fraction in (0, 1), not {fraction!r}")
    k = min(max(1, round(fraction * n)), n - 1)
    if k < 1:
        raise ValueError(f"cannot split {n} row(s) into training and validation parts")
    order = np.random.default_rng([seed if seed is not None else 0, _SPLIT_STREAM]).permutation(n)
    return np.sort(order[k:]), np.sort(order[:k])


@dataclass
class EarlyStopping:
    """Tracks the monitored validation score; remembers the best epoch and its weights.

    ``patience``: stop after that many epochs without improvement (None: never stop).
    """

    monitor: str = "val_loss"
    patience: int | None = None
    keep_best: bool = False
    best_epoch: int = 0
    best_value: float = math.nan
    wait: int = 0
    best_params: Array | None = field(default=None, repr=False)
    best_state: Array | None = field(default=None, repr=False)

    def better(self, value: float) -> bool:
        if math.isnan(self.best_value):
            return True
        return value < self.best_value if self.monitor == "val_loss" else value > self.best_value

    def update(self, epoch: int, row: dict[str, Any], params: Array, state: Array | None = None) -> bool:
        """Record epoch ``epoch``'s row (and its θ and state); True when training should stop."""
        value = float(row[self.monitor])
        if self.better(value):
            self.best_epoch, self.best_value, self.wait = epoch, value, 0
            if self.keep_best:
                self.best_params = params.copy()
                self.best_state = None if state is None else state.copy()
        else:
            self.wait += 1
        return self.patience is not None and self.wait >= self.patience

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps to resume this tracker (JSON)."""
        return {"monitor": self.monitor, "best_epoch": self.best_epoch,
                "best_value": None if math.isnan(self.best_value) else self.best_value, "wait": self.wait}


def resume_tracker(net: Network, tracker: EarlyStopping, initial_epoch: int) -> None:
    """On resume, the tracker continues from the state saved with the checkpoint."""
    state = net.metadata.get("_selection") if initial_epoch else None
    if isinstance(state, dict) and state.get("monitor") == tracker.monitor:
        tracker.best_epoch = int(state.get("best_epoch") or 0)
        value = state.get("best_value")
        tracker.best_value = math.nan if value is None else float(value)
        tracker.wait = int(state.get("wait") or 0)
        if tracker.keep_best and net.best_params is not None and net.best_params.shape == net.params.shape:
            tracker.best_params = net.best_params.copy()
            if net.best_state is not None and net.best_state.shape == net.state.shape:
                tracker.best_state = net.best_state.copy()


def record_selection(net: Network, x_val: Array | None, seed: int | None, validation_split: float,
                     tracker: EarlyStopping, restore_best: bool, stopped_early: bool) -> None:
    """``net.metadata["selection"]``: which data chose the best epoch, and what was done with it."""
    if x_val is None:
        net.metadata.pop("selection", None)
        return
    source = (f"validation split {validation_split:g} of the training data "
              f"({x_val.shape[0]:,} rows, seed {seed})" if validation_split
              else f"validation data given ({x_val.shape[0]:,} rows)")
    net.metadata["selection"] = {
        "validation": source,
        "monitor": tracker.monitor,
        "best_epoch": tracker.best_epoch,
        "best_value": None if math.isnan(tracker.best_value) else tracker.best_value,
        "restored_best": bool(restore_best and tracker.best_params is not None),
        "stopped_early": stopped_early,
    }
