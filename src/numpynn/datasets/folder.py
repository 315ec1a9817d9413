"""MNIST-format folders: the four IDX files under the official names, as a
:class:`~numpynn.datasets.Dataset` (MNIST itself, Fashion-MNIST, any folder like them)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from numpynn.datasets.base import N_CLASSES, Dataset
from numpynn.datasets.idx import read_idx
from numpynn.errors import InvalidFileError

__all__ = ["STEMS", "find_idx", "has_idx_set", "load_folder", "load_images_labels"]

#: The stems of the official files, in the order (train images, train labels,
#: test images, test labels).
STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def load_images_labels(
    images_path: str | os.PathLike[str], labels_path: str | os.PathLike[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Read a pair of IDX files: images ``(n, rows, cols)`` uint8 and labels
    ``(n,)`` uint8 with values 0-9.

    Returns ``(images, labels)``: images flattened to ``(n, rows * cols)``
    uint8, C-contiguous; labels as int64 ``(n,)``. Raises
    :class:`~numpynn.errors.InvalidFileError` if the files do not fit together.
    """
    x, y, _ = load_pair(Path(images_path), Path(labels_path))
    return x, y


def _read_as(path: Path, ndim: int, what: str, kind: str, values: str) -> np.ndarray:
    """The uint8 array of ``ndim`` dimensions in IDX file ``path``, or InvalidFileError."""
    array = read_idx(path)
    if array.ndim != ndim:
        raise InvalidFileError(
            f"{path}: holds an array of shape {'x'.join(map(str, array.shape))}, "
            f"expected {what}; is this an idx{ndim} {kind} file?"
        )
    if array.dtype != np.uint8:
        raise InvalidFileError(
            f"{path}: holds {array.dtype} data, expected uint8 {values} (IDX type 0x08)"
        )
    return array


def load_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """:func:`load_images_labels`, and the ``(rows, cols)`` of the images."""
    images = _read_as(images_path, 3, "images (n, rows, cols)", "image", "pixels")
    labels = _read_as(labels_path, 1, "labels (n,)", "label", "labels")
    n, rows, cols = images.shape
    if labels.shape[0] != n:
        raise InvalidFileError(
            f"{labels_path}: holds {labels.shape[0]} labels but {images_path} holds {n} images; "
            f"use the label file that belongs to these images"
        )
    bad = np.flatnonzero(labels >= N_CLASSES)
    if bad.size:
        i = int(bad[0])
        raise InvalidFileError(
            f"{labels_path}: label {int(labels[i])} at index {i} is out of range 0-"
            f"{N_CLASSES - 1} ({bad.size} such labels); is this a 10-class label file?"
        )
    return images.reshape(n, rows * cols), labels.astype(np.int64), (rows, cols)


def find_idx(folder: Path, stem: str) -> Path | None:
    """The file for ``stem`` (e.g. ``train-images-idx3-ubyte``) in ``folder``:
    plain or ``.gz``, also the dotted variant ``train-images.idx3-ubyte``."""
    dotted = stem.replace("-idx", ".idx")
    for name in (stem + ".gz", stem, dotted + ".gz", dotted):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def has_idx_set(folder: Path) -> bool:
    """True if ``folder`` holds all four files (see :func:`find_idx`)."""
    return all(find_idx(folder, stem) is not None for stem in STEMS)


def load_folder(folder: str | os.PathLike[str], *, name: str | None = None) -> Dataset:
    """Load a folder holding the four MNIST-format IDX files under the official
    names (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally
    ``.gz``, also with a dot: ``train-images.idx3-ubyte``). Fashion-MNIST works.
    """
    folder = Path(folder)
    found = [find_idx(folder, stem) for stem in STEMS]
    missing = [stem for stem, path in zip(STEMS, found, strict=True) if path is None]
    if missing:
        expected = ", ".join(f"{s}[.gz]" for s in STEMS)
        raise FileNotFoundError(
            f"{folder}: missing {', '.join(f'{s}[.gz]' for s in missing)}; "
            f"a data folder must hold the four IDX files {expected}"
        )
    tr_x, tr_y, te_x, te_y = (p for p in found if p is not None)
    x_train, y_train, shape = load_pair(tr_x, tr_y)
    x_test, y_test, test_shape = load_pair(te_x, te_y)
    if test_shape != shape:
        raise InvalidFileError(
            f"{te_x}: test images are {test_shape[0]}x{test_shape[1]} but training images "
            f"are {shape[0]}x{shape[1]}; the files come from different data sets"
        )
    return Dataset(
        name=name or folder.resolve().name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        image_shape=shape,
        source=str(folder),
    )
