"""Data sets: the bundled sample, IDX folders, the MNIST cache (offline), scale, xor."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import platformdirs
import pytest

from numpynn import datasets
from numpynn.datasets import Dataset, load, load_images_labels, scale, write_idx, xor
from numpynn.errors import InvalidFileError

DATA = Path(datasets.__file__).parent / "data"
SAMPLE_SHA256 = {
    "images-idx3-ubyte.gz": "cbefd2fa01b38ba6cf372497ce9aba06f17cf3240ba03bf2d7eac71734234825",
    "labels-idx1-ubyte.gz": "bb36b9ce0def4e688e6af1f67992dbc236e332bf92033220a5e4813ad620dc5d",
}
OFFICIAL_MIRRORS = datasets.mnist.DEFAULT_MIRRORS  # read before the fixtures patch it
SAMPLE_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]


# ---------------------------------------------------------------- the sample


@pytest.fixture(scope="module")
def sample() -> Dataset:
    return load("mnist-sample")


@pytest.mark.parametrize("name", SAMPLE_SHA256)
def test_sample_files_match_the_readme(name: str) -> None:
    digest = hashlib.sha256((DATA / name).read_bytes()).hexdigest()
    assert digest == SAMPLE_SHA256[name]
    assert digest in (DATA / "README.md").read_text()


def test_sample_loads(sample: Dataset) -> None:
    assert sample.name == "mnist-sample"
    assert sample.x_train.shape == (8000, 784) and sample.x_test.shape == (2000, 784)
    assert sample.y_train.shape == (8000,) and sample.y_test.shape == (2000,)
    assert sample.x_train.dtype == np.uint8 and sample.x_test.dtype == np.uint8
    assert sample.y_train.dtype == np.int64
    assert sample.x_train.flags.c_contiguous and sample.x_test.flags.c_contiguous
    assert sample.image_shape == (28, 28) and sample.n_classes == 10
    labels = np.concatenate([sample.y_train, sample.y_test])
    assert np.bincount(labels, minlength=10).tolist() == SAMPLE_COUNTS
    assert sample.x_train.max() == 255 and sample.x_train.min() == 0
    assert Path(sample.source).is_dir()


def test_sample_split_is_fixed(sample: Dataset) -> None:
    x, y = load_images_labels(DATA / "images-idx3-ubyte.gz", DATA / "labels-idx1-ubyte.gz")
    assert x.shape == (10000, 784) and y.shape == (10000,)
    np.testing.assert_array_equal(sample.x_train, x[:8000])
    np.testing.assert_array_equal(sample.x_test, x[8000:])
    np.testing.assert_array_equal(sample.y_test, y[8000:])


def test_describe_is_one_line(sample: Dataset) -> None:
    line = sample.describe()
    assert "\n" not in line
    assert line.startswith("mnist-sample: 8,000 train + 2,000 test images, 28x28, 10 classes")


def test_sample_needs_no_download(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUMPYNN_MNIST_MIRRORS", "http://127.0.0.1:1/")
    assert datasets.is_cached("mnist-sample")
    assert load("mnist-sample", download=True).n_train == 8000


# ------------------------------------------------------------------ scale, xor


def test_scale() -> None:
    x = np.arange(256, dtype=np.uint8).reshape(2, 128)
    y = scale(x)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert y.min() == 0.0 and y.max() == 1.0
    np.testing.assert_allclose(y, x / 255.0, rtol=1e-6)
    out = np.empty((2, 128), dtype=np.float32)
    assert scale(x, out=out) is out
    np.testing.assert_array_equal(out, y)


def test_scale_rejects_floats_and_bad_out() -> None:
    with pytest.raises(TypeError, match="uint8"):
        scale(np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="float32"):
        scale(np.zeros(3, dtype=np.uint8), out=np.zeros(3))


def test_xor() -> None:
    x, y = xor()
    np.testing.assert_array_equal(x, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(y, [[0], [1], [1], [0]])
    assert x.shape == (4, 2) and y.shape == (4, 1)
    assert x.dtype == np.float32 and y.dtype == np.float32
    assert xor(np.float64)[0].dtype == np.float64


# ------------------------------------------------------------------- folders


@pytest.mark.parametrize("suffix, dotted", [(".gz", False), ("", False), (".gz", True), ("", True)])
def test_load_folder(tmp_path: Path, fake_set: Callable, suffix: str, dotted: bool) -> None:
    fake = fake_set(tmp_path / "fashion", suffix=suffix, dotted=dotted)
    data = load(str(tmp_path / "fashion"))
    assert data.name == "fashion"
    assert data.x_train.shape == (30, 784) and data.x_train.dtype == np.uint8
    np.testing.assert_array_equal(data.x_train, fake.x_train.reshape(30, 784))
    np.testing.assert_array_equal(data.y_test, fake.y_test)
    assert data.y_train.dtype == np.int64
    assert data.source == str(tmp_path / "fashion")


def test_load_folder_keeps_the_image_shape(tmp_path: Path, fake_set: Callable) -> None:
    fake_set(tmp_path / "small", shape=(5, 7))
    data = load(tmp_path / "small")
    assert data.image_shape == (5, 7) and data.x_test.shape == (10, 35)


def test_folder_with_missing_files(tmp_path: Path, fake_set: Callable) -> None:
    fake_set(tmp_path / "d")
    (tmp_path / "d" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError) as info:
        load(tmp_path / "d")
    message = str(info.value)
    assert "missing t10k-labels-idx1-ubyte[.gz]" in message
    assert "train-images-idx3-ubyte[.gz]" in message and "\n" not in message


def test_folder_with_different_image_sizes(tmp_path: Path, fake_set: Callable) -> None:
    fake_set(tmp_path / "d")
    write_idx(tmp_path / "d" / "t10k-images-idx3-ubyte.gz", np.zeros((10, 5, 5), np.uint8))
    with pytest.raises(InvalidFileError, match="different data sets"):
        load(tmp_path / "d")


def test_unknown_name() -> None:
    with pytest.raises(ValueError) as info:
        load("foo")
    assert str(info.value) == ("unknown dataset 'foo': use mnist, mnist-sample or a folder holding IDX files")


def test_a_file_is_not_a_dataset(tmp_path: Path) -> None:
    (tmp_path / "x.idx").write_bytes(b"")
    with pytest.raises(ValueError, match="is a file"):
        load(tmp_path / "x.idx")


# ------------------------------------------------------- image/label pairs


def write_pair(tmp_path: Path, images: np.ndarray, labels: np.ndarray) -> tuple[Path, Path]:
    write_idx(tmp_path / "images.idx", images)
    write_idx(tmp_path / "labels.idx", labels)
    return tmp_path / "images.idx", tmp_path / "labels.idx"


def test_load_images_labels(tmp_path: Path) -> None:
    images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    x, y = load_images_labels(*write_pair(tmp_path, images, np.array([0, 9, 4], np.uint8)))
    assert x.shape == (3, 20) and x.dtype == np.uint8 and x.flags.c_contiguous
    np.testing.assert_array_equal(x[1], images[1].ravel())
    assert y.tolist() == [0, 9, 4] and y.dtype == np.int64


IMAGES = np.zeros((4, 28, 28), np.uint8)
LABELS = np.array([1, 2, 3, 4], np.uint8)
BAD_PAIRS = {
    "count-mismatch": (IMAGES, LABELS[:3], "labels.idx", ["3 labels", "4 images"]),
    "label-out-of-range": (
        IMAGES,
        np.array([1, 2, 12, 200], np.uint8),
        "labels.idx",
        ["label 12 at index 2", "out of range 0-9", "2 such labels"],
    ),
    "images-2d": (IMAGES.reshape(4, 784), LABELS, "images.idx", ["4x784", "idx3"]),
    "images-int16": (IMAGES.astype(np.int16), LABELS, "images.idx", ["int16", "uint8"]),
    "labels-2d": (IMAGES, LABELS.reshape(2, 2), "labels.idx", ["2x2", "idx1"]),
    "labels-int32": (IMAGES, LABELS.astype(np.int32), "labels.idx", ["int32", "uint8"]),
}


@pytest.mark.parametrize("case", BAD_PAIRS.values(), ids=BAD_PAIRS.keys())
def test_bad_pairs(tmp_path: Path, case: tuple) -> None:
    images, labels, culprit, words = case
    with pytest.raises(InvalidFileError) as info:
        load_images_labels(*write_pair(tmp_path, images, labels))
    message = str(info.value)
    assert message.startswith(str(tmp_path / culprit)) and "\n" not in message
    for word in words:
        assert word in message, message


def test_dataset_checks_shapes() -> None:
    x = np.zeros((3, 784), np.uint8)
    with pytest.raises(ValueError, match="y_train"):
        Dataset("d", x, np.zeros(2, np.int64), x, np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="x_test"):
        Dataset("d", x, np.zeros(3, np.int64), x[:, :10], np.zeros(3, np.int64))


# ------------------------------------------------------------ the MNIST cache


def test_cache_dir_follows_numpynn_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUMPYNN_DATA", str(tmp_path / "elsewhere"))
    assert datasets.cache_dir() == tmp_path / "elsewhere"
    assert datasets.mnist_dir() == tmp_path / "elsewhere" / "mnist"
    monkeypatch.delenv("NUMPYNN_DATA")
    assert datasets.cache_dir() == Path(platformdirs.user_cache_dir("numpynn"))


def test_mirrors_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUMPYNN_MNIST_MIRRORS", " http://a/x/ ,, http://b/ ")
    assert datasets.mnist_mirrors() == ["http://a/x/", "http://b/"]
    monkeypatch.delenv("NUMPYNN_MNIST_MIRRORS")
    assert datasets.mnist_mirrors() == list(datasets.mnist.DEFAULT_MIRRORS)


def test_official_defaults() -> None:
    assert OFFICIAL_MIRRORS == (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    )
    assert datasets.mnist.DEFAULT_MIRRORS == ()  # the tests never use them
    sizes = {name: size for name, (size, _) in datasets.MNIST_FILES.items()}
    assert sizes == {
        "train-images-idx3-ubyte.gz": 9912422,
        "train-labels-idx1-ubyte.gz": 28881,
        "t10k-images-idx3-ubyte.gz": 1648877,
        "t10k-labels-idx1-ubyte.gz": 4542,
    }


def test_mnist_not_cached_without_download() -> None:
    assert not datasets.is_cached("mnist")
    assert datasets.find_mnist(download=False) is None
    with pytest.raises(FileNotFoundError) as info:
        load("mnist", download=False)
    message = str(info.value)
    assert str(datasets.mnist_dir()) in message and "mnist-sample" in message
    assert not datasets.mnist_dir().exists()


def test_mnist_from_the_cache(fake_set: Callable) -> None:
    fake_set(datasets.mnist_dir(), n_train=12, n_test=4)
    assert datasets.is_cached("mnist")
    assert datasets.find_mnist(download=False) == datasets.mnist_dir()
    data = load("mnist", download=False)
    assert data.name == "mnist" and data.n_train == 12 and data.n_test == 4


def test_is_cached_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown dataset"):
        datasets.is_cached("cifar")
