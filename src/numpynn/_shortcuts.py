"""The user's shortcuts on a network, ``net.fit``, ``net.save`` and ``net.to_onnx``, by name.

The training, file and export rooms register their functions here where they are
defined (:func:`shortcut`); the package root, which wires the rooms together,
registers a stand-in for each that imports its room on first use. So the network
reads this table and never imports the rooms above it, and a network however it was
made (``from numpynn.models import mlp``, ``numpynn.serialization.load``) has all three.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["SHORTCUTS", "get", "shortcut"]

#: name -> ``function(net, ...)``, called as ``net.<name>(...)``.
SHORTCUTS: dict[str, Callable[..., Any]] = {}


def shortcut(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: make ``function(net, ...)`` callable as ``net.<name>(...)``."""

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        SHORTCUTS[name] = function
        return function

    return register


def get(name: str) -> Callable[..., Any]:
    """The function behind ``net.<name>``."""
    return SHORTCUTS[name]
