"""Running a sweep: the planned trials on an engine, each finished one recorded, the best one tested.

With ``out``, each finished trial is one line of ``out/results.jsonl`` (rewritten atomically
after each) and the best model so far is ``out/best.safetensors``; a sweep run again with the
same ``out`` skips the trials already there (a trial's key names its config, seed,
validation split and data).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write, make_folder
from ..datasets import Dataset
from ..network import Network
from ..serialization import load, save
from ..training import split_indices
from . import engines
from .planning import plan
from .trial import build_network, rank, run_trial, trial_recipe

HOLD = "NUMPYNN_SWEEP_HOLD"  # the test-only hook (see the package's docstring)
RESULTS = "results.jsonl"
BEST = "best.safetensors"
#: The figure's file name in ``out``, written by :func:`numpynn.plots.write_sweep_figure`.
FIGURE = "sweep.png"


@dataclass
class SweepResult:
    """What :func:`sweep` returns. ``table``: one plain dict per trial, best first
    (``rank``, ``options`` (the swept ones), ``config`` (all), ``val_accuracy``,
    ``val_loss``, ``best_epoch``, ``epochs``, ``seconds``, ``history``, ``error``);
    ``test``: the best trial's network on the test set, evaluated once;
    ``model``: that network (None if every trial diverged); ``figure``: the path of
    the figure once one is written (:func:`numpynn.plots.write_sweep_figure`)."""

    data: str
    swept: list[str]
    table: list[dict[str, Any]]
    test: dict[str, Any] | None
    ran: int
    reused: int
    seconds: float
    validation: str
    out: str | None = None
    figure: str | None = None
    model: Network | None = field(default=None, repr=False)

    @property
    def best(self) -> dict[str, Any] | None:
        return self.table[0] if self.table and self.table[0]["val_accuracy"] is not None else None

    def as_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready): everything but the model."""
        return {"data": self.data, "swept": self.swept, "validation": self.validation, "best": self.best,
                "test": self.test, "ran": self.ran, "reused": self.reused, "seconds": self.seconds,
                "out": self.out, "figure": self.figure, "table": self.table}


def _read_results(path: Path) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The lines of a results file and its rows by trial key (a line that cannot be read is kept
    as it is and ignored)."""
    if not path.exists():
        return [], {}
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = {}
    for line in lines:
        with contextlib.suppress(ValueError, TypeError, KeyError):
            row = json.loads(line)
            rows[row["key"]] = row
    return lines, rows


def _public(row: Mapping[str, Any], trial: Mapping[str, Any]) -> dict[str, Any]:
    """A table row: the trial's place and swept values, then what it measured."""
    return {"rank": None, "trial": trial["trial"], "options": dict(trial["options"]),
            **{k: v for k, v in row.items() if k != "key"}, "key": row["key"]}


class _Ledger:
    """The trials of one sweep and those finished: read from ``out/results.jsonl`` (those of an
    earlier run), then one line added as each finishes; and the best trained model so far,
    kept in memory and, with ``out``, in ``out/best.safetensors``."""

    def __init__(self, trials: list[dict[str, Any]], folder: Path | None, data: Dataset, seed: int) -> None:
        self.trials = {t["key"]: t for t in trials}
        self.folder, self.data, self.seed = folder, data, seed
        self.lines, done = _read_results(folder / RESULTS) if folder is not None else ([], {})
        self.finished = {k: done[k] for k in self.trials if k in done}
        self.pending = [t for t in trials if t["key"] not in self.finished]
        self.best_model: tuple[str, np.ndarray] | None = None

    def _leader(self) -> tuple[Any, ...] | None:
        ranks = [rank({**r, "trial": self.trials[k]["trial"]}) for k, r in self.finished.items()
                 if r.get("val_accuracy") is not None]
        return min(ranks) if ranks else None

    def add(self, row: dict[str, Any], params: np.ndarray | None) -> dict[str, Any]:
        """Record a finished trial (and keep its model if it is the best so far); its table row."""
        leader = self._leader()
        trial = self.trials[row["key"]]
        self.finished[row["key"]] = row
        if self.folder is not None:
            self.lines.append(json.dumps(row))
            with atomic_write(self.folder / RESULTS) as f:
                f.write(("\n".join(self.lines) + "\n").encode("utf-8"))
        if params is not None and (leader is None or rank({**row, "trial": trial["trial"]}) < leader):
            self.best_model = (row["key"], params)
            if self.folder is not None:
                net = build_network(row["config"], self.seed, self.data.n_features, self.data.n_classes)
                net.params[...] = params
                save(net, str(self.folder / BEST), metadata={"sweep_trial": row["key"]})
        return _public(row, trial)

    def table(self) -> list[dict[str, Any]]:
        """Every trial's row, best first, ranked."""
        table = sorted((_public(self.finished[k], t) for k, t in self.trials.items()), key=rank)
        for place, row in enumerate(table, 1):
            row["rank"] = place
        return table


