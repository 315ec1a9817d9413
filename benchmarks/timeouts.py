"""How long numpynn really takes to give up on a peer that stalls: measured, never asserted.

    python benchmarks/timeouts.py                 # the real time-outs, 3 runs of each case
    python benchmarks/timeouts.py --quick         # short time-outs, 1 run: a smoke run
    python benchmarks/timeouts.py --connect-timeout 4 --read-timeout 15 --web-timeout 30

The unit tests only check that a stalled peer is given up at all, within many times its
time-out (so that a busy machine never fails them); the time it actually takes is measured
here. Every peer is a server of this script's own on 127.0.0.1 (nothing else is reached):

- MNIST mirrors (:func:`numpynn.datasets.download_mnist`): a mirror that accepts the
  connection and never answers (given up after the connect time-out, name lookup to
  headers), two such mirrors (twice that), and a mirror that sends its headers and the
  first 1,000 bytes of a file, then nothing (given up after the read time-out);
- a plain ``numpynn train`` whose two mirrors never answer, in a subprocess with the
  real ``CONNECT_TIMEOUT`` (unless ``--connect-timeout`` says otherwise): the time from
  starting it to its line saying it falls back to the bundled sample, start-up included
  (the README says: after at most about 8 s);
- the web page's server (:func:`numpynn.web.make_server`): a client that connects and
  sends nothing, and one that announces a 100-byte body and sends 40 bytes of it; each
  is closed after the server's ``request_timeout``.

For each case: the nominal time (what the time-outs add up to), and the measured times
(min, median, max over ``--repeat`` runs) with the largest overshoot. Exit status 1 if a
peer was not given up in the expected way (a download that did not fail with the time-out's
message, a connection that was answered); the times themselves are only reported.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

HALF_FILE = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"\x1f\x8b" + b"\0" * 998


@contextmanager
def stalled_server(head: bytes | None = None) -> Iterator[str]:
    """A server on 127.0.0.1 that accepts each connection and then stalls: it answers
    nothing (``head`` None), or reads the request, sends ``head`` and then nothing more.
    Yields its base URL; the connections are held until the block ends."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.05)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:  # the 0.05 s poll, or the listener closed
                continue
            held.append(conn)
            if head is not None:
                conn.settimeout(5.0)
                try:
                    conn.recv(65536)  # the request
                    conn.sendall(head)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for conn in held:
            conn.close()


def timed(fn: Callable[[], None]) -> float:
    started = time.monotonic()
    fn()
    return time.monotonic() - started


# --------------------------------------------------------------------------- the cases


def mnist_case(heads: list[bytes | None], connect: float, read: float, words: str) -> Callable[[], float]:
    """download_mnist from mirrors that all stall as ``heads`` say: the seconds until it
    gives up, which it must do with a DownloadError naming ``words`` for each mirror."""
    from numpynn import datasets
    from numpynn.errors import DownloadError

    def run() -> float:
        with tempfile.TemporaryDirectory() as folder, stalled_servers(heads) as urls:
            def download() -> None:
                try:
                    datasets.download_mnist(mirrors=urls, progress=False, folder=folder,
                                            connect_timeout=connect, timeout=read)
                except DownloadError as e:
                    if str(e).count(words) != len(urls):
                        raise Wrong(f"gave up, but not by its time-out: {e}") from None
                    return
                raise Wrong("the download did not fail")

            return timed(download)

    return run


