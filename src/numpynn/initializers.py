"""Initial values of parameters: ``init(rng, shape) -> array``.

A layer names one in :meth:`~numpynn.layers.Layer.add_param` (or passes its own
callable). Fan-in and fan-out are read from the shape: ``(n_in, n_out)`` for a
dense weight matrix in row layout, ``(out_channels, in_channels, *kernel)`` for
a convolution kernel (PyTorch's layout), ``(n,)`` for a vector.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ._registry import Registry

Array = np.ndarray
Init = Callable[[np.random.Generator, tuple[int, ...]], Array]

#: The named initialisers.
INITIALIZERS: Registry[Init] = Registry("init")


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a parameter of this shape."""
    if len(shape) == 2:  # (n_in, n_out): z = a_prev @ W
        return shape[0], shape[1]
    if len(shape) > 2:  # (out, in, *kernel)
        field = math.prod(shape[2:])
        return shape[1] * field, shape[0] * field
    n = shape[0] if shape else 1
    return n, n


@INITIALIZERS.register("zeros")
def zeros(rng: np.random.Generator, shape: tuple[int, ...]) -> Array:
    """All 0 (biases)."""
    return np.zeros(shape)


@INITIALIZERS.register("ones")
def ones(rng: np.random.Generator, shape: tuple[int, ...]) -> Array:
    """All 1 (scales)."""
    return np.ones(shape)


@INITIALIZERS.register("glorot")
def glorot(rng: np.random.Generator, shape: tuple[int, ...]) -> Array:
    """Glorot/Xavier uniform: U(−r, r), r = √(6 / (fan_in + fan_out)); suits sigmoid, tanh, softmax."""
    fan_in, fan_out = fans(shape)
    r = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-r, r, size=shape)


@INITIALIZERS.register("he")
def he(rng: np.random.Generator, shape: tuple[int, ...]) -> Array:
    """He normal: N(0, 2 / fan_in); suits ReLU."""
    fan_in, _ = fans(shape)
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)


def get(init: str | Init) -> Init:
    """An initialiser from its name (``"zeros"``, ``"ones"``, ``"glorot"``, ``"he"``) or a callable."""
    if callable(init):
        return init
    if isinstance(init, str):
        return INITIALIZERS[init]
    raise TypeError(f"init must be a name or a function init(rng, shape), not {type(init).__name__}")
