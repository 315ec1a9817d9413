"""MNIST-format data sets: the bundled sample, the full official set (cached,
downloaded on demand) and any folder of IDX files (e.g. Fashion-MNIST).

Images stay uint8 in memory, shape ``(n, rows * cols)``; scale a batch to
float32 in [0, 1] with :func:`scale` when it is used, so the full set never
exists as a float copy. Labels are int64, shape ``(n,)``, values 0-9.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.resources
import os
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs

from numpynn._io import atomic_write, make_folder
from numpynn._progress import Bar
from numpynn._registry import Registry
from numpynn.datasets.idx import read_idx
from numpynn.errors import DownloadError, InvalidFileError, WriteError

__all__ = [
    "DEFAULT_MIRRORS",
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
    "scale",
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
N_CLASSES = 10
SAMPLE_N_TRAIN = 8000  # mnist-sample: first 8,000 train, last 2,000 test

# The stems of the official files, in the order (train images, train labels,
# test images, test labels).
_STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_CHUNK = 1 << 16


# --------------------------------------------------------------------------- data


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


def load_images_labels(
    images_path: str | os.PathLike[str], labels_path: str | os.PathLike[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Read a pair of IDX files: images ``(n, rows, cols)`` uint8 and labels
    ``(n,)`` uint8 with values 0-9.

    Returns ``(images, labels)``: images flattened to ``(n, rows * cols)``
    uint8, C-contiguous; labels as int64 ``(n,)``. Raises
    :class:`~numpynn.errors.InvalidFileError` if the files do not fit together.
    """
    x, y, _ = _load_pair(Path(images_path), Path(labels_path))
    return x, y


def _load_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    images = read_idx(images_path)
    if images.ndim != 3:
        raise InvalidFileError(
            f"{images_path}: holds an array of shape {'x'.join(map(str, images.shape))}, "
            f"expected images (n, rows, cols); is this an idx3 image file?"
        )
    if images.dtype != np.uint8:
        raise InvalidFileError(
            f"{images_path}: holds {images.dtype} data, expected uint8 pixels (IDX type 0x08)"
        )
    labels = read_idx(labels_path)
    if labels.ndim != 1:
        raise InvalidFileError(
            f"{labels_path}: holds an array of shape {'x'.join(map(str, labels.shape))}, "
            f"expected labels (n,); is this an idx1 label file?"
        )
    if labels.dtype != np.uint8:
        raise InvalidFileError(
            f"{labels_path}: holds {labels.dtype} data, expected uint8 labels (IDX type 0x08)"
        )
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


# ------------------------------------------------------------------ sources


def _find_idx(folder: Path, stem: str) -> Path | None:
    """The file for ``stem`` (e.g. ``train-images-idx3-ubyte``) in ``folder``:
    plain or ``.gz``, also the dotted variant ``train-images.idx3-ubyte``."""
    dotted = stem.replace("-idx", ".idx")
    for name in (stem + ".gz", stem, dotted + ".gz", dotted):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def load_folder(folder: str | os.PathLike[str], *, name: str | None = None) -> Dataset:
    """Load a folder holding the four MNIST-format IDX files under the official
    names (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally
    ``.gz``, also with a dot: ``train-images.idx3-ubyte``). Fashion-MNIST works.
    """
    folder = Path(folder)
    found = [_find_idx(folder, stem) for stem in _STEMS]
    missing = [stem for stem, path in zip(_STEMS, found, strict=True) if path is None]
    if missing:
        expected = ", ".join(f"{s}[.gz]" for s in _STEMS)
        raise FileNotFoundError(
            f"{folder}: missing {', '.join(f'{s}[.gz]' for s in missing)}; "
            f"a data folder must hold the four IDX files {expected}"
        )
    tr_x, tr_y, te_x, te_y = (p for p in found if p is not None)
    x_train, y_train, shape = _load_pair(tr_x, tr_y)
    x_test, y_test, test_shape = _load_pair(te_x, te_y)
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


def load_sample() -> Dataset:
    """The bundled 10,000 real MNIST training digits (package data, offline):
    the first 8,000 as the training split, the last 2,000 as the test split."""
    data = importlib.resources.files("numpynn.datasets") / "data"
    with (
        importlib.resources.as_file(data / "images-idx3-ubyte.gz") as images_path,
        importlib.resources.as_file(data / "labels-idx1-ubyte.gz") as labels_path,
    ):
        x, y, shape = _load_pair(Path(images_path), Path(labels_path))
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


