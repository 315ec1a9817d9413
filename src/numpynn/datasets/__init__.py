"""Data sets: IDX files, MNIST (bundled sample, full set, any IDX folder) and XOR.

This package knows nothing of networks. Images are kept as uint8
``(n, rows * cols)``; convert a batch with :func:`scale` when it is used.

>>> from numpynn import datasets
>>> data = datasets.load("mnist-sample")       # doctest: +SKIP
>>> data.describe()                            # doctest: +SKIP
'mnist-sample: 8,000 train + 2,000 test images, 28x28, 10 classes (uint8), from ...'
"""

from __future__ import annotations

from numpynn.datasets.idx import IDX_DTYPES, read_idx, write_idx
from numpynn.datasets.mnist import (
    DATASETS,
    DEFAULT_MIRRORS,
    MNIST_FILES,
    Dataset,
    cache_dir,
    download_mnist,
    find_mnist,
    is_cached,
    load,
    load_folder,
    load_images_labels,
    load_sample,
    mnist_dir,
    mnist_mirrors,
    scale,
)
from numpynn.datasets.xor import xor

#: Names :func:`load` accepts besides a folder path.
DATASET_NAMES: tuple[str, ...] = tuple(DATASETS.names())

__all__ = [
    "DATASETS",
    "DATASET_NAMES",
    "DEFAULT_MIRRORS",
    "IDX_DTYPES",
    "MNIST_FILES",
    "Dataset",
    "cache_dir",
    "download_mnist",
    "find_mnist",
    "is_cached",
    "load",
    "load_folder",
    "load_images_labels",
    "load_sample",
    "mnist_dir",
    "mnist_mirrors",
    "read_idx",
    "scale",
    "write_idx",
    "xor",
]
