"""Layers: the :class:`Layer` protocol, its registry, and one module per layer kind.

- :mod:`~numpynn.layers.base`: ``Layer`` (``build`` / ``add_param`` / ``forward`` /
  ``backward`` / ``config``), ``register_layer``, ``LAYERS``;
- :mod:`~numpynn.layers.dense`: ``Dense``;
- :mod:`~numpynn.layers.dropout`: ``Dropout``;
- :mod:`~numpynn.layers.shape`: ``Flatten``, ``Reshape``;
- :mod:`~numpynn.layers.conv`: ``Conv2D``;
- :mod:`~numpynn.layers.pool`: ``MaxPool2D``, ``AvgPool2D``.
"""

from .base import LAYERS, Layer, ParamSpec, build_layers, register_layer
from .conv import Conv2D
from .dense import Dense
from .dropout import Dropout
from .pool import AvgPool2D, MaxPool2D
from .shape import Flatten, Reshape

__all__ = ["LAYERS", "AvgPool2D", "Conv2D", "Dense", "Dropout", "Flatten", "Layer", "MaxPool2D", "ParamSpec",
           "Reshape", "build_layers", "register_layer"]
