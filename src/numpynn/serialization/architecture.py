"""The ``architecture`` metadata both ways: layers to JSON for a file, and JSON from a file,
checked for form, back to layers (registered types, configs, activations, shapes)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .. import activations
from ..activations import SPEC_KEY, Activation
from ..errors import InvalidFileError
from ..layers import LAYERS, Layer, build_layers
from .format import MAX_WIDTH, PathLike, file_name, invalid, is_int, loads
from .v1 import from_version_1

# ------------------------------------------------------------------------------- writing


def registered_type(where: str, layer: Layer) -> str:
    """The name a model file gives the layer's type; it must be registered to be loaded again."""
    name = type(layer).__name__
    if LAYERS.get(name) is not type(layer):
        raise TypeError(f"{where} is a {name}, which is not registered: decorate its class with "
                        "@numpynn.register_layer to save it")
    return name


def encode(value: Any) -> Any:
    """A layer config as JSON values: activations become their spec, tuples lists."""
    if isinstance(value, Activation):
        return activations.spec(value)
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value


# ------------------------------------------------------------------------------- reading


def parse_architecture(path: PathLike, meta: dict[str, str]) -> dict[str, Any]:
    """The architecture JSON, checked for form (and a version-1 one turned into version 2's form)."""
    if "architecture" not in meta:
        raise invalid(path, "its metadata has no architecture")
    arch = loads(path, meta["architecture"], "architecture")

    def bad(why: str) -> InvalidFileError:
        return invalid(path, f"its architecture metadata is malformed: {why}")

    if not isinstance(arch, dict):
        raise bad("not a JSON object")
    if meta.get("format_version") == "1":
        arch = from_version_1(arch, bad)
    shape = arch.get("input_shape")
    if (not isinstance(shape, list) or not shape or not all(is_int(d, 1) for d in shape)
            or math.prod(shape) > MAX_WIDTH):
        raise bad(f"'input_shape' must list whole numbers from 1 up, at most {MAX_WIDTH} values in all")
    layers = arch.get("layers")
    if not isinstance(layers, list) or not layers:
        raise bad("'layers' must list at least one layer")
    for i, spec in enumerate(layers):
        if (not isinstance(spec, dict) or not isinstance(spec.get("type"), str)
                or not isinstance(spec.get("config"), dict) or set(spec) != {"type", "config"}):
            raise bad(f"layer {i} is not {{\"type\": name, \"config\": {{...}}}}")
    if not isinstance(arch.get("loss"), str):
        raise bad("no loss name")
    if not isinstance(arch.get("custom_loss", False), bool):
        raise bad("invalid 'custom_loss' flag")
    if arch.get("dtype") not in ("float32", "float64"):
        raise bad(f"dtype {arch.get('dtype')!r} is not float32 or float64")
    seed = arch.get("seed")
    if seed is not None and not is_int(seed):
        raise bad(f"seed {seed!r} is not a non-negative whole number")
    arch["seed"] = seed
    return arch


def make_layers(path: PathLike, arch: dict[str, Any],
                custom_activations: Mapping[str, Activation] | None) -> list[Layer]:
    """Each layer from its registered type and config, built for its input shape (no memory yet)."""
    layers = []
    for i, spec in enumerate(arch["layers"]):
        kind = spec["type"]
        if kind not in LAYERS:
            raise invalid(path, f"layer {i} has type {kind!r}, which is not a registered layer type "
                                f"here (known: {', '.join(LAYERS.names())}); if it is your own, import "
                                "its module (with @numpynn.register_layer) before loading")
        config = {k: decode(path, i, v, custom_activations) for k, v in spec["config"].items()}
        try:
            layers.append(LAYERS[kind].from_config(config))
        except (TypeError, ValueError) as e:
            raise invalid(path, f"layer {i} ({kind}) cannot be made from its config ({e})") from None
    try:
        build_layers(layers, tuple(arch["input_shape"]))
    except (TypeError, ValueError) as e:
        raise invalid(path, f"cannot rebuild the network ({e})") from None
    return layers


def decode(path: PathLike, i: int, value: Any, custom: Mapping[str, Activation] | None) -> Any:
    """A config value from JSON: activation specs become activations (user-defined ones from ``custom``)."""
    if isinstance(value, list):
        return [decode(path, i, v, custom) for v in value]
    if not isinstance(value, dict):
        return value
    if SPEC_KEY not in value:
        return {k: decode(path, i, v, custom) for k, v in value.items()}
    name = value[SPEC_KEY]
    if not isinstance(name, str):
        raise invalid(path, f"layer {i} has an activation without a name")
    if value.get("custom"):
        if not custom or name not in custom:
            raise ValueError(
                f"{file_name(path)}: layer {i} uses the custom activation {name!r}, whose code is "
                f"not stored in the file: load it with custom_activations={{{name!r}: "
                f"Custom(fn, dfn, name={name!r})}}"
            )
        return activations.get(custom[name])
    try:
        return activations.get(value)
    except (ValueError, TypeError) as e:
        raise invalid(path, f"layer {i} has an unusable activation ({e})") from None
