"""Layers: the :class:`Layer` protocol, its registry, and one module per layer kind.

- :mod:`~numpynn.layers.base`: ``Layer`` (``build`` / ``add_param`` / ``forward`` /
  ``backward`` / ``config``), ``register_layer``, ``LAYERS``;
- :mod:`~numpynn.layers.dense`: ``Dense``;
- :mod:`~numpynn.layers.dropout`: ``Dropout``;
- :mod:`~numpynn.layers.shape`: ``Flatten``, ``Reshape``;
- :mod:`~numpynn.layers.conv`: ``Conv2D``;
- :mod:`~numpynn.layers.pool`: ``MaxPool2D``, ``AvgPool2D``, ``GlobalAvgPool2D``;
- :mod:`~numpynn.layers.blocks`: ``Sequential``, ``Residual`` (layers made of layers).

Each ``from .x import …`` line below ships one file's layers; ``__all__`` is read
from the registry, so a new layer needs no other line.
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
