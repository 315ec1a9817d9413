"""Layers: the :class:`Layer` protocol and its registry (:mod:`~numpynn.layers.base`), the
tree of layers made of layers (:mod:`~numpynn.layers.tree`), and one module per kind of
layer, each holding its forward pass, its chain rule and its ONNX rule side by side.

Each ``from .x import …`` line below ships one file's layers; ``__all__`` is read from
the registry (``LAYERS.names()``), so a new layer needs no other line.
"""

from .base import LAYERS, Layer, ParamSpec, StateSpec, build_layers, register_layer
from .blocks import Residual, Sequential  # noqa: F401 (ships the file's layers)
from .conv import Conv2D  # noqa: F401 (ships the file's layers)
from .dense import Dense  # noqa: F401 (ships the file's layers)
from .dropout import Dropout  # noqa: F401 (ships the file's layers)
from .norm import BatchNorm1D, BatchNorm2D, LayerNorm  # noqa: F401 (ships the file's layers)
from .pool import AvgPool2D, GlobalAvgPool2D, MaxPool2D  # noqa: F401 (ships the file's layers)
from .shape import Flatten, Reshape  # noqa: F401 (ships the file's layers)
from .tree import walk

__all__ = ["LAYERS", "Layer", "ParamSpec", "StateSpec", "build_layers", "register_layer", "walk",
           *LAYERS.names()]
