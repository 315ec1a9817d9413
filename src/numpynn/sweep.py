"""Hyper-parameter sweeps: many trainings, scored on a validation split, run by joblib or Dask.

::

    import numpynn as nn

    data = nn.datasets.load("mnist-sample")
    result = nn.sweep(data, {"lr": [1e-3, 3e-3, 1e-2], "batch_size": [32, 64]}, epochs=10)
    result.table[0]          # the best trial: {"options": {...}, "val_accuracy": ..., ...}
    result.test              # the test set, evaluated once, for the best trial only

Every trial trains on the training split of ``data`` and is scored on the same
seeded validation split of the training images (:func:`numpynn.training.split_indices`),
so trials compare on equal terms; the test set is never seen by a trial. The
trials run in parallel processes on this machine with joblib (``jobs``), or on
a Dask cluster (``scheduler="tcp://HOST:PORT"``): each trial is one call of
:func:`run_trial`, which depends only on its options, the seed and the data,
and uses one BLAS thread, so both engines give the same numbers.

With ``out``, each finished trial is one line of ``out/results.jsonl`` (the file
is rewritten atomically after each), the best model so far is kept in
``out/best.safetensors`` and the figure goes to ``out/sweep.png``; a sweep that
was killed, run again with the same ``out``, skips the trials already there.

joblib and dask.distributed are optional: ``pip install 'numpynn[sweep]'``.

For tests only: with ``NUMPYNN_SWEEP_HOLD=N`` in the environment, a sweep that has
finished (and written) N trials in this run waits there until it is killed, so that
a test can kill it at a known point rather than racing the clock.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import os
import sys
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import models, recipes
from .activations import ACTIVATIONS
from .datasets import Dataset
from .errors import DivergenceError
from .losses import LOSSES
from .network import Network
from .optimizers import OPTIMIZERS
from .training import SCHEDULES

MISSING = "sweeps need joblib and dask.distributed: pip install 'numpynn[sweep]'"
#: Without ``random``, a grid may hold at most this many trials (and ``random`` may ask for as many).
MAX_TRIALS = 10_000
#: Seconds :func:`connect` waits for a Dask scheduler that does not answer.
CONNECT_TIMEOUT = 3.0
HOLD = "NUMPYNN_SWEEP_HOLD"  # the test-only hook (see the module's docstring)
RESULTS = "results.jsonl"
BEST = "best.safetensors"
FIGURE = "sweep.png"
_RANDOM_STREAM = 0x5EE9  # the random draw of trials: default_rng([seed, _RANDOM_STREAM])
_ENUMERATE = 100_000  # --random draws among the distinct trials of a grid up to this size, else by index


class GridError(ValueError):
    """A grid that cannot be run: an unknown option, a bad value, no values, too many trials."""


# --- the options a grid can sweep ---------------------------------------------------------------
def _number(kind: type, low: float, high: float, rule: str) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"expected {rule}, got {value!r}")
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected {rule}, got {value!r}") from None
        if kind is int and isinstance(value, float) and value != number:
            raise ValueError(f"expected {rule}, got {value!r}")
        if not (low <= number <= high) or (kind is float and not math.isfinite(number)):
            raise ValueError(f"expected {rule}, got {value!r}")
        return number

    return convert


def _name(registry: Any, *drop: str) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        names = [n for n in (registry.names() if hasattr(registry, "names") else registry) if n not in drop]
        text = str(value).strip().lower().replace("-", "_")
        if text not in names:
            raise ValueError(f"expected one of {', '.join(names)}, got {value!r}")
        return text

    return convert


def _sizes(value: Any) -> list[int]:
    if isinstance(value, str):
        try:
            sizes = [int(s) for s in value.replace(" ", "").split(",") if s]
        except ValueError:
            raise ValueError(f"expected sizes like 784,128,64,10, got {value!r}") from None
    else:
        try:
            sizes = [int(s) for s in value]
        except (TypeError, ValueError):
            raise ValueError(f"expected sizes like [784, 128, 64, 10], got {value!r}") from None
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ValueError(f"expected at least two positive sizes like 784,128,64,10, got {value!r}")
    return sizes


def _patience(value: Any) -> int | None:
    if value is None or str(value).strip().lower() == "none":
        return None
    return _number(int, 1, 10**9, "a whole number of epochs (or none)")(value)


@dataclass(frozen=True)
class Option:
    """One option a grid can sweep: what it sets (``recipe`` or ``model``), how a
    value is read and checked, and which models it applies to."""

    name: str
    part: str
    convert: Callable[[Any], Any]
    help: str
    models: tuple[str, ...] = ("mlp", "cnn")


#: The options a grid can sweep, by name (``--grid NAME=V1,V2``).
OPTIONS: dict[str, Option] = {o.name: o for o in (
    Option("lr", "recipe", _number(float, 1e-12, 1e6, "a positive learning rate"), "learning rate"),
    Option("batch_size", "recipe", _number(int, 1, 10**7, "a positive whole number"), "rows per step"),
    Option("epochs", "recipe", _number(int, 1, 10**5, "a positive whole number"), "passes over the data"),
    Option("optimizer", "recipe", _name(OPTIMIZERS), "optimiser"),
    Option("momentum", "recipe", _number(float, 0.0, 0.999999, "a momentum in [0, 1)"), "SGD momentum"),
    Option("schedule", "recipe", _name(list(SCHEDULES)), "learning-rate schedule"),
    Option("shift", "recipe", _number(int, 0, 2, "0, 1 or 2 pixels"), "random shifts, in pixels"),
    Option("patience", "recipe", _patience, "early stopping after N epochs without a better val loss"),
    Option("model", "model", _name(models.MODELS), "the network (mlp or cnn)"),
    Option("layers", "model", _sizes, "layer sizes of the mlp; alternatives separated by ':'", ("mlp",)),
    Option("activation", "model", _name(ACTIVATIONS, "softmax"), "hidden activation of the mlp", ("mlp",)),
    Option("dropout", "model", _number(float, 0.0, 0.999999, "a probability in [0, 1)"),
           "dropout after each hidden dense layer"),
    Option("loss", "model", _name(LOSSES), "loss of the mlp", ("mlp",)),
)}
_ALIASES = {"batch": "batch_size", "learning_rate": "lr", "optimiser": "optimizer", "layer_sizes": "layers"}
_NOT_SWEPT = {
    "seed": "the seed is the sweep's own (--seed): it also draws the validation split, which every "
            "trial must share",
    "validation_split": "every trial is scored on the same validation split (--validation-split)",
}


def _option(name: Any) -> Option:
    key = str(name).strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key in _NOT_SWEPT:
        raise GridError(f"{name} cannot be swept: {_NOT_SWEPT[key]}")
    if key not in OPTIONS:
        raise GridError(f"unknown option {name!r}: a grid can sweep {', '.join(OPTIONS)}")
    return OPTIONS[key]


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """Read ``["lr=1e-3,3e-3", "layers=784,128,10:784,64,10"]`` into a grid
    ``{"lr": [0.001, 0.003], "layers": [[784, 128, 10], [784, 64, 10]]}``:
    values separated by commas (``:`` between the layer lists). One line of
    :class:`GridError` for anything wrong."""
    raw: dict[str, list[str]] = {}
    for item in items:
        name, eq, text = str(item).partition("=")
        if not eq or not name.strip():
            raise GridError(f"expected NAME=VALUE,VALUE,... in the grid, got {item!r}")
        option = _option(name)
        if option.name in raw:
            raise GridError(f"{option.name} appears twice in the grid: give all its values at once")
        separator = ":" if option.name == "layers" else ","
        values = [v.strip() for v in text.split(separator) if v.strip()]
        if not values:
            raise GridError(f"{option.name}= has no values: give at least one")
        raw[option.name] = values
    return check_grid(raw)


def check_grid(grid: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The grid with every value read and checked (a bare value is one value);
    :class:`GridError` (one line) for an unknown option, a bad value or no values."""
    if not grid:
        raise GridError("the grid is empty: name at least one option and its values, e.g. lr=1e-3,3e-3")
    checked: dict[str, list[Any]] = {}
    for name, values in grid.items():
        option = _option(name)
        if option.name in checked:
            raise GridError(f"{option.name} appears twice in the grid")
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            values = [values]
        values = list(values)
        if option.name == "layers" and values and isinstance(values[0], int):
            values = [values]  # one list of sizes
        if not values:
            raise GridError(f"{option.name} has no values: give at least one")
        out = []
        for value in values:
            try:
                value = option.convert(value)
            except ValueError as e:
                raise GridError(f"bad value for {option.name}: {e}") from None
            if value not in out:
                out.append(value)
        checked[option.name] = out
    models_in = checked.get("model", ["mlp"])
    for name in checked:
        if not set(models_in) & set(OPTIONS[name].models):
            raise GridError(f"{name} applies only to model {' or '.join(OPTIONS[name].models)}, "
                            f"and the grid's model is {' or '.join(models_in)}")
    return checked


