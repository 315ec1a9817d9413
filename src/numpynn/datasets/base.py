"""What every data set is and where they are found by name.

:class:`Dataset` is the one shape of a data set (uint8 images, int64 labels, a
train and a test split); :data:`DATASETS` is the registry of the names
:func:`load` accepts. A data set registers itself with
:func:`register_dataset` in the file that defines it, and every reader
(:func:`load`, :func:`is_cached`, :func:`dataset_names`, the CLI's help) asks
the registry when it needs the names, so one registered later, from a user's
own script, is known everywhere at once::

    @register_dataset("noise")
    def noise() -> Dataset:
        ...

    data = numpynn.datasets.load("noise")
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, overload

import numpy as np
import platformdirs

from numpynn._checks import one_line
from numpynn._registry import Registry

__all__ = [
    "DATASETS",
    "DATASET_NAMES",
    "N_CLASSES",
    "Dataset",
    "DatasetSource",
    "cache_dir",
    "dataset_names",
    "is_cached",
    "load",
    "register_dataset",
    "scale",
]

N_CLASSES = 10


@dataclass
class Dataset:
    """A classification data set of small grey-scale images.

    ``x_train``: ``(n_train, rows * cols)`` uint8, C-contiguous (0 = background,
    255 = ink); ``y_train``: ``(n_train,)`` int64 in ``[0, n_classes)``; the
    same for ``x_test`` / ``y_test``. ``image_shape`` is ``(rows, cols)``;
    ``source`` says where the data came from (a folder or file path).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple[int, int] = (28, 28)
    n_classes: int = N_CLASSES
    source: str = ""

    def __post_init__(self) -> None:
        rows, cols = self.image_shape
        for x, y, part in (
            (self.x_train, self.y_train, "train"),
            (self.x_test, self.y_test, "test"),
        ):
            if x.ndim != 2 or x.shape[1] != rows * cols:
                raise ValueError(
                    f"{self.name}: x_{part} has shape {x.shape}, expected (n, {rows * cols}) "
                    f"for {rows}x{cols} images"
                )
            if y.shape != (x.shape[0],):
                raise ValueError(f"{self.name}: y_{part} has shape {y.shape}, expected ({x.shape[0]},)")

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])

    @property
    def n_features(self) -> int:
        """Pixels per image, ``rows * cols``."""
        return int(self.x_train.shape[1])

    def describe(self) -> str:
        """One line, e.g. ``mnist-sample: 8,000 train + 2,000 test images,
        28x28, 10 classes (uint8), from /path/to/data``."""
        rows, cols = self.image_shape
        line = (
            f"{self.name}: {self.n_train:,} train + {self.n_test:,} test images, "
            f"{rows}x{cols}, {self.n_classes} classes ({self.x_train.dtype})"
        )
        return f"{line}, from {self.source}" if self.source else line


_INV255 = np.float32(1.0 / 255.0)


