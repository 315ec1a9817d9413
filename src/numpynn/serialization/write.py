"""Writing a model file: :func:`save`, and the payload (tensors and metadata) a checkpoint
adds to."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import losses
from .._io import atomic_write_bytes
from .._shortcuts import shortcut
from ..layers.base import where
from ..network import Network
from . import format as fmt
from .architecture import encode, registered_type
from .format import PathLike, file_name


@shortcut("save")
def save(net: Network, path: PathLike, metadata: Mapping[str, Any] | None = None) -> None:
    """Write ``net`` to ``path`` as a safetensors file, atomically.

    ``metadata`` (JSON-compatible values) is merged over ``net.metadata`` and
    stored as the file's ``training`` facts; keys starting with ``_`` are left
    out. Refuses (``ValueError``) a network whose weights hold NaN or inf; the
    file at ``path`` is then untouched.
    """
    tensors, meta = model_payload(net, path, metadata)
    write_file(path, tensors, meta)


def model_payload(
    net: Network, path: PathLike, metadata: Mapping[str, Any] | None
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tensors (one per layer parameter) and ``__metadata__`` of ``net``'s model file."""
    if not isinstance(net, Network):
        raise TypeError(f"can only save a numpynn Network, not {type(net).__name__}")
    if not np.all(np.isfinite(net.params)):
        raise ValueError(
            f"refusing to save: weights contain NaN or infinite values (training diverged?); "
            f"{file_name(path)} left as it was"
        )
    from .._version import __version__

    if not np.all(np.isfinite(net.state)):
        raise ValueError(f"refusing to save: the network's state (e.g. running statistics) contains NaN "
                         f"or infinite values; {file_name(path)} left as it was")
    for path_in_tree, layer in net.walk():  # a block's children too: each must load again by its type
        registered_type(where(path_in_tree), layer)
    params, state = fmt.layer_tensors(net.layers)
    tensors = {**split(net.params, params), **split(net.state, state)}
    architecture = {
        "input_shape": list(net.input_shape),
        "layers": [{"type": registered_type(f"layer {i}", layer), "config": encode(layer.config())}
                   for i, layer in enumerate(net.layers)],
        "loss": net.loss.name,
        "dtype": net.dtype.name,
        "seed": seed_for_file(net.seed),
    }
    loss_cls = losses.LOSSES.get(net.loss.name)
    if loss_cls is None or type(net.loss) is not loss_cls:
        architecture["custom_loss"] = True
    merged = dict(net.metadata)
    merged.update(metadata or {})
    training = {str(k): v for k, v in merged.items() if not str(k).startswith("_")}
    meta = {
        "format": fmt.FORMAT,
        "format_version": fmt.FORMAT_VERSION,
        "numpynn_version": str(__version__),
        "architecture": dumps(architecture, "architecture"),
        "training": dumps(training, "metadata"),
    }
    return tensors, meta


def split(flat: np.ndarray, names: list[tuple[str, tuple[int, ...]]]) -> dict[str, np.ndarray]:
    """A flat vector cut into the named tensors it holds, in order (contiguous copies)."""
    tensors, offset = {}, 0
    for name, shape in names:
        end = offset + math.prod(shape)
        tensors[name] = np.ascontiguousarray(flat[offset:end].reshape(shape))
        offset = end
    return tensors


def seed_for_file(seed: Any) -> int | None:
    """The seed as stored: a non-negative whole number, or None for any other seed."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        return int(seed)
    return None


def json_default(value: Any) -> Any:
    """``default`` for :func:`json.dumps`: NumPy values, paths and sets as plain JSON."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def dumps(value: Any, what: str) -> str:
    """A metadata entry's JSON text (keys sorted), or a ``TypeError`` naming ``what``."""
    try:
        return json.dumps(value, default=json_default, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise TypeError(f"cannot save the {what}: {e} (use numbers, strings, lists, dicts)") from None


def write_file(path: PathLike, tensors: dict[str, np.ndarray], meta: dict[str, str]) -> None:
    """The safetensors bytes of ``tensors`` and ``meta``, written to ``path`` atomically."""
    import safetensors.numpy

    data = safetensors.numpy.save(tensors, metadata=meta)
    atomic_write_bytes(path, data)