def grid_size(grid: Mapping[str, Sequence[Any]]) -> int:
    """The number of combinations of a (checked) grid."""
    return math.prod(len(v) for v in grid.values())


# --- trials -------------------------------------------------------------------------------------
def _fingerprint(data: Dataset) -> str:
    """Which training data the trials saw: a digest of its images and labels."""
    h = hashlib.blake2b(digest_size=12)
    for array in (data.x_train, data.y_train):
        h.update(str((array.dtype.str, array.shape)).encode())
        h.update(np.ascontiguousarray(array).data)
    return h.hexdigest()


def _config(values: Mapping[str, Any], fixed: Mapping[str, Any], data: Dataset) -> dict[str, Any]:
    """The full options of one trial: the model's defaults and the default recipe for
    the data, then the fixed options, then the trial's values (those that apply)."""
    model = values.get("model", fixed.get("model", "mlp"))
    recipe = recipes.default_recipe(data.n_train, model).as_dict()
    recipe.pop("validation_split")
    if model == "mlp":
        arch: dict[str, Any] = {"model": "mlp", "layers": [data.n_features, 128, 64, data.n_classes],
                                "activation": "sigmoid", "dropout": 0.0, "loss": "cross_entropy"}
    else:
        arch = {"model": model, "dropout": 0.25}
    config = {**arch, **recipe}
    for source in (fixed, values):
        for name, value in source.items():
            if model in OPTIONS[name].models:
                config[name] = value
    if config["optimizer"] == "sgd" and "lr" not in values and "lr" not in fixed:
        config["lr"] = 0.1  # as numpynn train does
    return config


