"""Ready-made networks, shared by the CLI, the examples and the web page."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ._registry import Registry
from .layers import Conv2D, Dense, Dropout, Flatten, Layer, MaxPool2D, Reshape
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


def convnet(
    seed: int | None = 0,
    dtype: str = "float32",
    dropout: float = 0.25,
    channels: tuple[int, int] = (16, 32),
    hidden: int = 128,
) -> Network:
    """A LeNet-style digit convnet on (n, 784) pixel rows:

    Reshape (1, 28, 28) → Conv 5×5 (1 → 16) ReLU → max-pool 2 → Conv 5×5 (16 → 32) ReLU
    → max-pool 2 → Flatten (32·4·4 = 512) → Dense 512 → 128 ReLU → Dropout → Dense 128 → 10 softmax.

    Two 5×5 convolutions each followed by a 2×2 pool are LeNet-5's shape; with
    16 and 32 channels (LeNet had 6 and 16) it passes 99% on MNIST, and the
    unpadded 5×5 kernels keep the feature maps small (24², 8²), so a step costs
    about 0.4 GFLOP at batch 64.
    """
    c1, c2 = channels
    stack: list[Layer] = [
        Reshape((1, 28, 28)),
        Conv2D(1, c1, 5, activation="relu"),
        MaxPool2D(2),
        Conv2D(c1, c2, 5, activation="relu"),
        MaxPool2D(2),
        Flatten(),
        Dense(c2 * 4 * 4, hidden, "relu"),
    ]
    if dropout:
        stack.append(Dropout(dropout))
    stack.append(Dense(hidden, 10, "softmax"))
    return Network(stack, loss="cross_entropy", input_shape=(784,), seed=seed, dtype=dtype)


#: The ready-made networks by name (``numpynn train --model``).
MODELS: Registry[Callable[..., Network]] = Registry("model")
MODELS.add("mlp", mlp)
MODELS.add("cnn", convnet)