@contextmanager
def stalled_servers(heads: list[bytes | None]) -> Iterator[list[str]]:
    """One stalled server per entry of ``heads``: their URLs."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        yield [stack.enter_context(stalled_server(head)) for head in heads]


def train_case(connect: float | None) -> Callable[[], float]:
    """``numpynn train`` with two mirrors that never answer: the seconds from starting the
    process to its line saying it trains on the bundled sample instead."""

    def run() -> float:
        with tempfile.TemporaryDirectory() as tmp, stalled_servers([None, None]) as urls:
            env = {**os.environ, "NUMPYNN_DATA": os.path.join(tmp, "cache"), "NUMPYNN_KERNELS": "numpy",
                   "NUMPYNN_MNIST_MIRRORS": ",".join(urls)}
            patch = "" if connect is None else f"mnist.CONNECT_TIMEOUT = {connect!r}; "
            script = ("import sys; from numpynn.cli import main; from numpynn.datasets import mnist; "
                      f"{patch}sys.exit(main(['train', '--epochs', '1', '--no-progress']))")
            started = time.monotonic()
            p = subprocess.Popen([sys.executable, "-c", script], cwd=tmp, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
            try:
                assert p.stderr is not None
                first = p.stderr.readline()
                seconds = time.monotonic() - started
            finally:
                p.kill()
                p.wait()
            if not first.startswith("full MNIST is not cached here and could not be downloaded"):
                raise Wrong(f"the first line was not the fall-back: {first!r}")
            return seconds

    return run


def web_case(timeout: float, data: bytes) -> Callable[[], float]:
    """A client of the web page's server that sends ``data`` and then nothing: the seconds
    from connecting until the server closes the connection, unanswered."""
    from numpynn import web
    from numpynn.models import mlp

    def run() -> float:
        srv = web.make_server(mlp((784, 16, 10), seed=0), "127.0.0.1", 0, request_timeout=timeout)
        srv.start()
        try:
            started = time.monotonic()
            with socket.create_connection(("127.0.0.1", srv.port), timeout=timeout + 60) as s:
                s.sendall(data)
                answer = s.recv(65536)
                seconds = time.monotonic() - started
        finally:
            srv.shutdown()
        if answer:
            raise Wrong(f"the server answered: {answer[:80]!r}")
        return seconds

    return run


class Wrong(Exception):
    """A peer was not given up the way it should be."""


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    from numpynn.datasets import mnist

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="short time-outs (0.5 s connect, 1 s read, 0.5 s web) and one run of each")
    parser.add_argument("--repeat", type=int, default=None,
                        help="runs of each case (default 3, 1 with --quick)")
    parser.add_argument("--connect-timeout", type=float, default=None,
                        help=f"a mirror's connect time-out (default {mnist.CONNECT_TIMEOUT:g} s)")
    parser.add_argument("--read-timeout", type=float, default=None,
                        help=f"a mirror's read time-out (default {mnist.READ_TIMEOUT:g} s)")
    parser.add_argument("--web-timeout", type=float, default=None,
                        help="the web server's request_timeout (default 2 s; the server's own is 30 s)")
    args = parser.parse_args(argv)
    quick = args.quick
    repeat = args.repeat or (1 if quick else 3)
    connect = args.connect_timeout or (0.5 if quick else mnist.CONNECT_TIMEOUT)
    read = args.read_timeout or (1.0 if quick else mnist.READ_TIMEOUT)
    web_timeout = args.web_timeout or (0.5 if quick else 2.0)
    train_connect = None if connect == mnist.CONNECT_TIMEOUT else connect

    body = (b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n" + b"x" * 40)
    cases: list[tuple[str, float, Callable[[], float]]] = [
        ("mirror: accepts, never answers", connect,
         mnist_case([None], connect, read, f"no answer within {connect:g} s")),
        ("two mirrors: accept, never answer", 2 * connect,
         mnist_case([None, None], connect, read, f"no answer within {connect:g} s")),
        ("mirror: stalls after 1,000 bytes", read,
         mnist_case([HALF_FILE], 60.0, read, f"no data for {read:g} s")),  # the read time-out alone
        ("numpynn train: two silent mirrors", 2 * connect, train_case(train_connect)),
        ("web: a client that sends nothing", web_timeout, web_case(web_timeout, b"")),
        ("web: 40 of 100 body bytes", web_timeout, web_case(web_timeout, body)),
    ]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"give-up times, {repeat} run{'s' if repeat != 1 else ''} each; time-outs: connect {connect:g} s, "
          f"read {read:g} s, web {web_timeout:g} s; load average {load:.2f} at the start")
    print(f"{'case':36} {'nominal':>8} {'min':>8} {'median':>8} {'max':>8} {'overshoot':>10}")
    failed = False
    for name, nominal, run in cases:
        try:
            times = [run() for _ in range(repeat)]
        except Wrong as e:
            print(f"{name:36} {nominal:7.2f}s  FAILED: {e}")
            failed = True
            continue
        print(f"{name:36} {nominal:7.2f}s {min(times):7.2f}s {statistics.median(times):7.2f}s "
              f"{max(times):7.2f}s {max(times) - nominal:+9.2f}s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