def cache_dir() -> Path:
    """The data cache: ``$NUMPYNN_DATA`` if set, else the user cache folder
    (``platformdirs.user_cache_dir("numpynn")``)."""
    env = os.environ.get("NUMPYNN_DATA", "").strip()
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("numpynn"))


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


def is_cached(name: str = "mnist") -> bool:
    """True if data set ``name`` is available without downloading:
    ``mnist-sample`` always, ``mnist`` when its four files are in :func:`mnist_dir`."""
    if name == "mnist-sample":
        return True
    if name == "mnist":
        folder = mnist_dir()
        return all(_find_idx(folder, stem) is not None for stem in _STEMS)
    raise ValueError(f"unknown dataset {name!r}: use {', '.join(DATASETS.names())}")


def find_mnist(download: bool = False, *, progress: bool = True) -> Path | None:
    """The folder holding the full MNIST set, downloading the missing files
    first if ``download``; ``None`` if they are missing and ``download`` is
    false. Raises :class:`~numpynn.errors.DownloadError` if a download fails,
    :class:`~numpynn.errors.WriteError` if the cache folder cannot take the files
    (:func:`load` then works without the cache)."""
    if is_cached("mnist"):
        return mnist_dir()
    if not download:
        return None
    return download_mnist(progress=progress)


class _Rejected(Exception):
    """A mirror answered, but with the wrong bytes."""


class _NoAnswer(TimeoutError):
    """A mirror did not answer in time."""


def download_mnist(
    *,
    mirrors: Sequence[str] | None = None,
    progress: bool = True,
    timeout: float = READ_TIMEOUT,
    connect_timeout: float = CONNECT_TIMEOUT,
    folder: str | os.PathLike[str] | None = None,
) -> Path:
    """Download the MNIST files missing from ``folder`` (default :func:`mnist_dir`)
    and return that folder.

    Each file is streamed into a temporary file beside its final name and
    renamed only once its size and SHA-256 match :data:`MNIST_FILES`; nothing
    that could pass for data is ever left behind (temporary files of a killed
    download are removed by the next one). Mirrors (default
    :func:`mnist_mirrors`) are tried in order: each has ``connect_timeout``
    seconds to answer and may then fall silent for at most ``timeout`` seconds;
    a mirror that could not be reached is not asked again for the other files.
    Raises :class:`~numpynn.errors.DownloadError` when no mirror delivers a file
    and :class:`~numpynn.errors.WriteError` when ``folder`` cannot take it (a
    full disk, a read-only folder), leaving the mirrors alone.
    """
    folder = mnist_dir() if folder is None else Path(folder)
    make_folder(folder)
    urls = list(mirrors) if mirrors is not None else mnist_mirrors()
    unreachable: dict[str, str] = {}
    for filename, (size, sha256) in MNIST_FILES.items():
        stem = filename.removesuffix(".gz")
        if _find_idx(folder, stem) is not None:
            continue
        failures = []
        for base in urls:
            url = base.rstrip("/") + "/" + filename
            if base in unreachable:
                failures.append(f"{url}: {unreachable[base]}")
                continue
            try:
                _fetch(url, folder / filename, size, sha256, progress=progress, timeout=timeout,
                       connect_timeout=connect_timeout)
                break
            except WriteError:
                raise  # the disk, not the mirror
            except (_Rejected, OSError, http.client.HTTPException, ValueError) as e:
                reason = _reason(e, timeout)
                failures.append(f"{url}: {reason}")
                if _unreachable(e):
                    unreachable[base] = reason
        else:
            tried = "; ".join(failures) if failures else "no mirrors configured"
            raise DownloadError(
                f"could not download {filename} ({tried}); put the four MNIST files "
                f"({', '.join(MNIST_FILES)}) into {folder} by hand, or set "
                f"NUMPYNN_MNIST_MIRRORS to working mirrors"
            )
    return folder


def _unreachable(e: BaseException) -> bool:
    """The mirror itself could not be reached (no answer, refused, unknown host), as
    opposed to a mirror that answered about one file."""
    if isinstance(e, urllib.error.HTTPError):
        return False
    if isinstance(e, urllib.error.URLError):
        return True
    return isinstance(e, (TimeoutError, ConnectionError))


def _reason(e: BaseException, timeout: float) -> str:
    """A short one-line reason for a failed download."""
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        if not isinstance(e.reason, BaseException):
            return str(e.reason)
        e = e.reason
    if isinstance(e, _NoAnswer):
        return str(e)
    if isinstance(e, TimeoutError):  # socket.timeout is TimeoutError
        return f"no data for {timeout:g} s"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return " ".join(str(e).split()) or type(e).__name__


