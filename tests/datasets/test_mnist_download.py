"""Downloading MNIST from mirrors, against a local HTTP server only."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from disk_faults import full_disk, read_only_folder

from numpynn import datasets
from numpynn.datasets import mnist
from numpynn.errors import DownloadError, WriteError


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


T = TypeVar("T")

# A stalled mirror must be given up here within SLACK times the time-out that applies: so much
# that a busy machine never fails a test, yet far below what a download that ignores the
# time-out takes (a read time-out of minutes, or forever). The give-up times themselves are
# measured by benchmarks/timeouts.py, not here.
SLACK = 20
LONG_READ_TIMEOUT = 600.0  # a read time-out that never ends a test: only the one tested does


def finishes_within(seconds: float, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a thread: what it returns, or what it raises raised here; a
    failure if it is still running after ``seconds`` (the thread is then left to end on its own)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - raised again in the test's thread
            outcome["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise AssertionError(f"{getattr(fn, '__name__', fn)} still running after {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


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


def test_unwritable_cache(served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """A cache folder that cannot be made: download_mnist says so in one line (a WriteError,
    not a download failure), and load("mnist") works without the cache, saying so once."""
    (tmp_path / "a-file").write_bytes(b"")
    monkeypatch.setenv("NUMPYNN_DATA", str(tmp_path / "a-file"))
    use_mirrors(monkeypatch, served.url)
    with pytest.raises(WriteError) as info:
        datasets.download_mnist(progress=False)
    assert str(datasets.mnist_dir()) in str(info.value) and "\n" not in str(info.value)
    assert served.requests == []  # the mirrors are not blamed for the disk
    for _ in range(2):
        data = datasets.load("mnist", progress=False)
        assert data.n_train == 20 and data.source == "downloaded, not cached"
    warnings = [line for line in capsys.readouterr().err.splitlines() if "without caching" in line]
    assert len(warnings) == 1 and str(datasets.mnist_dir()) in warnings[0]


def test_a_full_disk_under_the_cache_works_without_it(served, monkeypatch: pytest.MonkeyPatch,
                                                      capsys) -> None:
    """ENOSPC in the middle of writing the first file to the cache: the data is used
    without the cache (said once), nothing is left in the cache, no mirror is blamed."""
    use_mirrors(monkeypatch, served.url)
    full_disk(monkeypatch, under=datasets.mnist_dir(), room=1000)
    data = datasets.load("mnist", progress=False)
    assert data.n_train == 20 and data.n_test == 6
    assert cache_listing() == []  # no data, no temporary file
    err = capsys.readouterr().err
    assert err.count("without caching") == 1 and "No space left on device" in err
    assert sum(r == "/train-images-idx3-ubyte.gz" for r in served.requests) == 2  # cache, then scratch


def test_a_read_only_cache_is_done_without(served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys) -> None:
    use_mirrors(monkeypatch, served.url)
    monkeypatch.setenv("NUMPYNN_DATA", str(tmp_path / "ro"))
    with read_only_folder(tmp_path / "ro", monkeypatch):
        data = datasets.load("mnist", progress=False)
        assert data.n_train == 20 and data.source == "downloaded, not cached"
        assert cache_listing() == [] and not (tmp_path / "ro" / "mnist").exists()
    err = capsys.readouterr().err
    assert err.count("without caching") == 1 and f"cannot write {datasets.mnist_dir()}" in err


# --------------------------------------------------------------------------- mirrors that stall


def test_a_mirror_that_accepts_and_never_answers_is_left_for_the_next(
    served, stalled_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a connect time-out of 0.5 s, and a read time-out so long that a mirror kept past its
    # connect time-out would show as a hang
    monkeypatch.setattr(mnist, "CONNECT_TIMEOUT", 0.5)
    monkeypatch.setattr(mnist, "READ_TIMEOUT", LONG_READ_TIMEOUT)
    use_mirrors(monkeypatch, stalled_server.url, served.url)
    started = time.monotonic()
    data = finishes_within(SLACK * 0.5, datasets.load, "mnist", progress=False)
    assert data.n_train == 20
    assert time.monotonic() - started >= 0.5  # waited its time-out: a busy machine only adds to it
    assert len(stalled_server.accepted) == 1  # not asked again for the other three files
    assert cache_listing() == sorted(mnist.MNIST_FILES)


def test_mirrors_that_all_stall_end_in_the_clear_message(
    stalled_server, second_stalled_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_mirrors(monkeypatch, stalled_server.url, second_stalled_server.url)
    with pytest.raises(DownloadError) as info:
        finishes_within(SLACK * 2 * 0.5, datasets.download_mnist, progress=False, connect_timeout=0.5,
                        timeout=LONG_READ_TIMEOUT)
    message = str(info.value)  # each mirror given up by its connect time-out, not its read time-out
    assert message.count("no answer within 0.5 s") == 2 and "\n" not in message
    assert cache_listing() == []


def test_a_name_lookup_that_hangs_is_cut_short(monkeypatch: pytest.MonkeyPatch) -> None:
    """The connect time-out covers the name lookup too, which a socket time-out does not: the
    lookup hangs until the download has given up (then it fails, as lookups do)."""
    import socket

    given_up = threading.Event()

    def stuck(*args, **kwargs):
        given_up.wait(60)
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", stuck)
    try:
        with pytest.raises(DownloadError, match="no answer within 0.3 s"):
            finishes_within(SLACK * 0.3, datasets.download_mnist, mirrors=["http://mirror.invalid/"],
                            progress=False, connect_timeout=0.3, timeout=LONG_READ_TIMEOUT)
    finally:
        given_up.set()


def test_a_mirror_that_stalls_in_the_middle_of_a_file(
    served, half_file_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_mirrors(monkeypatch, half_file_server.url, served.url)
    # the read time-out is what is tested: the connect time-out is too long to play a part
    finishes_within(SLACK * 0.5, datasets.download_mnist, progress=False, timeout=0.5, connect_timeout=60)
    assert len(half_file_server.accepted) == 1  # given up, and not asked again for the other files
    assert cache_listing() == sorted(mnist.MNIST_FILES)  # half a file never passes for data


def test_train_offline_falls_back_to_the_sample(
    stalled_server, second_stalled_server, tmp_path: Path
) -> None:
    """The worst case of a plain `numpynn train` on a machine whose mirrors accept and never
    answer, with the real connect time-out: both mirrors given up, then the bundled sample.
    The read time-out is made too long to play a part, so a mirror kept past its connect
    time-out would show as a hang. How long the fall-back takes (twice CONNECT_TIMEOUT, the
    README's promise) is measured by benchmarks/timeouts.py."""
    env = {**os.environ, "NUMPYNN_DATA": str(tmp_path / "cache"), "NUMPYNN_KERNELS": "numpy",
           "NUMPYNN_MNIST_MIRRORS": f"{stalled_server.url},{second_stalled_server.url}"}
    script = ("import sys; from numpynn.cli import main; from numpynn.datasets import mnist; "
              f"mnist.READ_TIMEOUT = {LONG_READ_TIMEOUT!r}; "
              "sys.exit(main(['train', '--epochs', '1', '--no-progress']))")
    started = time.monotonic()
    p = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert p.stderr is not None
        first = finishes_within(SLACK * 2 * mnist.CONNECT_TIMEOUT, p.stderr.readline)
        fell_back = time.monotonic() - started
        rest = finishes_within(600, p.stderr.read)
        assert p.wait(timeout=60) == 0, first + rest
    finally:
        p.kill()
        p.wait(60)
    assert first.startswith("full MNIST is not cached here and could not be downloaded"), first
    assert "data: mnist-sample" in rest
    assert fell_back >= 2 * mnist.CONNECT_TIMEOUT, fell_back  # each mirror had its time-out
    assert len(stalled_server.accepted) == len(second_stalled_server.accepted) == 1


# --------------------------------------------------------------------------- interrupted downloads


def test_a_killed_download_leaves_nothing_that_passes_for_data(
    served, half_file_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill -9 in the middle of a file: only a hidden temporary file stays, which no
    loader takes for data, and the next download removes it and starts clean."""
    env = {**os.environ, "NUMPYNN_DATA": os.environ["NUMPYNN_DATA"],
           "NUMPYNN_MNIST_MIRRORS": half_file_server.url}
    p = subprocess.Popen([sys.executable, "-c", "from numpynn import datasets; "
                          "datasets.download_mnist(progress=False)"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # the temporary file is made once the mirror has answered: the download is under way
        deadline = time.monotonic() + 120
        while not [n for n in cache_listing() if n.endswith(".tmp")]:
            assert time.monotonic() < deadline and p.poll() is None, "the download never started"
            time.sleep(0.02)
    finally:
        p.kill()
        p.wait(60)
    left = cache_listing()
    assert len(left) == 1 and left[0].startswith(".train-images-idx3-ubyte.gz.") and left[0].endswith(".tmp")
    assert not datasets.is_cached("mnist") and datasets.find_mnist(download=False) is None
    # some time later: older than a live writer's file can be without its lock
    an_hour_ago = time.time() - 3600
    os.utime(datasets.mnist_dir() / left[0], (an_hour_ago, an_hour_ago))
    use_mirrors(monkeypatch, served.url)
    assert datasets.load("mnist", progress=False).n_train == 20
    assert cache_listing() == sorted(mnist.MNIST_FILES)


# --------------------------------------------------------------------------- progress bars


def _train_on_mirror(url: str, cache: Path, cwd: Path, stderr: Any) -> subprocess.Popen:
    env = {**os.environ, "NUMPYNN_DATA": str(cache), "NUMPYNN_MNIST_MIRRORS": url,
           "NUMPYNN_KERNELS": "numpy", "COLUMNS": "100"}
    script = ("import sys; from numpynn.cli import main; from numpynn.datasets import mnist; "
              f"mnist.MNIST_FILES.update({mnist.MNIST_FILES!r}); "  # the small files' checksums
              "sys.exit(main(['train', '--data', 'mnist', '--epochs', '1']))")
    return subprocess.Popen([sys.executable, "-c", script], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=stderr)


def test_no_progress_bar_in_a_redirected_stderr(served, tmp_path: Path) -> None:
    """`numpynn train --data mnist 2>err`: the lines, and no bar, in err."""
    with open(tmp_path / "err", "wb") as err:
        assert _train_on_mirror(served.url, tmp_path / "cache", tmp_path, err).wait(120) == 0
    text = (tmp_path / "err").read_bytes()
    assert len(served.requests) == 4 and b"data: mnist:" in text
    for mark in (b"\r", b"\x1b", "━".encode(), b"%|", b"/s"):
        assert mark not in text, (mark, text[:500])


def test_a_progress_bar_on_a_terminal(served, tmp_path: Path) -> None:
    import pty

    master, slave = pty.openpty()
    p = _train_on_mirror(served.url, tmp_path / "cache", tmp_path, slave)
    os.close(slave)

    def read_screen() -> bytes:
        screen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other end closed
                return screen
            if not chunk:
                return screen
            screen += chunk

    try:
        screen = finishes_within(600, read_screen)  # a guard only: it ends with the run
    finally:
        p.kill()
        p.wait(60)
        os.close(master)
    assert p.returncode == 0
    assert len(served.requests) == 4
    assert "━".encode() in screen and b"train-images-idx3-ubyte.gz" in screen  # the download's bar
    assert b"samples" in screen  # the training's bar
