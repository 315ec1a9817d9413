"""The options a grid can sweep: how each value is read and checked, and which models it applies to.

A recipe option (a field of :class:`numpynn.recipes.Recipe`) applies to every model; a model
option applies to the models whose entry in :data:`numpynn.models.MODELS` takes it (the
entry's ``options``); ``model`` chooses the entry.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import models
from ..activations import ACTIVATIONS
from ..losses import LOSSES
from ..optimizers import OPTIMIZERS
from ..schedules import SCHEDULES

#: The model of a trial whose grid names none.
DEFAULT_MODEL = "mlp"


class GridError(ValueError):
    """A grid that cannot be run: an unknown option, a bad value, no values, too many trials."""


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
        names = [n for n in registry.names() if n not in drop]
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
    """One option a grid can sweep: what it sets (``recipe``: a field of the training recipe;
    ``model``: an option of the models whose entry takes it; ``network``: which model), how a
    value is read and checked, and what it means."""

    name: str
    part: str
    convert: Callable[[Any], Any]
    help: str


#: The options a grid can sweep, by name (``--grid NAME=V1,V2``).
OPTIONS: dict[str, Option] = {o.name: o for o in (
    Option("lr", "recipe", _number(float, 1e-12, 1e6, "a positive learning rate"), "learning rate"),
    Option("batch_size", "recipe", _number(int, 1, 10**7, "a positive whole number"), "rows per step"),
    Option("epochs", "recipe", _number(int, 1, 10**5, "a positive whole number"), "passes over the data"),
    Option("optimizer", "recipe", _name(OPTIMIZERS), "optimiser"),
    Option("momentum", "recipe", _number(float, 0.0, 0.999999, "a momentum in [0, 1)"), "SGD momentum"),
    Option("schedule", "recipe", _name(SCHEDULES), "learning-rate schedule"),
    Option("shift", "recipe", _number(int, 0, 2, "0, 1 or 2 pixels"), "random shifts, in pixels"),
    Option("patience", "recipe", _patience, "early stopping after N epochs without a better val loss"),
    Option("model", "network", _name(models.MODELS), "the network (numpynn.models.MODELS)"),
    Option("layers", "model", _sizes, "layer sizes; alternatives separated by ':'"),
    Option("activation", "model", _name(ACTIVATIONS, "softmax"), "hidden activation"),
    Option("dropout", "model", _number(float, 0.0, 0.999999, "a probability in [0, 1)"),
           "dropout after each hidden dense layer"),
    Option("loss", "model", _name(LOSSES), "loss"),
)}
_ALIASES = {"batch": "batch_size", "learning_rate": "lr", "optimiser": "optimizer", "layer_sizes": "layers"}
_NOT_SWEPT = {
    "seed": "the seed is the sweep's own (--seed): it also draws the validation split, which every "
            "trial must share",
    "validation_split": "every trial is scored on the same validation split (--validation-split)",
}


def option(name: Any) -> Option:
    """The option called ``name`` (any case, ``-`` for ``_``, a few aliases); :class:`GridError`
    for one that no grid can sweep."""
    key = str(name).strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key in _NOT_SWEPT:
        raise GridError(f"{name} cannot be swept: {_NOT_SWEPT[key]}")
    if key not in OPTIONS:
        raise GridError(f"unknown option {name!r}: a grid can sweep {', '.join(OPTIONS)}")
    return OPTIONS[key]


def models_taking(name: str) -> list[str]:
    """The models an option applies to: every one for a recipe option and ``model``, else the
    models whose entry takes it."""
    if OPTIONS[name].part != "model":
        return models.MODELS.names()
    return [model for model, entry in models.MODELS.items() if name in entry.options]


def format_value(value: Any) -> str:
    """An option's value as the table shows it."""
    if value is None:
        return "-"
    if isinstance(value, list):
        return "-".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
