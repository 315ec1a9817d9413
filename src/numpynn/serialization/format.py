"""The file format's fixed points: its name and versions, the tensor names, the limits,
and the shape of every error a file earns (see the package docstring for the layout)."""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from .._checks import one_line
from ..errors import InvalidFileError
from ..layers import Layer, walk

FORMAT = "numpynn"
FORMAT_VERSION = "3"
#: 1: dense networks only; 2: any registered layers, one tensor per parameter; 3: layers made
#: of layers (tensors named by their path in the tree) and state that is not a parameter.
KNOWN_VERSIONS = ("1", "2", "3")
#: Largest safetensors header accepted (checked before reading it).
MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_WIDTH = 2**31  # units in a layer: a sanity bound

PathLike = str | os.PathLike[str]
#: The safetensors dtypes a numpynn file holds, and the NumPy dtype of each.
ST_DTYPES = {"F32": np.dtype(np.float32), "F64": np.dtype(np.float64)}

#: ``__metadata__`` keys; the last three hold JSON (``checkpoint`` only in checkpoints).
METADATA_KEYS = ("format", "format_version", "numpynn_version", "architecture", "training", "checkpoint")

#: Checkpoint tensors: ``optimizer.{name}`` per state array, and the best epoch's weights.
OPTIMIZER_PREFIX = "optimizer."
BEST_PARAMS = "selection.best_params"
BEST_STATE = "selection.best_state"


def param_tensor(layer: int, name: str) -> str:
    """The tensor holding parameter ``name`` of top-level layer ``layer`` (0 = next to the input)."""
    return f"layers.{layer}.{name}"


Names = list[tuple[str, tuple[int, ...]]]


def layer_tensors(layers: list[Layer]) -> tuple[Names, Names]:
    """``(params, state)``: each a list of (tensor name, shape) in the order of the network's
    flat θ and flat state: the tree depth first, ``{path}.{name}`` (``layers.3.layers.0.W``)."""
    params: Names = []
    state: Names = []
    for path, layer in walk(layers):
        params += [(f"{path}.{spec.name}", spec.shape) for spec in layer.specs]
        state += [(f"{path}.{spec.name}", spec.shape) for spec in layer.state_specs]
    return params, state


def optimizer_tensor(name: str) -> str:
    """The tensor holding the optimiser's state array ``name``."""
    return OPTIMIZER_PREFIX + name


def file_name(path: PathLike) -> str:
    """``path`` as a message shows it: quoted when it holds a line break."""
    name = os.fspath(path)
    if isinstance(name, bytes):
        name = name.decode(errors="replace")
    return repr(name) if any(c in name for c in "\r\n") else name


def invalid(path: PathLike, reason: str) -> InvalidFileError:
    """The error for a file that fails a check: one line, naming the file."""
    return InvalidFileError(f"{file_name(path)} is not a valid numpynn model file: {one_line(reason)}")


def is_int(value: Any, minimum: int = 0) -> bool:
    """Whether a JSON value is a whole number of at least ``minimum`` (bools are not)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def is_number(value: Any) -> bool:
    """Whether a JSON value is a finite number (bools are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for :func:`json.loads`: a key given twice is an error, not a choice."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def loads(path: PathLike, text: str, what: str) -> Any:
    """The JSON in the ``what`` metadata entry, or the error naming it."""
    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except (ValueError, RecursionError) as e:
        raise invalid(path, f"its {what} metadata is not valid JSON ({e})") from None
