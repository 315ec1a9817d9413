"""numpynn: feed-forward neural networks from scratch in NumPy.

>>> import numpynn as nn
>>> net = nn.Network([nn.Dense(784, 128, "sigmoid"), nn.Dense(128, 64, "sigmoid"),
...                   nn.Dense(64, 10, "softmax")], loss="cross_entropy", seed=0)
"""

from __future__ import annotations

from typing import Any

from . import activations, augment, losses, optimizers
from .activations import Activation, Custom
from .errors import DivergenceError, DownloadError, InvalidFileError, NumpynnError
from .gradcheck import GradCheckResult, gradient_check
from .layers import Dense
from .network import Network, TrainingInterrupted
from .optimizers import SGD, Adam, Optimizer

__version__ = "0.1.0"

__all__ = [
    "Activation", "Adam", "Custom", "Dense", "DivergenceError", "DownloadError",
    "GradCheckResult", "InvalidFileError", "Network", "NumpynnError", "Optimizer", "SGD",
    "TrainingInterrupted", "activations", "augment", "datasets", "gradient_check", "load",
    "losses", "optimizers", "__version__",
]


def load(path: str, **kwargs: Any) -> Network:
    """Load a network saved with :meth:`Network.save` (a safetensors file)."""
    from .serialization import load as _load

    return _load(path, **kwargs)


def __getattr__(name: str) -> Any:  # lazy submodules: keep `import numpynn` fast
    if name in ("datasets", "serialization", "images", "plots", "xor"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'numpynn' has no attribute {name!r}")