def sweep(
    data: Dataset,
    grid: Mapping[str, Any],
    *,
    random: int | None = None,
    seed: int = 0,
    epochs: int | None = None,
    validation_split: float = 0.1,
    jobs: int | None = None,
    scheduler: Any = None,
    out: str | os.PathLike[str] | None = None,
    on_trial: Callable[[dict[str, Any], int, int], Any] | None = None,
) -> SweepResult:
    """Train one network per combination of ``grid``'s values (or ``random`` of
    them, drawn with ``seed``) on ``data``'s training split and score each on
    the same validation split; evaluate the best trial's network on the test
    set, once. Returns a :class:`SweepResult` whose ``table`` (best first) is
    plain data.

    ``grid``: option name → values, e.g. ``{"lr": [1e-3, 3e-3], "layers":
    [[784, 128, 10], [784, 256, 10]]}`` (the names in :data:`OPTIONS`);
    options left out take the default recipe for the data and model
    (:func:`numpynn.recipes.default_recipe`), ``epochs`` fixes the epochs of
    every trial. ``seed`` seeds the networks, the batch orders, the validation
    split and the random draw. ``jobs``: joblib worker processes (default: the
    number of cores); ``scheduler``: the address of a Dask scheduler to run the
    trials on instead (:class:`ConnectionError` if it does not answer within
    :data:`CONNECT_TIMEOUT` seconds, before anything is written), or a connected
    ``dask.distributed.Client`` (:func:`connect`; left open). ``out``: a folder for
    ``results.jsonl`` (one line per finished trial; a rerun skips those) and
    ``best.safetensors``; :func:`numpynn.plots.write_sweep_figure` draws the result
    into it. ``on_trial(row, done, total)`` is called as each trial finishes.
    """
    trials, swept = plan(data, grid, random=random, seed=seed, epochs=epochs,
                         validation_split=validation_split)
    jobs = engines.check_jobs(jobs) if scheduler is None else None
    engines.require(dask=scheduler is not None)
    started = time.perf_counter()
    client = engines.connect(scheduler) if isinstance(scheduler, str) else scheduler  # before any file
    try:
        ledger = _Ledger(trials, make_folder(out) if out is not None else None, data, seed)
        work = (engines.dask_engine(ledger.pending, data, client) if client is not None
                else engines.joblib_engine(ledger.pending, data, jobs))  # type: ignore[arg-type]
        _record(work, ledger, on_trial)
    finally:
        if client is not None and client is not scheduler:
            client.close()
    result = SweepResult(data=data.name, swept=swept, table=ledger.table(), test=None,
                         ran=len(ledger.pending), reused=len(trials) - len(ledger.pending), seconds=0.0,
                         validation=validation_note(data, validation_split, seed),
                         out=str(ledger.folder) if ledger.folder is not None else None)
    if result.best is not None:
        result.model, result.test = _test_best(result, ledger, validation_split)
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _record(work: Iterable[Any], ledger: _Ledger, on_trial: Callable[..., Any] | None) -> None:
    """Each trial as it finishes: recorded, reported, and (test-only hook) held after N."""
    hold = _hold_after()
    ran = 0
    try:
        for row, params in work:
            public = ledger.add(row, params)
            ran += 1
            if on_trial is not None:
                on_trial(public, len(ledger.finished), len(ledger.trials))
            if hold is not None and ran >= hold:
                _hold()
    finally:
        with contextlib.suppress(Exception):
            work.close()  # type: ignore[attr-defined]


def _test_best(result: SweepResult, ledger: _Ledger, validation_split: float) -> tuple[Network, dict]:
    """The best trial's network, evaluated on the test set once, with its facts in its metadata."""
    best, data = result.best, ledger.data
    assert best is not None
    net = _best_network(best, ledger, validation_split)
    scores = net.evaluate(data.x_test, data.y_test)  # the test set: once, for the best trial only
    test = {"accuracy": scores["accuracy"], "loss": scores["loss"], "n": data.n_test, "trial": best["trial"]}
    net.metadata.update({
        "dataset": data.name, "n_train": data.n_train, "n_test": data.n_test,
        "recipe": trial_recipe(best["config"], validation_split).as_dict(),
        "selection": {"validation": result.validation, "monitor": "val_accuracy",
                      "best_value": best["val_accuracy"], "sweep_trials": len(result.table)},
        "val_accuracy": best["val_accuracy"], "test_accuracy": scores["accuracy"],
        "test_loss": scores["loss"], "best_epoch": best["best_epoch"],
    })
    return net, test


def _best_network(best: Mapping[str, Any], ledger: _Ledger, validation_split: float) -> Network:
    """The best trial's trained network: from this run, from ``best.safetensors``, or trained again
    (a trial depends only on its options, the seed and the data, so that is the same network)."""
    data, seed = ledger.data, ledger.seed
    if ledger.best_model is not None and ledger.best_model[0] == best["key"]:
        params = ledger.best_model[1]
    else:
        path = ledger.folder / BEST if ledger.folder is not None else None
        if path is not None and path.exists():
            with contextlib.suppress(Exception):
                net = load(str(path))
                if net.metadata.get("sweep_trial") == best["key"]:
                    return net
        _, params = run_trial({"key": best["key"], "config": best["config"], "seed": seed,
                               "validation_split": validation_split}, data)
    net = build_network(best["config"], seed, data.n_features, data.n_classes)
    net.params[...] = params
    return net


def validation_note(data: Dataset, fraction: float, seed: int) -> str:
    """Which rows every trial is scored on, in words."""
    _, rows = split_indices(data.n_train, fraction, seed)
    return f"validation split {fraction:g} of the training data ({rows.size:,} rows, seed {seed})"


def _hold_after() -> int | None:
    """NUMPYNN_SWEEP_HOLD, the test-only hook: hold after this many trials of this run."""
    text = os.environ.get(HOLD, "").strip()
    return int(text) if text.isdigit() else None


def _hold() -> None:  # pragma: no cover - ends only when the process is killed
    while True:
        time.sleep(3600)
