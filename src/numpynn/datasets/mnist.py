"""MNIST: the bundled sample and the full official set (cached, downloaded on
demand from mirrors, checked against :data:`MNIST_FILES`), both registered as
data sets (``mnist-sample``, ``mnist``).

Images stay uint8 in memory, shape ``(n, rows * cols)``; scale a batch to
float32 in [0, 1] with :func:`~numpynn.datasets.scale` when it is used, so the
full set never exists as a float copy. Labels are int64, shape ``(n,)``, values 0-9.
"""

from __future__ import annotations

import importlib.resources
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from numpynn.datasets.base import Dataset, cache_dir, register_dataset
from numpynn.datasets.folder import find_idx, has_idx_set, load_folder, load_pair
from numpynn.errors import WriteError

__all__ = [
    "DEFAULT_MIRRORS",
    "MNIST_FILES",
    "download_mnist",
    "find_mnist",
    "load_sample",
    "mnist_dir",
    "mnist_mirrors",
]

#: The four official files -> (size in bytes, SHA-256). Tests replace this dict.
MNIST_FILES: dict[str, tuple[int, str]] = {
    "train-images-idx3-ubyte.gz": (
        9912422,
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    ),
    "train-labels-idx1-ubyte.gz": (
        28881,
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    ),
    "t10k-images-idx3-ubyte.gz": (
        1648877,
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    ),
    "t10k-labels-idx1-ubyte.gz": (
        4542,
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaca2e34ee1b23b6b",
    ),
}
#: Base URLs tried in order; override with ``NUMPYNN_MNIST_MIRRORS`` (comma-separated).
DEFAULT_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
#: Seconds a mirror has to answer (name lookup, connection, TLS, status and headers)
#: before the next one is tried: two mirrors that never answer cost 8 s in all.
CONNECT_TIMEOUT = 4.0
#: Seconds without data in the middle of a file before its mirror is given up.
READ_TIMEOUT = 15.0
SAMPLE_N_TRAIN = 8000  # mnist-sample: first 8,000 train, last 2,000 test


def mnist_dir() -> Path:
    """Where the full MNIST set is looked for and downloaded to: ``cache_dir()/"mnist"``."""
    return cache_dir() / "mnist"


def mnist_mirrors() -> list[str]:
    """Base URLs to download MNIST from: ``$NUMPYNN_MNIST_MIRRORS``
    (comma-separated) if set, else :data:`DEFAULT_MIRRORS`."""
    env = os.environ.get("NUMPYNN_MNIST_MIRRORS")
    if env is None:
        return list(DEFAULT_MIRRORS)
    return [url.strip() for url in env.split(",") if url.strip()]


def _mnist_cached() -> bool:
    """The four files of the full set are in :func:`mnist_dir`."""
    return has_idx_set(mnist_dir())


def find_mnist(download: bool = False, *, progress: bool = True) -> Path | None:
    """The folder holding the full MNIST set, downloading the missing files
    first if ``download``; ``None`` if they are missing and ``download`` is
    false. Raises :class:`~numpynn.errors.DownloadError` if a download fails,
    :class:`~numpynn.errors.WriteError` if the cache folder cannot take the files
    (:func:`~numpynn.datasets.load` then works without the cache)."""
    if _mnist_cached():
        return mnist_dir()
    if not download:
        return None
    return download_mnist(progress=progress)


def download_mnist(
    *,
    mirrors: Sequence[str] | None = None,
    progress: bool = True,
    timeout: float | None = None,
    connect_timeout: float | None = None,
    folder: str | os.PathLike[str] | None = None,
) -> Path:
    """Download the MNIST files missing from ``folder`` (default :func:`mnist_dir`)
    and return that folder.

    Each file is streamed into a temporary file beside its final name and
    renamed only once its size and SHA-256 match :data:`MNIST_FILES`; nothing
    that could pass for data is ever left behind (temporary files of a killed
    download are removed by the next one). Mirrors (default
    :func:`mnist_mirrors`) are tried in order: each has ``connect_timeout``
    seconds (default :data:`CONNECT_TIMEOUT`) to answer and may then fall silent
    for at most ``timeout`` seconds (default :data:`READ_TIMEOUT`); a mirror that
    could not be reached is not asked again for the other files.
    Raises :class:`~numpynn.errors.DownloadError` when no mirror delivers a file
    and :class:`~numpynn.errors.WriteError` when ``folder`` cannot take it (a
    full disk, a read-only folder), leaving the mirrors alone.
    """
    folder = mnist_dir() if folder is None else Path(folder)
    missing = {name: check for name, check in MNIST_FILES.items()
               if find_idx(folder, name.removesuffix(".gz")) is None}
    from numpynn.datasets.download import download_files  # http and ssl only when downloading

    return download_files(
        missing,
        folder,
        list(mirrors) if mirrors is not None else mnist_mirrors(),
        progress=progress,
        timeout=READ_TIMEOUT if timeout is None else timeout,
        connect_timeout=CONNECT_TIMEOUT if connect_timeout is None else connect_timeout,
        advice=f"put the four MNIST files ({', '.join(MNIST_FILES)}) into {folder} by hand, "
               "or set NUMPYNN_MNIST_MIRRORS to working mirrors",
    )


def load_sample() -> Dataset:
    """The bundled 10,000 real MNIST training digits (package data, offline):
    the first 8,000 as the training split, the last 2,000 as the test split."""
    data = importlib.resources.files("numpynn.datasets") / "data"
    with (
        importlib.resources.as_file(data / "images-idx3-ubyte.gz") as images_path,
        importlib.resources.as_file(data / "labels-idx1-ubyte.gz") as labels_path,
    ):
        x, y, shape = load_pair(Path(images_path), Path(labels_path))
        source = str(Path(images_path).parent)
    k = SAMPLE_N_TRAIN
    return Dataset(
        name="mnist-sample",
        x_train=x[:k],
        y_train=y[:k],
        x_test=x[k:],
        y_test=y[k:],
        image_shape=shape,
        source=source,
    )


_said: set[str] = set()


def _say_once(text: str) -> None:
    """A warning on stderr, once per process."""
    if text not in _said:
        _said.add(text)
        print(text, file=sys.stderr, flush=True)


# --------------------------------------------------------------------- the registered sets


@register_dataset("mnist", cached=_mnist_cached)
def _load_mnist(*, download: bool = True, progress: bool = True) -> Dataset:
    """The official 60,000 / 10,000 set from :func:`mnist_dir`, downloaded first if allowed."""
    try:
        folder = find_mnist(download=download, progress=progress)
    except WriteError as e:  # the cache cannot take the files: work without it
        _say_once(f"numpynn: warning: {e}; using MNIST without caching it (set NUMPYNN_DATA to a "
                  "writable folder to keep it)")
        with tempfile.TemporaryDirectory(prefix="numpynn-mnist-") as scratch:
            download_mnist(progress=progress, folder=scratch)
            data = load_folder(scratch, name="mnist")
        data.source = "downloaded, not cached"
        return data
    if folder is None:
        raise FileNotFoundError(
            f"MNIST is not in the cache folder {mnist_dir()}: allow the download, put the "
            f"four files ({', '.join(MNIST_FILES)}) there by hand, or use mnist-sample"
        )
    return load_folder(folder, name="mnist")


@register_dataset("mnist-sample")
def _load_bundled_sample() -> Dataset:
    """The bundled 10,000 digits, split 8,000 / 2,000; offline."""
    return load_sample()
