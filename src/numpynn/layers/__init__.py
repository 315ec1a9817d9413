"""Layers: the :class:`Layer` protocol, its registry, and one module per layer kind.

- :mod:`~numpynn.layers.base`: ``Layer`` (``build`` / ``add_param`` / ``forward`` /
  ``backward`` / ``config``), ``register_layer``, ``LAYERS``;
- :mod:`~numpynn.layers.dense`: ``Dense``;
- :mod:`~numpynn.layers.dropout`: ``Dropout``;
- :mod:`~numpynn.layers.shape`: ``Flatten``, ``Reshape``.
"""

from .base import LAYERS, Layer, ParamSpec, build_layers, register_layer
from .dense import Dense
from .dropout import Dropout
from .shape import Flatten, Reshape

__all__ = ["LAYERS", "Dense", "Dropout", "Flatten", "Layer", "ParamSpec", "Reshape", "build_layers",
           "register_layer"]
