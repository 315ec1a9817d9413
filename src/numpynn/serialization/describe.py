"""What a model file holds, from its header alone: :func:`describe` (``numpynn info``)."""

from __future__ import annotations

import math
import os
from typing import Any

from ..activations import Activation, Identity
from ..layers import walk
from .architecture import encode
from .format import PathLike
from .header import Parsed, open_model_file, parse, read_header


class _Unresolved(Identity):
    """Stands in for a user-defined activation where only shapes are needed (describe)."""

    def __init__(self, name: str) -> None:
        self.name = name


class _Placeholders(dict):  # type: ignore[type-arg]
    def __contains__(self, name: object) -> bool:
        return True

    def __getitem__(self, name: str) -> Activation:
        return _Unresolved(name)


_PLACEHOLDER = _Placeholders()


def describe(path: PathLike) -> dict[str, Any]:
    """Facts about a model file from its header alone (no tensor is read).

    Returns ``{"path", "file_size", "kind" ("model" or "checkpoint"),
    "format_version", "numpynn_version", "dtype", "loss", "seed",
    "input_shape", "sizes" (values per sample after each layer, inputs
    first), "architecture" (the stored architecture JSON, in version 2's
    form), "layers" (per top-level layer: index, type, config, output_shape, params,
    and activation, n_in, n_out, init, alpha, custom where they apply), "tree" (the
    same rows with each block's layers after it, indexed by path: ``"3.layers.0"``),
    "n_params", "training", "checkpoint" (epoch, optimizer config, step,
    extra; or None)}``.
    """
    with open_model_file(path) as (f, size):
        header_len, header = read_header(f, path, size)
        parsed = parse(path, header, size - 8 - header_len, custom_activations=_PLACEHOLDER)
    arch = parsed.arch
    tree = _layer_rows(parsed)
    layers = [row for row in tree if isinstance(row["index"], int)]
    ckpt = None
    if parsed.checkpoint is not None:
        c = parsed.checkpoint
        opt = c["optimizer"]
        ckpt = {"epoch": c["epoch"], "extra": c["extra"],
                "optimizer": None if opt is None else opt["config"],
                "step": None if opt is None else opt["t"]}
    return {
        "path": os.fspath(path),
        "file_size": size,
        "kind": "model" if ckpt is None else "checkpoint",
        "format_version": parsed.meta["format_version"],
        "numpynn_version": parsed.meta.get("numpynn_version", "unknown"),
        "dtype": arch["dtype"],
        "loss": arch["loss"],
        "seed": arch["seed"],
        "input_shape": list(arch["input_shape"]),
        "sizes": [math.prod(arch["input_shape"])] + [math.prod(layer.output_shape)
                                                     for layer in parsed.layers],
        "architecture": arch,
        "layers": layers,
        "tree": tree,
        "n_params": sum(row["params"] for row in layers),
        "training": parsed.training,
        "checkpoint": ckpt,
    }


def _layer_rows(parsed: Parsed) -> list[dict[str, Any]]:
    """One row per layer: index, type, config, output shape, parameter count, and the
    activation, its arguments, n_in, n_out and init where the layer has them. A block's
    layers follow its row, their index their path inside it (``"3.layers.0"``)."""
    rows = []
    for path, layer in walk(parsed.layers):
        index = path.removeprefix("layers.")
        spec = (parsed.arch["layers"][int(index)] if index.isdigit()
                else {"type": layer.name, "config": encode(layer.config())})
        row: dict[str, Any] = {"index": int(index) if index.isdigit() else index, "type": spec["type"],
                               "config": spec["config"], "output_shape": list(layer.output_shape),
                               "params": layer.n_params}
        act = getattr(layer, "activation", None)
        if isinstance(act, Activation):
            row["activation"] = act.name
            act_spec = spec["config"].get("activation")
            if isinstance(act_spec, dict):
                row.update({k: v for k, v in act_spec.items() if k in ("alpha", "custom")})
        for key in ("n_in", "n_out", "init"):
            if key in spec["config"]:
                row[key] = spec["config"][key]
        rows.append(row)
    return rows
