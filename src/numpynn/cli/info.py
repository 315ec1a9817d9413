"""``numpynn info``: architecture, parameter counts and training facts of a model or checkpoint."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .common import EXIT_OK

HELP = "architecture, parameter counts and training facts of a model"


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model")
    p.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    from ..serialization import describe

    info = describe(args.model)
    if args.json:
        print(json.dumps(info, default=str))
        return EXIT_OK
    print(format_info(args.model, info))
    return EXIT_OK


def format_info(path: str, info: dict[str, Any]) -> str:
    """The layer table and the training facts of what numpynn.serialization.describe read."""
    from .._tables import table

    arch = info.get("architecture", {})
    kind = "checkpoint" if info.get("kind") == "checkpoint" else "model"
    layers = table(
        ["layer", "type", "output", "activation", "parameters"],
        [[i, layer.get("type"), "x".join(map(str, layer.get("output_shape", []))),
          layer.get("activation", ""), f"{layer.get('params', 0):,}"]
         for i, layer in enumerate(info.get("layers", []))],
        right=(0, 4),
        footer=f"{info.get('n_params', 0):,} parameters, {arch.get('dtype')}, loss {arch.get('loss')}",
    )
    facts = []
    for key, value in (info.get("training") or {}).items():
        if key.startswith("_"):
            continue
        if isinstance(value, float):
            value = f"{100 * value:.2f}%" if "accuracy" in key else f"{value:.4g}"
        elif isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        facts.append([key, value])
    rows = info.get("layers", [])
    if all(row.get("type") == "Dense" for row in rows):
        shape = " -> ".join(map(str, info.get("sizes", [])))
    else:
        shape = f"input {'x'.join(map(str, info.get('input_shape', [])))}, {len(rows)} layers"
    lines = [f"{path}: numpynn {kind}, {shape} "
             f"({info.get('file_size', 0):,} bytes, numpynn {info.get('numpynn_version')})", "", layers]
    if facts:
        lines += ["", table(["training", ""], facts)]
    return "\n".join(lines)
