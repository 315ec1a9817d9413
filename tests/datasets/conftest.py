"""Fixtures for the datasets tests: an isolated cache, no internet, a local HTTP server."""

from __future__ import annotations

import functools
import http.server
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from numpynn.datasets import mnist, write_idx


def _is_loopback(address: object) -> bool:
    if not isinstance(address, tuple) or not address:
        return True  # unix sockets and the like
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test gets its own cache folder and can reach 127.0.0.1 only."""
    monkeypatch.setenv("NUMPYNN_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("NUMPYNN_MNIST_MIRRORS", "")
    monkeypatch.setattr(mnist, "DEFAULT_MIRRORS", ())
    original = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        if not _is_loopback(address):
            raise AssertionError(f"tests must not reach the internet (tried {address!r})")
        return original(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@dataclass
class LocalServer:
    """An HTTP server on 127.0.0.1 serving the files in ``root``."""

    root: Path
    url: str = ""
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[LocalServer]:
    root = tmp_path / "served"
    root.mkdir()
    server_info = LocalServer(root=root)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            server_info.requests.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
    )
    server_info.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server_info
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def refused_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@dataclass
class FakeSet:
    """Arrays written to a folder as the four MNIST-format IDX files."""

    folder: Path
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def write_fake_set(
    folder: Path,
    *,
    n_train: int = 30,
    n_test: int = 10,
    shape: tuple[int, int] = (28, 28),
    suffix: str = ".gz",
    dotted: bool = False,
    seed: int = 0,
) -> FakeSet:
    """Write small random images/labels under the official MNIST names."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for stem, array in arrays.items():
        name = stem.replace("-idx", ".idx") if dotted else stem
        write_idx(folder / (name + suffix), array)
    a = list(arrays.values())
    return FakeSet(folder, *a)


@pytest.fixture
def fake_set() -> Callable[..., FakeSet]:
    """``fake_set(folder, **options)`` writes a small MNIST-format folder."""
    return write_fake_set


@dataclass
class StallServer:
    """A server on 127.0.0.1 that accepts connections and then stalls: it never answers
    (``head=None``), or sends ``head`` (e.g. a status line, headers and half a body)
    and then nothing more. It holds each connection until the test ends."""

    url: str
    accepted: list[socket.socket]


def _stall_server(head: bytes | None) -> Iterator[StallServer]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.05)
    info = StallServer(url=f"http://127.0.0.1:{listener.getsockname()[1]}/", accepted=[])
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:  # the 0.05 s poll, or the listener closed
                continue
            info.accepted.append(conn)
            if head is not None:
                conn.settimeout(1.0)
                try:
                    conn.recv(65536)  # the request
                    conn.sendall(head)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield info
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for conn in info.accepted:
            conn.close()


@pytest.fixture
def stalled_server() -> Iterator[StallServer]:
    """Accepts, reads nothing, answers nothing."""
    yield from _stall_server(None)


@pytest.fixture
def second_stalled_server() -> Iterator[StallServer]:
    yield from _stall_server(None)


@pytest.fixture
def half_file_server() -> Iterator[StallServer]:
    """Answers 200 with a Content-Length of 1,000,000, sends 1,000 bytes, then stalls."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"\x1f\x8b" + b"\0" * 998
    yield from _stall_server(head)