def scale(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Scale a uint8 batch (any shape, e.g. ``(batch, 784)``) to float32 in
    [0, 1] by multiplying with 1/255; written into ``out`` (float32, same
    shape) when given, which is returned."""
    if x.dtype != np.uint8:
        raise TypeError(f"scale() expects uint8 pixels, got {x.dtype} (already scaled?)")
    if out is not None and (out.dtype != np.float32 or out.shape != x.shape):
        raise ValueError(f"scale(): out must be float32 of shape {x.shape}, got {out.dtype} {out.shape}")
    return np.multiply(x, _INV255, out=out, dtype=np.float32)


def cache_dir() -> Path:
    """The data cache: ``$NUMPYNN_DATA`` if set, else the user cache folder
    (``platformdirs.user_cache_dir("numpynn")``)."""
    env = os.environ.get("NUMPYNN_DATA", "").strip()
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("numpynn"))


# --------------------------------------------------------------------------- the registry


def _always() -> bool:
    return True


@dataclass(frozen=True)
class DatasetSource:
    """A registered data set: calling it calls ``loader`` (with those of
    ``download`` and ``progress`` it accepts) for the :class:`Dataset`;
    ``cached()`` says whether that works without downloading."""

    name: str
    loader: Callable[..., Dataset]
    cached: Callable[[], bool] = _always

    def __call__(self, *, download: bool = True, progress: bool = True) -> Dataset:
        data = self.loader(**_accepted(self.loader, {"download": download, "progress": progress}))
        if not isinstance(data, Dataset):
            raise TypeError(f"dataset {self.name!r}: its loader returned {type(data).__name__}, "
                            "not a numpynn.datasets.Dataset")
        return data


#: Data sets by name, for :func:`load`, :func:`is_cached`, the CLI's ``--data`` and its help.
DATASETS: Registry[DatasetSource] = Registry("dataset", fold_case=False)

F = TypeVar("F", bound=Callable[..., Dataset])


def _key(name: str) -> str:
    """How :func:`load` reads a name: stripped, lower case."""
    return name.strip().lower()


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name or name != _key(name):
        raise ValueError(f"a dataset name must be a non-empty lower-case string, not {name!r}")
    if any(c.isspace() for c in name) or "/" in name or os.sep in name or name.startswith((".", "~")):
        raise ValueError(f"dataset name {name!r} would read as a folder: use letters, digits and '-'")
    return name


def _accepted(loader: Callable[..., Dataset], options: dict[str, bool]) -> dict[str, bool]:
    """Those of ``options`` that ``loader`` takes as keyword arguments."""
    try:
        parameters = inspect.signature(loader).parameters.values()
    except (TypeError, ValueError):  # no signature to read: pass them all
        return options
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return options
    names = {p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    return {k: v for k, v in options.items() if k in names}


@overload
def register_dataset(name: str, *, cached: Callable[[], bool] | None = ...,
                     replace: bool = ...) -> Callable[[F], F]: ...
@overload
def register_dataset(name: str, loader: F, *, cached: Callable[[], bool] | None = ...,
                     replace: bool = ...) -> F: ...
def register_dataset(name: str, loader: F | None = None, *, cached: Callable[[], bool] | None = None,
                     replace: bool = False) -> F | Callable[[F], F]:
    """Register ``loader`` as the data set ``name``; a decorator when ``loader``
    is left out. Returns ``loader`` unchanged.

    ``loader`` returns a :class:`Dataset`; it may take the keyword arguments
    ``download`` (whether fetching is allowed) and ``progress`` (whether to show
    a bar), which :func:`load` passes on. ``cached`` is a function of no
    arguments saying whether the data is there without downloading (default:
    always). ``name`` is lower case, without spaces or ``/`` (it must not read as
    a folder). Another loader of that name is an error unless ``replace``.
    """
    key = _check_name(name)

    def add(function: F) -> F:
        if not callable(function):
            raise TypeError(f"dataset {key!r}: the loader must be callable, not {function!r}")
        if key in DATASETS and DATASETS[key].loader is function and not replace:
            return function  # the same loader again
        DATASETS.add(key, DatasetSource(key, function, cached or _always), replace=replace)
        return function

    return add if loader is None else add(loader)


def dataset_names() -> list[str]:
    """The names :func:`load` accepts besides a folder path, in registration order, as of now."""
    return DATASETS.names()


class _LiveNames(Sequence[str]):
    """The registered names, read from :data:`DATASETS` each time they are used."""

    def __getitem__(self, index):  # type: ignore[no-untyped-def, override]
        return tuple(DATASETS.names())[index]

    def __len__(self) -> int:
        return len(DATASETS)

    def __iter__(self) -> Iterator[str]:
        return iter(DATASETS.names())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in DATASETS

    def __eq__(self, other: object) -> bool:
        return tuple(self) == (tuple(other) if isinstance(other, _LiveNames) else other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(tuple(self))


#: The names :func:`load` accepts besides a folder path: a live view of
#: :data:`DATASETS` (what :func:`dataset_names` returns), never a snapshot.
DATASET_NAMES: Sequence[str] = _LiveNames()


def _source(name: str) -> DatasetSource:
    """The registered data set ``name`` (read as :func:`load` reads it), or ``ValueError``."""
    key = _key(name) if isinstance(name, str) else name
    if not isinstance(key, str) or key not in DATASETS:
        raise ValueError(one_line(f"unknown dataset {name!r}: use {', '.join(dataset_names())}"))
    return DATASETS[key]


def is_cached(name: str = "mnist") -> bool:
    """True if the registered data set ``name`` is available without
    downloading (``mnist-sample`` always, ``mnist`` when its four files are in
    :func:`~numpynn.datasets.mnist_dir`); ``ValueError`` for a name nobody registered."""
    return bool(_source(name).cached())


def load(name_or_path: str | os.PathLike[str], *, download: bool = True, progress: bool = True) -> Dataset:
    """Load a data set by name or folder.

    - a registered name (:func:`dataset_names`): ``"mnist-sample"``, the bundled
      10,000 digits, split 8,000 / 2,000, offline; ``"mnist"``, the official
      60,000 / 10,000 set from :func:`~numpynn.datasets.mnist_dir`, downloaded
      first if missing and ``download`` is true; any set registered with
      :func:`register_dataset`.
    - a folder holding the four IDX files under the official names (see
      :func:`~numpynn.datasets.load_folder`), e.g. Fashion-MNIST.

    Names take precedence over folders of the same name (write ``./mnist`` for
    the folder); ``pathlib.Path`` arguments are always folders.
    """
    if isinstance(name_or_path, str) and _key(name_or_path) in DATASETS:
        return _source(name_or_path)(download=download, progress=progress)
    from numpynn.datasets.folder import load_folder

    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return load_folder(path)
    if path.exists():
        raise ValueError(f"{path} is a file: a data set folder must hold the four MNIST-format IDX files")
    text = str(name_or_path)
    if not isinstance(name_or_path, str) or os.sep in text or text.startswith((".", "~")):
        raise FileNotFoundError(f"{path}: no such data folder; give a folder holding the four IDX files")
    names = ", ".join(dataset_names())
    raise ValueError(f"unknown dataset {text!r}: use {names} or a folder holding IDX files")
