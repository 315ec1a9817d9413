"""Verified downloads from mirrors: each file streamed into a temporary file and
renamed only once its size and SHA-256 are right, each mirror given a time to
answer and a time it may fall silent, a mirror that cannot be reached not asked
again. Knows no data set; :func:`numpynn.datasets.download_mnist` uses it.
"""

from __future__ import annotations

import hashlib
import http.client
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from numpynn._checks import one_line
from numpynn._io import atomic_write, make_folder
from numpynn._progress import Bar
from numpynn.errors import DownloadError, WriteError

__all__ = ["download_files"]

_CHUNK = 1 << 16


class _Rejected(Exception):
    """A mirror answered, but with the wrong bytes."""


class _NoAnswer(TimeoutError):
    """A mirror did not answer in time."""


def download_files(
    files: Mapping[str, tuple[int, str]],
    folder: Path,
    mirrors: Sequence[str],
    *,
    progress: bool,
    timeout: float,
    connect_timeout: float,
    advice: str,
) -> Path:
    """Download each of ``files`` (file name -> (size in bytes, SHA-256)) into
    ``folder`` from the first of ``mirrors`` (base URLs) that delivers it, and
    return ``folder``.

    Each mirror has ``connect_timeout`` seconds to answer and may then fall
    silent for at most ``timeout`` seconds. Raises
    :class:`~numpynn.errors.DownloadError` (ending in ``advice``) when no mirror
    delivers a file and :class:`~numpynn.errors.WriteError` when ``folder``
    cannot take it, leaving the mirrors alone.
    """
    make_folder(folder)
    unreachable: dict[str, str] = {}
    for filename, (size, sha256) in files.items():
        failures = []
        for base in mirrors:
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
            raise DownloadError(f"could not download {filename} ({tried}); {advice}")
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
    return one_line(e) or type(e).__name__


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
           connect_timeout: float) -> None:
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
