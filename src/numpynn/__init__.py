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

from . import _shortcuts
from ._version import __version__ as __version__

# The API's fixed names -> the module that defines each. Layer types, optimisers, activations
# and losses are not listed: ``nn.<Name>`` finds any class in their registries, yours too
# (a layer after ``@nn.register_layer``).
_NAMES = {
    "Activation": "activations", "Custom": "activations",
    "Layer": "layers", "register_layer": "layers",
    "Network": "network", "TrainingInterrupted": "training", "Optimizer": "optimizers",
    "gradient_check": "gradcheck", "GradCheckResult": "gradcheck",
    "NumpynnError": "errors", "InvalidFileError": "errors", "DownloadError": "errors",
    "DivergenceError": "errors", "set_threads": "_parallel",
}
_MODULES = {
    "activations", "losses", "initializers", "layers", "network", "optimizers", "gradcheck", "augment",
    "errors", "datasets", "serialization", "images", "plots", "training", "recipes", "models", "xor",
    "export", "sweep", "metrics", "explain", "schedules", "selection",
}
#: (module, registry) of the kinds whose classes ``nn.<Name>`` finds by class name.
_REGISTRIES = (("layers", "LAYERS"), ("optimizers", "OPTIMIZERS"), ("activations", "ACTIVATIONS"),
               ("losses", "LOSSES"))


def _registered() -> dict[str, Any]:
    """Every class in the registries above, by class name, read now (not at import)."""
    found: dict[str, Any] = {}
    for module, registry in _REGISTRIES:
        for _, cls in getattr(importlib.import_module(f".{module}", __name__), registry).items():
            found.setdefault(cls.__name__, cls)
    return found


def load(path: str, **kwargs: Any) -> Network:
    """Load a network saved with :meth:`Network.save` (a safetensors file)."""
    from .serialization import load as _load

    return _load(path, **kwargs)


def _wire_shortcuts() -> None:
    """``net.fit``, ``net.save`` and ``net.to_onnx`` for any network: a stand-in for each that
    imports its room (training, serialization, export) on first use, where the room then
    registers the real function. The package root wires the rooms; the network imports none."""
    for name, (module, attr) in {"fit": ("training", "fit"), "save": ("serialization", "save"),
                                 "to_onnx": ("export.onnx", "save")}.items():

        def stand_in(*args: Any, _module: str = module, _attr: str = attr, **kwargs: Any) -> Any:
            return getattr(importlib.import_module(f".{_module}", __name__), _attr)(*args, **kwargs)

        _shortcuts.SHORTCUTS.setdefault(name, stand_in)


_wire_shortcuts()


def __getattr__(name: str) -> Any:
    if name == "__all__":
        return __dir__()
    if name in _NAMES:
        value = getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    elif name in _MODULES:
        value = importlib.import_module(f".{name}", __name__)
    elif name[:1].isupper() and name in (registered := _registered()):
        return registered[name]  # not cached: a class registered later under that name wins
    else:
        raise AttributeError(f"module 'numpynn' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names: the fixed ones, every module, every registered class (read now)."""
    return sorted({*_NAMES, *_MODULES, *_registered(), "load", "__version__"})


if TYPE_CHECKING:  # for the annotations above
    from .network import Network
