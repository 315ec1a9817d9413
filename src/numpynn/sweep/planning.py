"""Planning a sweep: the grid read and checked, the trials drawn from it, each trial's full config.

Everything here runs before any trial does, so that a bad grid is one line of
:class:`~numpynn.sweep.options.GridError` before anything is written or trained.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .. import models, recipes
from .._checks import one_line
from ..datasets import Dataset
from .options import DEFAULT_MODEL, OPTIONS, GridError, models_taking, option
from .trial import build_network

#: Without ``random``, a grid may hold at most this many trials (and ``random`` may ask for as many).
MAX_TRIALS = 10_000
_RANDOM_STREAM = 0x5EE9  # the random draw of trials: default_rng([seed, _RANDOM_STREAM])
_ENUMERATE = 100_000  # --random draws among the distinct trials of a grid up to this size, else by index


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
        found = option(name)
        if found.name in raw:
            raise GridError(f"{found.name} appears twice in the grid: give all its values at once")
        separator = ":" if found.name == "layers" else ","
        values = [v.strip() for v in text.split(separator) if v.strip()]
        if not values:
            raise GridError(f"{found.name}= has no values: give at least one")
        raw[found.name] = values
    return check_grid(raw)


def _values(name: str, values: Any) -> list[Any]:
    """The distinct values of one option of a grid, read and checked (a bare value is one value)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        values = [values]
    values = list(values)
    if name == "layers" and values and isinstance(values[0], int):
        values = [values]  # one list of sizes
    if not values:
        raise GridError(f"{name} has no values: give at least one")
    out = []
    for value in values:
        try:
            value = OPTIONS[name].convert(value)
        except ValueError as e:
            raise GridError(f"bad value for {name}: {e}") from None
        if value not in out:
            out.append(value)
    return out


def check_grid(grid: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The grid with every value read and checked (a bare value is one value);
    :class:`GridError` (one line) for an unknown option, a bad value, no values, or an
    option that applies to none of the grid's models."""
    if not grid:
        raise GridError("the grid is empty: name at least one option and its values, e.g. lr=1e-3,3e-3")
    checked: dict[str, list[Any]] = {}
    for name, values in grid.items():
        found = option(name)
        if found.name in checked:
            raise GridError(f"{found.name} appears twice in the grid")
        checked[found.name] = _values(found.name, values)
    models_in = checked.get("model", [DEFAULT_MODEL])
    for name in checked:
        takers = models_taking(name)
        if not set(models_in) & set(takers):
            raise GridError(f"{name} applies only to model {' or '.join(takers)}, "
                            f"and the grid's model is {' or '.join(models_in)}")
    return checked


def grid_size(grid: Mapping[str, Sequence[Any]]) -> int:
    """The number of combinations of a (checked) grid."""
    return math.prod(len(v) for v in grid.values())


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


def trial_config(values: Mapping[str, Any], fixed: Mapping[str, Any], data: Dataset) -> dict[str, Any]:
    """The full options of one trial: its model's options (the entry's defaults) and the
    model's default recipe for the data, then the fixed options, then the trial's values
    (those that apply to its model). The recipe takes them through
    :meth:`~numpynn.recipes.Recipe.with_options`, so SGD without a rate gets its own."""
    name = values.get("model", fixed.get("model", DEFAULT_MODEL))
    entry = models.MODELS[name]
    given = {k: v for source in (fixed, values) for k, v in source.items()
             if k != "model" and name in models_taking(k)}
    recipe = recipes.default_recipe(data.n_train, name).with_options(
        **{k: v for k, v in given.items() if OPTIONS[k].part == "recipe"}).as_dict()
    recipe.pop("validation_split")
    arch = {**entry.options, **{k: v for k, v in given.items() if k in entry.options}}
    return {"model": name, **arch, **recipe}


def _fingerprint(data: Dataset) -> str:
    """Which training data the trials saw: a digest of its images and labels."""
    h = hashlib.blake2b(digest_size=12)
    for array in (data.x_train, data.y_train):
        h.update(str((array.dtype.str, array.shape)).encode())
        h.update(np.ascontiguousarray(array).data)
    return h.hexdigest()


def _key(config: Mapping[str, Any], seed: int, validation_split: float, data_id: str) -> str:
    text = json.dumps({"config": config, "seed": seed, "validation_split": validation_split,
                       "data": data_id}, sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


def _combinations(grid: Mapping[str, list[Any]], total: int, random: int | None,
                  rng: np.random.Generator) -> Iterator[tuple[Any, ...]]:
    """Every combination of the grid, in order; or, for a ``random`` draw from a grid too large
    to list, that many drawn by index."""
    names = list(grid)
    if random is None or random >= total or total <= _ENUMERATE:
        return itertools.product(*(grid[n] for n in names))
    picks = sorted(int(i) for i in rng.choice(total, size=random, replace=False))
    sizes = [len(grid[n]) for n in names]
    combos = []
    for index in picks:  # mixed-radix digits of index, the last option fastest
        digits = []
        for size in reversed(sizes):
            index, d = divmod(index, size)
            digits.append(d)
        combos.append(tuple(grid[n][d] for n, d in zip(names, reversed(digits), strict=True)))
    return iter(combos)


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
    data_id = _fingerprint(data)
    trials: list[dict[str, Any]] = []
    seen = set()
    for combo in _combinations(grid, total, random, rng):
        values = dict(zip(names, combo, strict=True))
        config = trial_config(values, fixed, data)
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
    _check_networks(trials, data)
    swept = [n for n in names if len(grid[n]) > 1]
    return trials, swept


def _check_networks(trials: Sequence[Mapping[str, Any]], data: Dataset) -> None:
    """Each distinct network of the trials can be built and fits the data: as many inputs as
    the data has pixels, as many outputs as classes; :class:`GridError` (one line) if not."""
    built = set()
    for trial in trials:
        config = trial["config"]
        arch = {k: config[k] for k in ("model", *models.MODELS[config["model"]].options)}
        text = json.dumps(arch, sort_keys=True)
        if text in built:
            continue
        built.add(text)
        try:
            net = build_network(config, 0, data.n_features, data.n_classes)
        except ValueError as e:
            raise GridError(one_line(e)) from None
        if (net.n_in, net.n_out) != (data.n_features, data.n_classes):
            given = ", ".join(f"{k}={_grid_text(v)}" for k, v in arch.items()
                              if k != "model" and v != models.MODELS[arch["model"]].options[k])
            raise GridError(f"bad value for {arch['model']} ({given}): its network must start with "
                            f"{data.n_features} inputs (pixels) and end with {data.n_classes} outputs "
                            f"(classes) for {data.name}, not {net.n_in} and {net.n_out}")


def _grid_text(value: Any) -> str:
    """A value as a grid gives it (``784,128,10`` for a list of sizes)."""
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)