def _open(url: str, connect_timeout: float, read_timeout: float) -> http.client.HTTPResponse:
    """``urlopen(url)``, but the answer (name lookup, connection, TLS, status line and
    headers) must come within ``connect_timeout`` seconds, whatever stalls: the
    request runs in a helper thread that is left to time out on its own (its
    sockets wait at most ``read_timeout``) if it has not answered by then. Each
    later read of the body may wait ``read_timeout`` seconds."""
    request = urllib.request.Request(url, headers={"User-Agent": "numpynn"})
    result: dict[str, Any] = {}
    lock = threading.Lock()

    def ask() -> None:
        try:
            response = urllib.request.urlopen(request, timeout=read_timeout)
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
            with lock:
                result["error"] = e
            return
        with lock:
            if result.get("late"):
                response.close()
            else:
                result["response"] = response

    asker = threading.Thread(target=ask, name="numpynn-download", daemon=True)
    asker.start()
    asker.join(connect_timeout)
    with lock:
        if "response" in result:
            return result["response"]
        if "error" in result:
            raise result["error"]
        result["late"] = True
    raise _NoAnswer(f"no answer within {connect_timeout:g} s")


def _fetch(url: str, dest: Path, size: int, sha256: str, *, progress: bool, timeout: float,
           connect_timeout: float = CONNECT_TIMEOUT) -> None:
    """Stream ``url`` into ``dest`` atomically if it has ``size`` bytes with
    SHA-256 ``sha256``; otherwise raise and leave no file behind."""
    with (
        _open(url, connect_timeout, timeout) as response,
        atomic_write(dest) as out,
        Bar(size, description=dest.name, unit="B", enabled=progress) as bar,
    ):
        digest = hashlib.sha256()
        got = 0
        for chunk in _chunks(response):
            got += len(chunk)
            if got > size:
                raise _Rejected(f"more than the expected {size} bytes")
            digest.update(chunk)
            out.write(chunk)
            bar.update(len(chunk))
        if got != size:
            raise _Rejected(f"got {got} bytes, expected {size}")
        if digest.hexdigest() != sha256:
            raise _Rejected(f"SHA-256 mismatch: got {digest.hexdigest()}, expected {sha256}")


def _chunks(response: http.client.HTTPResponse) -> Iterator[bytes]:
    while chunk := response.read(_CHUNK):
        yield chunk


_said: set[str] = set()


def _say_once(text: str) -> None:
    """A warning on stderr, once per process."""
    if text not in _said:
        _said.add(text)
        print(text, file=sys.stderr, flush=True)


# --------------------------------------------------------------------- entry


def load(name_or_path: str | os.PathLike[str], *, download: bool = True, progress: bool = True) -> Dataset:
    """Load a data set by name or folder.

    - ``"mnist-sample"``: the bundled 10,000 digits, split 8,000 / 2,000; offline.
    - ``"mnist"``: the official 60,000 / 10,000 set from :func:`mnist_dir`,
      downloaded first if missing and ``download`` is true.
    - a folder holding the four IDX files under the official names (see
      :func:`load_folder`), e.g. Fashion-MNIST.

    Names take precedence over folders of the same name (write ``./mnist`` for
    the folder); ``pathlib.Path`` arguments are always folders.
    """
    if isinstance(name_or_path, str) and name_or_path.strip().lower() in DATASETS:
        return DATASETS[name_or_path.strip().lower()](download=download, progress=progress)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return load_folder(path)
    if path.exists():
        raise ValueError(f"{path} is a file: a data set folder must hold the four MNIST-format IDX files")
    text = str(name_or_path)
    if not isinstance(name_or_path, str) or os.sep in text or text.startswith((".", "~")):
        raise FileNotFoundError(f"{path}: no such data folder; give a folder holding the four IDX files")
    names = ", ".join(DATASETS.names())
    raise ValueError(f"unknown dataset {text!r}: use {names} or a folder holding IDX files")


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


def _load_bundled_sample(*, download: bool = True, progress: bool = True) -> Dataset:
    """The bundled 10,000 digits, split 8,000 / 2,000; offline."""
    return load_sample()


#: Data sets by name, for :func:`load`, the CLI's ``--data`` and its help.
DATASETS: Registry[Callable[..., Dataset]] = Registry("dataset", fold_case=False)
DATASETS.add("mnist", _load_mnist)
DATASETS.add("mnist-sample", _load_bundled_sample)
