"""Files of ``format_version`` 1 (dense networks only), read by turning their architecture
into version 2's form; nothing writes version 1 any more."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..activations import SPEC_KEY
from ..errors import InvalidFileError
from .format import MAX_WIDTH, is_int, is_number


def from_version_1(arch: dict[str, Any], bad: Callable[[str], InvalidFileError]) -> dict[str, Any]:
    """Version 1: ``sizes`` and one ``{activation, init, [alpha], [custom]}`` per layer, turned
    into version 2's ``input_shape`` and ``{type: "Dense", config}`` list. ``bad(why)`` makes
    the error for a malformed one."""
    sizes = arch.get("sizes")
    if (not isinstance(sizes, list) or len(sizes) < 2
            or not all(is_int(s, 1) and s <= MAX_WIDTH for s in sizes)):
        raise bad(f"'sizes' must list at least two whole numbers from 1 to {MAX_WIDTH}")
    layers = arch.get("layers")
    if not isinstance(layers, list) or len(layers) != len(sizes) - 1:
        raise bad(f"'layers' must describe {len(sizes) - 1} layers")
    dense = []
    for i, spec in enumerate(layers):
        if not isinstance(spec, dict) or not isinstance(spec.get("activation"), str):
            raise bad(f"layer {i} has no activation name")
        if spec.get("init") not in ("glorot", "he"):
            raise bad(f"layer {i} has init {spec.get('init')!r}, not 'glorot' or 'he'")
        if "alpha" in spec and not is_number(spec["alpha"]):
            raise bad(f"layer {i} has an invalid alpha {spec['alpha']!r}")
        if not isinstance(spec.get("custom", False), bool):
            raise bad(f"layer {i} has an invalid 'custom' flag")
        act: dict[str, Any] = {SPEC_KEY: spec["activation"]}
        if spec.get("custom"):
            act["custom"] = True
        elif "alpha" in spec and spec["activation"] == "leaky_relu":
            act["alpha"] = spec["alpha"]
        dense.append({"type": "Dense", "config": {"n_in": sizes[i], "n_out": sizes[i + 1],
                                                  "activation": act, "init": spec["init"]}})
    out = {k: v for k, v in arch.items() if k != "sizes"}
    out.update(input_shape=[sizes[0]], layers=dense)
    return out
