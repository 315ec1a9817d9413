"""numpynn: feed-forward neural networks from scratch in NumPy.

>>> import numpynn as nn
>>> net = nn.Network([nn.Dense(784, 128, "sigmoid"), nn.Dense(128, 64, "sigmoid"),
...                   nn.Dense(64, 10, "softmax")], loss="cross_entropy", seed=0)

Names are imported on first use, so ``import numpynn`` (and ``numpynn --help``)
does not pay for NumPy and the rest until they are needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

# public name -> module that defines it
_NAMES = {
    "Activation": "activations", "Custom": "activations",
    "Layer": "layers", "Dense": "layers", "Dropout": "layers", "Flatten": "layers", "Reshape": "layers",
    "Conv2D": "layers", "MaxPool2D": "layers", "AvgPool2D": "layers",
    "register_layer": "layers",
    "Network": "network", "TrainingInterrupted": "training",
    "SGD": "optimizers", "Adam": "optimizers", "Optimizer": "optimizers",
    "gradient_check": "gradcheck", "GradCheckResult": "gradcheck",
    "NumpynnError": "errors", "InvalidFileError": "errors", "DownloadError": "errors",
    "DivergenceError": "errors",
}
_MODULES = {
    "activations", "losses", "initializers", "layers", "network", "optimizers", "gradcheck", "augment",
    "errors", "datasets", "serialization", "images", "plots", "training", "recipes", "models", "xor",
    "export", "sweep",
}

__all__ = [
    "SGD", "Activation", "Adam", "AvgPool2D", "Conv2D", "Custom", "Dense", "DivergenceError", "DownloadError",
    "Dropout", "Flatten", "GradCheckResult", "InvalidFileError", "Layer", "MaxPool2D", "Network",
    "NumpynnError", "Optimizer", "Reshape", "TrainingInterrupted", "__version__", "activations", "augment",
    "datasets", "errors",
    "gradcheck", "gradient_check", "images", "initializers", "layers", "load", "losses", "models",
    "network", "optimizers", "plots", "recipes", "register_layer", "serialization", "sweep", "training",
    "xor",
]


def load(path: str, **kwargs: Any) -> Network:
    """Load a network saved with :meth:`Network.save` (a safetensors file)."""
    from .serialization import load as _load

    _bring_shortcut_rooms()
    return _load(path, **kwargs)


#: The rooms that give :class:`Network` its shortcuts (``fit``, ``save``, ``to_onnx``) by
#: registering them when imported; this package, the top floor, brings them with the network.
_SHORTCUT_ROOMS = ("training", "serialization", "export.onnx")
#: The names through which a user gets the Network class or a network.
_GIVE_NETWORKS = {"Network", "network", "models", "recipes", "gradcheck", "gradient_check", "xor"}


def _bring_shortcut_rooms() -> None:
    for room in _SHORTCUT_ROOMS:
        importlib.import_module(f".{room}", __name__)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        value = getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    elif name in _MODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'numpynn' has no attribute {name!r}")
    if name in _GIVE_NETWORKS:
        _bring_shortcut_rooms()
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # for type checkers and IDEs
    from . import (
        activations,
        augment,
        datasets,
        errors,
        gradcheck,
        images,
        initializers,
        layers,
        losses,
        models,
        network,
        optimizers,
        plots,
        recipes,
        serialization,
        sweep,
        training,
        xor,
    )
    from .activations import Activation, Custom
    from .errors import DivergenceError, DownloadError, InvalidFileError, NumpynnError
    from .gradcheck import GradCheckResult, gradient_check
    from .layers import (
        AvgPool2D,
        Conv2D,
        Dense,
        Dropout,
        Flatten,
        Layer,
        MaxPool2D,
        Reshape,
        register_layer,
    )
    from .network import Network
    from .optimizers import SGD, Adam, Optimizer
    from .training import TrainingInterrupted
