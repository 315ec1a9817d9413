"""Downloading MNIST from mirrors, against a local HTTP server only."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from numpynn import datasets
from numpynn.datasets import mnist
from numpynn.errors import DownloadError


@pytest.fixture
def served(http_server, fake_set: Callable, monkeypatch: pytest.MonkeyPatch):
    """Small fake MNIST files on the local server, with their checksums patched in."""
    fake_set(http_server.root, n_train=20, n_test=6)
    table = {}
    for name in mnist.MNIST_FILES:  # keep the official order
        content = (http_server.root / name).read_bytes()
        table[name] = (len(content), hashlib.sha256(content).hexdigest())
    monkeypatch.setattr(mnist, "MNIST_FILES", table)
    return http_server


def cache_listing() -> list[str]:
    folder = datasets.mnist_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def use_mirrors(monkeypatch: pytest.MonkeyPatch, *urls: str) -> None:
    monkeypatch.setenv("NUMPYNN_MNIST_MIRRORS", ",".join(urls))


def test_download_success(served, monkeypatch: pytest.MonkeyPatch) -> None:
    use_mirrors(monkeypatch, served.url)
    data = datasets.load("mnist", progress=False)
    assert data.name == "mnist" and data.n_train == 20 and data.n_test == 6
    assert cache_listing() == sorted(mnist.MNIST_FILES)
    assert len(served.requests) == 4
    # second time: from the cache, no request
    assert datasets.load("mnist", progress=False).n_train == 20
    assert len(served.requests) == 4


def test_download_with_progress_bar(served, monkeypatch, capsys) -> None:
    use_mirrors(monkeypatch, served.url.rstrip("/"))  # a base URL without the slash works too
    assert datasets.find_mnist(download=True, progress=True) == datasets.mnist_dir()
    assert datasets.is_cached("mnist")


def test_only_missing_files_are_downloaded(served, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = datasets.mnist_dir()
    folder.mkdir(parents=True)
    name = "train-labels-idx1-ubyte.gz"
    (folder / name).write_bytes((served.root / name).read_bytes())
    use_mirrors(monkeypatch, served.url)
    datasets.download_mnist(progress=False)
    assert sorted(served.requests) == sorted(f"/{n}" for n in mnist.MNIST_FILES if n != name)


def test_checksum_mismatch_keeps_nothing(served, monkeypatch: pytest.MonkeyPatch) -> None:
    name = "t10k-images-idx3-ubyte.gz"
    size, _ = mnist.MNIST_FILES[name]
    mnist.MNIST_FILES[name] = (size, "0" * 64)
    use_mirrors(monkeypatch, served.url)
    with pytest.raises(DownloadError) as info:
        datasets.load("mnist", progress=False)
    message = str(info.value)
    assert "SHA-256 mismatch" in message and name in message
    assert str(datasets.mnist_dir()) in message and "\n" not in message
    listing = cache_listing()
    assert name not in listing
    assert not [n for n in listing if n.endswith(".tmp") or n.startswith(".")]


def test_size_mismatch_keeps_nothing(served, monkeypatch: pytest.MonkeyPatch) -> None:
    name = "train-labels-idx1-ubyte.gz"
    size, sha = mnist.MNIST_FILES[name]
    mnist.MNIST_FILES[name] = (size - 1, sha)  # the server sends one byte too many
    use_mirrors(monkeypatch, served.url)
    with pytest.raises(DownloadError, match="more than the expected"):
        datasets.download_mnist(progress=False)
    mnist.MNIST_FILES[name] = (size + 1, sha)  # ... or one too few
    with pytest.raises(DownloadError, match=f"got {size} bytes, expected {size + 1}"):
        datasets.download_mnist(progress=False)
    assert name not in cache_listing()
    assert not [n for n in cache_listing() if n.endswith(".tmp")]


def test_falls_back_to_the_next_mirror(
    served, tmp_path: Path, refused_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_mirrors(monkeypatch, refused_url, served.url + "no-such-folder/", served.url)
    data = datasets.load("mnist", progress=False)
    assert data.n_train == 20
    assert sum(r.startswith("/no-such-folder/") for r in served.requests) == 4  # the 404s
    assert cache_listing() == sorted(mnist.MNIST_FILES)


def test_all_mirrors_fail(served, refused_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    use_mirrors(monkeypatch, refused_url, served.url + "missing/")
    with pytest.raises(DownloadError) as info:
        datasets.load("mnist", progress=False)
    message = str(info.value)
    assert "\n" not in message
    assert "could not download train-images-idx3-ubyte.gz" in message
    assert refused_url in message and "refused" in message.lower()
    assert "HTTP 404" in message
    assert f"into {datasets.mnist_dir()} by hand" in message
    assert isinstance(info.value, OSError)
    assert cache_listing() == []


def test_no_mirrors(monkeypatch: pytest.MonkeyPatch) -> None:
    use_mirrors(monkeypatch, " , ")
    with pytest.raises(DownloadError, match="no mirrors configured"):
        datasets.find_mnist(download=True, progress=False)


def test_download_false_never_connects(served, monkeypatch: pytest.MonkeyPatch) -> None:
    use_mirrors(monkeypatch, served.url)
    assert datasets.find_mnist(download=False) is None
    with pytest.raises(FileNotFoundError):
        datasets.load("mnist", download=False)
    assert served.requests == []


def test_unwritable_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a-file").write_bytes(b"")
    monkeypatch.setenv("NUMPYNN_DATA", str(tmp_path / "a-file"))
    with pytest.raises(DownloadError, match="cannot create the MNIST cache folder"):
        datasets.download_mnist(progress=False)
