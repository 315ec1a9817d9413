"""Ready-made networks, shared by the CLI, the examples and the web page."""

from __future__ import annotations

from collections.abc import Sequence

from .layers import Dense, Dropout, Layer
from .network import Network

#: The classic MNIST network: 784 pixels, two sigmoid hidden layers, 10 classes.
DEFAULT_LAYERS = (784, 128, 64, 10)


def mlp(
    layers: Sequence[int] = DEFAULT_LAYERS,
    activation: str = "sigmoid",
    loss: str = "cross_entropy",
    seed: int | None = 0,
    dtype: str = "float32",
    dropout: float = 0.0,
) -> Network:
    """A dense network of the given sizes (inputs first): hidden layers with
    ``activation`` (each followed by ``Dropout(dropout)`` when ``dropout > 0``)
    and an output layer that suits the loss: softmax for cross-entropy
    (sigmoid for a single output), else ``activation``."""
    sizes = list(layers)
    if len(sizes) < 2:
        raise ValueError(f"--layers needs at least an input and an output size, not {sizes}")
    if any(s < 1 for s in sizes):
        raise ValueError(f"layer sizes must be positive, not {sizes}")
    output = ("softmax" if sizes[-1] > 1 else "sigmoid") if loss == "cross_entropy" else activation
    stack: list[Layer] = []
    for i in range(len(sizes) - 2):
        stack.append(Dense(sizes[i], sizes[i + 1], activation))
        if dropout:
            stack.append(Dropout(dropout))
    stack.append(Dense(sizes[-2], sizes[-1], output))
    return Network(stack, loss=loss, seed=seed, dtype=dtype)
