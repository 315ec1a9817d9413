"""The layer tree: every layer of a network, nested ones too, and the flat vectors their
parameters and state are views into.

A block (:mod:`~numpynn.layers.blocks`) lists its children in
:meth:`~numpynn.layers.Layer.named_children`; :func:`walk` visits the tree depth first,
which is the order of θ, of the state vector, of a model file's tensors and of the
layers' generators. :func:`lay_out` allocates θ, ∇θ and the state and makes every
``layer.params[name]``, ``layer.grads[name]`` and ``layer.state[name]`` a view into them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from .base import Array, Layer

__all__ = ["lay_out", "walk"]


def walk(layers: list[Layer], prefix: str = "layers") -> Iterator[tuple[str, Layer]]:
    """Every layer of the tree, depth first, with its path: ``("layers.3", block)``, then
    ``("layers.3.layers.0", its first layer)``, … The order in which parameters lie in θ,
    tensors are named in model files, and layers draw their generators."""
    for i, layer in enumerate(layers):
        yield from _walk(layer, f"{prefix}.{i}")


def _walk(layer: Layer, path: str) -> Iterator[tuple[str, Layer]]:
    yield path, layer
    for name, child in layer.named_children():
        yield from _walk(child, f"{path}.{name}")


def lay_out(layers: list[Layer], dtype: np.dtype, seed: int | None, params: Any = None,
            state: Any = None) -> tuple[Array, Array, Array]:
    """``(θ, ∇θ, state)`` for built ``layers``: flat vectors, every layer's arrays views into
    them. Values come from ``params`` / ``state`` when given (flat, e.g. from a file), else
    from each spec's init, drawn from ``default_rng(seed)`` in tree order, parameters first."""
    theta = _flat(params, sum(layer.n_params for layer in layers), dtype, "params")
    grads = np.zeros_like(theta)
    values = _flat(state, sum(layer.n_state for layer in layers), dtype, "state")
    rng = np.random.default_rng(seed)
    _views(layers, "specs", "params", theta, params is None, rng, grads)
    _views(layers, "state_specs", "state", values, state is None, rng)
    return theta, grads, values


def _views(layers: list[Layer], specs: str, into: str, flat: Array, fill: bool, rng: np.random.Generator,
           grads: Array | None = None) -> None:
    """Make each layer's ``into`` arrays (and ``grads``) views into ``flat``, in tree order,
    filling them from their specs' init when ``fill``."""
    offset = 0
    for path, layer in walk(layers):
        for spec in getattr(layer, specs):
            end = offset + math.prod(spec.shape)
            view = flat[offset:end].reshape(spec.shape)
            if fill:
                view[...] = _initial(path, layer, spec, rng)
            getattr(layer, into)[spec.name] = view
            if grads is not None:
                layer.grads[spec.name] = grads[offset:end].reshape(spec.shape)
            offset = end


def _flat(given: Any, n: int, dtype: np.dtype, name: str) -> Array:
    """A flat vector of ``n`` values of ``dtype``: a copy of ``given``, or empty to be filled."""
    if given is None:
        return np.empty(n, dtype)
    given = np.asarray(given)
    if given.shape != (n,):
        raise ValueError(f"{name} must be a flat vector of {n} values, not shape {given.shape}")
    return given.astype(dtype, copy=True)


def _initial(path: str, layer: Layer, spec: Any, rng: np.random.Generator) -> Array:
    """The initial value of one parameter or state array, checked."""
    value = np.asarray(spec.init(rng, spec.shape))
    if value.shape != spec.shape:
        raise ValueError(f"{path} ({layer.name}): initial {spec.name} has shape {value.shape}, "
                         f"expected {spec.shape}")
    if not np.all(np.isfinite(value)):
        raise ValueError(f"{path} ({layer.name}): initial {spec.name} contains NaN or infinite values")
    return value
