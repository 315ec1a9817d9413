"""Data sets: IDX files, MNIST (bundled sample, full set, any IDX folder) and XOR.

This package knows nothing of networks. Images are kept as uint8
``(n, rows * cols)``; convert a batch with :func:`scale` when it is used.

>>> from numpynn import datasets
>>> data = datasets.load("mnist-sample")       # doctest: +SKIP
>>> data.describe()                            # doctest: +SKIP
'mnist-sample: 8,000 train + 2,000 test images, 28x28, 10 classes (uint8), from ...'

A data set of one's own is registered where it is defined, and :func:`load`
finds it by name from then on (see :func:`register_dataset`).

Modules: ``base`` (:class:`Dataset`, the registry, :func:`load`), ``idx`` (the
file format), ``folder`` (a folder of the four MNIST-format files), ``download``
(verified downloads from mirrors), ``mnist`` (the two MNIST sets), ``xor``.
"""

from __future__ import annotations

from numpynn.datasets.base import (
    DATASET_NAMES,
    DATASETS,
    Dataset,
    DatasetSource,
    cache_dir,
    dataset_names,
    is_cached,
    load,
    register_dataset,
    scale,
)
from numpynn.datasets.folder import load_folder, load_images_labels
from numpynn.datasets.idx import IDX_DTYPES, read_idx, write_idx
from numpynn.datasets.mnist import (
    DEFAULT_MIRRORS,
    MNIST_FILES,
    download_mnist,
    find_mnist,
    load_sample,
    mnist_dir,
    mnist_mirrors,
)
from numpynn.datasets.xor import xor

__all__ = [
    "DATASETS",
    "DATASET_NAMES",
    "DEFAULT_MIRRORS",
    "IDX_DTYPES",
    "MNIST_FILES",
    "Dataset",
    "DatasetSource",
    "cache_dir",
    "dataset_names",
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
    "register_dataset",
    "scale",
    "write_idx",
    "xor",
]