def _key(config: Mapping[str, Any], seed: int, validation_split: float, data_id: str) -> str:
    text = json.dumps({"config": config, "seed": seed, "validation_split": validation_split,
                       "data": data_id}, sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


def _build(config: Mapping[str, Any], seed: int) -> Network:
    if config["model"] == "mlp":
        return models.mlp(config["layers"], config["activation"], config["loss"], seed,
                          dropout=config["dropout"])
    return models.MODELS[config["model"]](seed=seed, dropout=config["dropout"])


def _recipe(config: Mapping[str, Any], validation_split: float) -> recipes.Recipe:
    names = set(recipes.Recipe.__dataclass_fields__) - {"notes", "validation_split"}
    return recipes.Recipe(**{k: config[k] for k in names}, validation_split=validation_split)


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with the sweep extra
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def run_trial(trial: Mapping[str, Any], data: Dataset) -> tuple[dict[str, Any], np.ndarray | None]:
    """Train one trial (``{"key", "config", "seed", "validation_split"}``) on
    ``data``'s training split with one BLAS thread; score it on the validation
    split. Returns its row (plain data) and the trained parameters (None if
    training diverged). Runs wherever the engine puts it: this process, a
    joblib worker or a Dask worker."""
    config = trial["config"]
    started = time.perf_counter()
    with _one_blas_thread():
        net = _build(config, trial["seed"])
        recipe = _recipe(config, trial["validation_split"])
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


def _rank(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """Best first: highest validation accuracy, then lowest validation loss, then grid order."""
    if row.get("val_accuracy") is None:
        return (1, 0.0, 0.0, row["trial"])
    return (0, -row["val_accuracy"], row["val_loss"], row["trial"])


# --- engines: joblib on this machine, or a Dask cluster -----------------------------------------
def _need(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(MISSING) from None


def require(dask: bool = False) -> None:
    """ImportError with how to install them, unless joblib (and, with ``dask``,
    dask.distributed) can be imported."""
    _need("joblib")
    _need("threadpoolctl")
    if dask:
        _need("dask.distributed")


def _joblib_engine(trials: list[dict[str, Any]], data: Dataset, jobs: int) -> Iterator[Any]:
    joblib = _need("joblib")
    _need("threadpoolctl")
    if jobs == 1:  # in this process, one after the other
        for trial in trials:
            yield run_trial(trial, data)
        return
    parallel = joblib.Parallel(n_jobs=jobs, return_as="generator_unordered")
    yield from parallel(joblib.delayed(run_trial)(trial, data) for trial in trials)


def connect(scheduler: str, timeout: float = CONNECT_TIMEOUT) -> Any:
    """A ``dask.distributed.Client`` of the scheduler at ``scheduler`` (``tcp://HOST:PORT``);
    :class:`ConnectionError` (one line) if it does not answer within ``timeout`` seconds:
    at once where nothing listens at a TCP address (a plain connection is tried first,
    before Dask is even imported)."""
    _probe(scheduler, timeout)
    _need("joblib")
    distributed = _need("dask.distributed")
    try:
        return distributed.Client(scheduler, timeout=f"{timeout:g}s")
    except (OSError, TimeoutError) as e:
        raise ConnectionError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
    except Exception as e:  # noqa: BLE001 - something answers there, but not as a Dask scheduler
        raise ConnectionError(f"no Dask scheduler answers at {scheduler} "
                              f"({type(e).__name__}: {' '.join(str(e).split())[:200]})") from None


def _probe(scheduler: str, timeout: float) -> None:
    """ConnectionError unless a TCP connection to a ``tcp://`` or ``tls://`` address (or a bare
    ``HOST:PORT``) opens within ``timeout`` seconds; other addresses are left to Dask."""
    import socket

    scheme, _, rest = scheduler.rpartition("://")
    host, _, port = rest.rpartition(":")
    host = host.strip("[]")  # an IPv6 address
    if (scheme or "tcp") not in ("tcp", "tls") or not host or not port.isdigit():
        return
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as e:
        reason = e.strerror or str(e) or type(e).__name__
        raise ConnectionError(f"cannot reach the Dask scheduler at {scheduler}: {reason}") from None


def _dask_engine(trials: list[dict[str, Any]], data: Dataset, client: Any, owned: bool) -> Iterator[Any]:
    """The trials on the cluster of ``client`` (closed at the end if ``owned``)."""
    distributed = _need("dask.distributed")
    with client if owned else contextlib.nullcontext():
        shared = client.scatter(data, broadcast=True, hash=False)  # the data travels once per worker
        futures = [client.submit(run_trial, trial, shared, pure=False) for trial in trials]
        for future in distributed.as_completed(futures):
            yield future.result()


def _hold_after() -> int | None:
    """NUMPYNN_SWEEP_HOLD, the test-only hook: hold after this many trials of this run."""
    text = os.environ.get(HOLD, "").strip()
    return int(text) if text.isdigit() else None


def _hold() -> None:  # pragma: no cover - ends only when the process is killed
    while True:
        time.sleep(3600)


# --- the sweep ----------------------------------------------------------------------------------
@dataclass
class SweepResult:
    """What :func:`sweep` returns. ``table``: one plain dict per trial, best first
    (``rank``, ``options`` (the swept ones), ``config`` (all), ``val_accuracy``,
    ``val_loss``, ``best_epoch``, ``epochs``, ``seconds``, ``history``, ``error``);
    ``test``: the best trial's network on the test set, evaluated once;
    ``model``: that network (None if every trial diverged)."""

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


def check(
    grid: Mapping[str, Any],
    *,
    random: int | None = None,
    epochs: int | None = None,
    validation_split: float = 0.1,
) -> tuple[dict[str, list[Any]], dict[str, Any], int]:
    """Everything about a sweep that can be checked without the data: the grid
    (checked), the options fixed for every trial, and the number of combinations;
    :class:`GridError` (one line) for a bad grid, too many trials or a bad setting."""
    grid = check_grid(grid)
    if isinstance(validation_split, bool) or not (isinstance(validation_split, (int, float))
                                                  and 0 < validation_split < 1):
        raise GridError(f"a sweep scores trials on a validation split: it must be in (0, 1), "
                        f"not {validation_split!r}")
    fixed: dict[str, Any] = {}
    if epochs is not None:
        if "epochs" in grid:
            raise GridError("epochs is both in the grid and given as --epochs: give it once")
        try:
            fixed["epochs"] = OPTIONS["epochs"].convert(epochs)
        except ValueError as e:
            raise GridError(f"bad value for epochs: {e}") from None
    total = grid_size(grid)
    if random is not None:
        if isinstance(random, bool) or not isinstance(random, int) or not 1 <= random <= MAX_TRIALS:
            raise GridError(f"--random takes 1 to {MAX_TRIALS:,} trials, not {random!r}")
    elif total > MAX_TRIALS:
        raise GridError(f"the grid holds {total:,} trials, more than {MAX_TRIALS:,}: "
                        "draw some of them with --random N")
    return grid, fixed, total


def plan(
    data: Dataset,
    grid: Mapping[str, Any],
    *,
    random: int | None = None,
    seed: int = 0,
    epochs: int | None = None,
    validation_split: float = 0.1,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The trials of a sweep, in order, and the names of the swept options;
    :class:`GridError` (one line) before anything runs if the grid is bad."""
    grid, fixed, total = check(grid, random=random, epochs=epochs, validation_split=validation_split)
    names = list(grid)
    rng = np.random.default_rng([seed, _RANDOM_STREAM])
    every = itertools.product(*(grid[n] for n in names))
    if random is not None and random < total and total > _ENUMERATE:  # draw combinations by index
        picks = sorted(int(i) for i in rng.choice(total, size=random, replace=False))
        sizes = [len(grid[n]) for n in names]
        combos = []
        for index in picks:  # mixed-radix digits of index, the last option fastest
            digits = []
            for size in reversed(sizes):
                index, d = divmod(index, size)
                digits.append(d)
            combos.append(tuple(grid[n][d] for n, d in zip(names, reversed(digits), strict=True)))
        every = iter(combos)
    data_id = _fingerprint(data)
    trials: list[dict[str, Any]] = []
    seen = set()
    for combo in every:
        values = dict(zip(names, combo, strict=True))
        config = _config(values, fixed, data)
        options = {n: (v if n in config and config[n] == v else None) for n, v in values.items()}
        key = _key(config, seed, validation_split, data_id)
        if key in seen:  # e.g. layers, which does not apply to the cnn
            continue
        seen.add(key)
        trials.append({"trial": len(trials), "key": key, "options": options, "config": config,
                       "seed": seed, "validation_split": validation_split})
    if random is not None and random < len(trials) and total <= _ENUMERATE:  # draw among distinct trials
        picks = sorted(int(i) for i in rng.choice(len(trials), size=random, replace=False))
        trials = [{**trials[i], "trial": n} for n, i in enumerate(picks)]
    for config in {json.dumps(t["config"], sort_keys=True): t["config"] for t in trials}.values():
        _check_against(config, data)
    swept = [n for n in names if len(grid[n]) > 1]
    return trials, swept


def _check_against(config: Mapping[str, Any], data: Dataset) -> None:
    """A trial's network fits the data: first layer the pixels, last layer the classes."""
    if config["model"] == "mlp":
        sizes = config["layers"]
        if sizes[0] != data.n_features or sizes[-1] != data.n_classes:
            raise GridError(f"bad value for layers: {','.join(map(str, sizes))} must start with "
                            f"{data.n_features} (pixels) and end with {data.n_classes} (classes) "
                            f"for {data.name}")
    elif (data.n_features, data.n_classes) != (784, 10):
        raise GridError(f"the {config['model']} reads 28x28 images of 10 classes, but {data.name} has "
                        f"{data.n_features} pixels and {data.n_classes} classes")


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


def _write_lines(path: Path, lines: list[str]) -> None:
    from ._io import atomic_write

    with atomic_write(path) as f:
        f.write(("\n".join(lines) + "\n").encode("utf-8"))


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
    figure: bool = True,
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
    ``results.jsonl`` (one line per finished trial; a rerun skips those), ``best.safetensors`` and, with
    ``figure`` and matplotlib, ``sweep.png``. ``on_trial(row, done, total)`` is
    called as each trial finishes.
    """
    trials, swept = plan(data, grid, random=random, seed=seed, epochs=epochs,
                         validation_split=validation_split)
    if scheduler is None:
        jobs = _cores() if jobs is None else jobs
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise GridError(f"jobs must be a positive whole number, not {jobs!r}")
    require(dask=scheduler is not None)
    started = time.perf_counter()
    client = connect(scheduler) if isinstance(scheduler, str) else scheduler  # before any file is made
    folder = Path(out) if out is not None else None
    lines: list[str] = []
    done: dict[str, dict[str, Any]] = {}
    if folder is not None:
        from ._io import make_folder

        try:
            make_folder(folder)
        except BaseException:
            if client is not scheduler:
                client.close()
            raise
        lines, done = _read_results(folder / RESULTS)
    by_key = {t["key"]: t for t in trials}
    finished = {k: done[k] for k in by_key if k in done}
    pending = [t for t in trials if t["key"] not in finished]
    best_model: tuple[str, np.ndarray] | None = None

    def best_so_far() -> dict[str, Any] | None:
        rows = [{**r, "trial": by_key[k]["trial"]} for k, r in finished.items()]
        rows = [r for r in rows if r.get("val_accuracy") is not None]
        return min(rows, key=_rank) if rows else None

    engine = (_dask_engine(pending, data, client, owned=client is not scheduler) if client is not None
              else _joblib_engine(pending, data, jobs))  # type: ignore[arg-type]
    count = len(finished)
    hold = _hold_after()
    try:
        for row, params in engine:
            leader = best_so_far()
            finished[row["key"]] = row
            count += 1
            if folder is not None:
                lines.append(json.dumps(row))
                _write_lines(folder / RESULTS, lines)
            if params is not None and (leader is None or _rank({**row, "trial": by_key[row["key"]]["trial"]})
                                       < _rank(leader)):
                best_model = (row["key"], params)
                if folder is not None:
                    net = _build(row["config"], seed)
                    net.params[...] = params
                    net.save(str(folder / BEST), metadata={"sweep_trial": row["key"]})
            if on_trial is not None:
                on_trial(_public(row, by_key[row["key"]]), count, len(trials))
            if hold is not None and count - (len(trials) - len(pending)) >= hold:
                _hold()
    finally:
        with contextlib.suppress(Exception):
            engine.close()

    table = sorted((_public(finished[t["key"]], t) for t in trials), key=_rank)
    for rank, row in enumerate(table, 1):
        row["rank"] = rank
    result = SweepResult(data=data.name, swept=swept, table=table, test=None, ran=len(pending),
                         reused=len(trials) - len(pending), seconds=0.0,
                         validation=_validation_note(data, validation_split, seed),
                         out=str(folder) if folder is not None else None)
    best = result.best
    if best is not None:
        net = _best_network(best, best_model, folder, data, seed, validation_split)
        scores = net.evaluate(data.x_test, data.y_test)  # the test set: once, for the best trial only
        result.test = {"accuracy": scores["accuracy"], "loss": scores["loss"], "n": data.n_test,
                       "trial": best["trial"]}
        net.metadata.update({
            "dataset": data.name, "n_train": data.n_train, "n_test": data.n_test,
            "recipe": _recipe(best["config"], validation_split).as_dict(),
            "selection": {"validation": result.validation, "monitor": "val_accuracy",
                          "best_value": best["val_accuracy"], "sweep_trials": len(table)},
            "val_accuracy": best["val_accuracy"], "test_accuracy": scores["accuracy"],
            "test_loss": scores["loss"], "best_epoch": best["best_epoch"],
        })
        result.model = net
    if folder is not None and figure and table and _has_matplotlib():
        from . import plots

        result.figure = plots.save_figure(plots.sweep_results(table, swept), folder / FIGURE)
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _public(row: Mapping[str, Any], trial: Mapping[str, Any]) -> dict[str, Any]:
    """A table row: the trial's place and swept values, then what it measured."""
    return {"rank": None, "trial": trial["trial"], "options": dict(trial["options"]),
            **{k: v for k, v in row.items() if k != "key"}, "key": row["key"]}


def _best_network(best: Mapping[str, Any], in_memory: tuple[str, np.ndarray] | None, folder: Path | None,
                  data: Dataset, seed: int, validation_split: float) -> Network:
    """The best trial's trained network: from this run, from ``best.safetensors``, or trained again
    (a trial depends only on its options, the seed and the data, so that is the same network)."""
    if in_memory is not None and in_memory[0] == best["key"]:
        net = _build(best["config"], seed)
        net.params[...] = in_memory[1]
        return net
    path = folder / BEST if folder is not None else None
    if path is not None and path.exists():
        from . import load

        with contextlib.suppress(Exception):
            net = load(str(path))
            if net.metadata.get("sweep_trial") == best["key"]:
                return net
    row, params = run_trial({"key": best["key"], "config": best["config"], "seed": seed,
                             "validation_split": validation_split}, data)
    net = _build(best["config"], seed)
    net.params[...] = params
    return net


def _validation_note(data: Dataset, fraction: float, seed: int) -> str:
    from .training import split_indices

    _, rows = split_indices(data.n_train, fraction, seed)
    return f"validation split {fraction:g} of the training data ({rows.size:,} rows, seed {seed})"


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _has_matplotlib() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def format_value(value: Any) -> str:
    """An option's value as the table shows it."""
    if value is None:
        return "-"
    if isinstance(value, list):
        return "-".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class _CallableModule(types.ModuleType):
    """``numpynn.sweep(...)`` calls :func:`sweep`, and ``numpynn.sweep.OPTIONS`` is this module's."""

    def __call__(self, *args: Any, **kwargs: Any) -> SweepResult:
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
