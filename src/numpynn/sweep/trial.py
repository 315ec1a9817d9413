"""One trial of a sweep: its network and recipe from its config, trained and scored.

:func:`run_trial` depends only on the trial (its config, the seed, the validation
split) and the data, and uses one BLAS thread, so every engine gives the same numbers.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from .. import _parallel, models, recipes
from ..datasets import Dataset
from ..errors import DivergenceError
from ..network import Network


def build_network(config: Mapping[str, Any], seed: int, n_features: int, n_classes: int) -> Network:
    """The untrained network of a trial's config: its model's entry, with the options the
    entry takes (:func:`numpynn.models.build`)."""
    entry = models.MODELS[config["model"]]
    return models.build(config["model"], n_features, n_classes, seed,
                        **{k: config[k] for k in entry.options if k in config})


def trial_recipe(config: Mapping[str, Any], validation_split: float) -> recipes.Recipe:
    """The training recipe of a trial's config, scored on ``validation_split``."""
    names = set(recipes.Recipe.__dataclass_fields__) - {"notes", "validation_split"}
    return recipes.Recipe(**{k: config[k] for k in names if k in config}, validation_split=validation_split)


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with the sweep extra
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def run_trial(trial: Mapping[str, Any], data: Dataset,
              threads: int = 1) -> tuple[dict[str, Any], np.ndarray | None]:
    """Train one trial (``{"key", "config", "seed", "validation_split"}``) on
    ``data``'s training split with one BLAS thread; score it on the validation
    split, on ``threads`` of numpynn's threads (the same bits whatever their number).
    Returns its row (plain data) and the trained parameters (None if training
    diverged). Runs wherever the engine puts it: this process, a joblib worker or
    a Dask worker."""
    config = trial["config"]
    started = time.perf_counter()
    with _one_blas_thread(), _parallel.using(threads):
        net = build_network(config, trial["seed"], data.n_features, data.n_classes)
        recipe = trial_recipe(config, trial["validation_split"])
        row: dict[str, Any] = {"key": trial["key"], "config": dict(config), "error": None}
        try:
            net, history = recipes.train_classifier(data, net, recipe, progress=False, test=False)
        except DivergenceError as e:
            row.update({"val_accuracy": None, "val_loss": None, "best_epoch": None, "epochs": None,
                        "error": str(e), "history": {}})
            row["seconds"] = round(time.perf_counter() - started, 3)
            return row, None
    selection = net.metadata.get("selection") or {}
    # the scores of the weights the trial ends with: the best epoch's when they were restored
    at = (selection["best_epoch"] - 1) if selection.get("restored_best") else len(history["epoch"]) - 1
    row.update({
        "val_accuracy": float(history["val_accuracy"][at]),
        "val_loss": float(history["val_loss"][at]),
        "best_epoch": selection.get("best_epoch"),
        "epochs": len(history["epoch"]),
        "history": {k: [int(v) if k == "epoch" else float(v) for v in vals]
                    for k, vals in history.items() if k != "seconds"},
        "seconds": round(time.perf_counter() - started, 3),
    })
    return row, net.params.copy()


def rank(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """Best first: highest validation accuracy, then lowest validation loss, then grid order."""
    if row.get("val_accuracy") is None:
        return (1, 0.0, 0.0, row["trial"])
    return (0, -row["val_accuracy"], row["val_loss"], row["trial"])
