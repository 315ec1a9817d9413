"""One registry per kind of thing that has a name: activations, losses,
optimisers, initialisers, layers, data sets.

The CLI's choices and help text, the model-file reader, the docs and the web
page all read these, so a new activation (say) is registered once and appears
everywhere; no list of names is typed out anywhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Names → things of one ``kind`` (e.g. ``"activation"``).

    With ``fold_case`` (the default) names are looked up case-insensitively and
    ``-`` reads as ``_`` (``"Leaky-ReLU"`` finds ``"leaky_relu"``); layer types
    keep their class names exactly.
    """

    def __init__(self, kind: str, *, fold_case: bool = True) -> None:
        self.kind = kind
        self.fold_case = fold_case
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def key(self, name: str) -> str:
        return name.strip().lower().replace("-", "_") if self.fold_case else name

    def add(self, name: str, item: T, *aliases: str, replace: bool = False) -> T:
        """Register ``item`` under ``name`` (and ``aliases``, which :meth:`names` leaves out);
        another item of that name is an error unless ``replace``."""
        key = self.key(name)
        if key in self._items and self._items[key] is not item and not replace:
            raise ValueError(f"a {self.kind} named {name!r} is already registered")
        self._items[key] = item
        for alias in aliases:
            self._aliases[self.key(alias)] = key
        return item

    def register(self, name: str, *aliases: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""
        return lambda item: self.add(name, item, *aliases)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = self.key(name)
        return key in self._items or key in self._aliases

    def __getitem__(self, name: str) -> T:
        """The item called ``name``; ``ValueError`` naming the choices if there is none."""
        key = self.key(name) if isinstance(name, str) else name
        key = self._aliases.get(key, key)
        if not isinstance(key, str) or key not in self._items:
            raise ValueError(f"unknown {self.kind} {name!r}: use one of {', '.join(self.names())}")
        return self._items[key]

    def names(self) -> list[str]:
        """Registered names, in registration order (no aliases)."""
        return list(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, T]]:
        return list(self._items.items())

    def get(self, name: str, default: T | None = None) -> T | None:
        return self[name] if name in self else default
