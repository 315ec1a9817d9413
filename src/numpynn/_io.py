"""Writing files safely: a reader sees the old file or the new one, never half of one.

Every file numpynn writes (models, checkpoints, figures, downloads, ONNX files,
IDX files, PNGs) goes through :func:`atomic_write`. When the write cannot be
done (a full disk, a file-size limit, a read-only or missing folder) it raises
:class:`~numpynn.errors.WriteError`, whose message is one line naming the path
and the problem; the previous file is left as it was and no temporary file is
left behind. :func:`make_folder` and :func:`check_writable` give the same
errors for a folder, before any work is done.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from .errors import WriteError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no locks, stale temporaries stay
    fcntl = None  # type: ignore[assignment]


class _Writer:
    """The temporary file, whose write errors name the file being written."""

    def __init__(self, f: BinaryIO, path: Path) -> None:
        self._f = f
        self._path = path

    def write(self, data: Any) -> int:
        try:
            return self._f.write(data)
        except OSError as e:
            raise WriteError.of(self._path, e) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for binary writing; on success
    flush, fsync and rename it over ``path``. On any error the temporary file
    is removed and ``path`` is left as it was; a failure of the file system
    itself is a :class:`~numpynn.errors.WriteError` (an ``OSError``) whose
    message names ``path`` and the problem.

    >>> with atomic_write("model.safetensors") as f:   # doctest: +SKIP
    ...     f.write(data)
    """
    path = Path(path)
    directory = _folder_of(path)
    remove_stale_temporaries(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as e:
        raise WriteError.of(path, e) from None
    try:
        try:
            _hold(fd)
            os.fchmod(fd, _new_file_mode(path))  # mkstemp makes 0600; give the usual mode
            f = os.fdopen(fd, "wb")
        except OSError as e:
            os.close(fd)
            raise WriteError.of(path, e) from None
        try:
            yield _Writer(f, path)  # type: ignore[misc]
        except BaseException:  # the caller's error (or a write's): passed on as it is
            with contextlib.suppress(OSError):  # the buffer may not fit on the disk either
                f.close()
            raise
        try:
            f.flush()
            os.fsync(f.fileno())
            f.close()
            os.replace(tmp, path)
        except OSError as e:
            with contextlib.suppress(OSError):
                f.close()
            raise WriteError.of(path, e) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _hold(fd: int) -> None:
    """Mark a temporary file as being written: a lock that ends with the writer, even on kill -9."""
    if fcntl is not None:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def remove_stale_temporaries(path: str | os.PathLike[str], *, min_age: float = 1.0) -> list[Path]:
    """Remove the temporary files that writers of ``path`` left behind when they
    were killed (``kill -9``, a power cut): those no living writer holds, at
    least ``min_age`` seconds old. Returns the files removed. They never pass
    for data (hidden names ending in ``.tmp``); this keeps the folder clean."""
    if fcntl is None:
        return []
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    removed = []
    try:
        candidates = list(directory.glob(f".{glob.escape(path.name)}.*.tmp"))
    except OSError:
        return []
    for candidate in candidates:
        try:
            fd = os.open(candidate, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            if time.time() - os.fstat(fd).st_mtime < min_age:
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises while a writer holds it
            os.unlink(candidate)
            removed.append(candidate)
        except OSError:
            continue
        finally:
            os.close(fd)
    return removed


def _folder_of(path: Path) -> Path:
    """The folder a new ``path`` goes into, after checking that it is one and that
    ``path`` itself is not a folder."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        if directory.exists():
            raise WriteError(errno.ENOTDIR, f"{directory} is a file, not a folder", str(path))
        raise WriteError.missing_folder(path, directory)
    if path.is_dir():
        raise WriteError.of(path, IsADirectoryError(errno.EISDIR, "Is a directory"))
    return directory


def _new_file_mode(path: Path) -> int:
    """The mode of the file being replaced, or what a new file gets (0666 minus the umask)."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        mask = os.umask(0o022)
        os.umask(mask)
        return 0o666 & ~mask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path) as f:
        f.write(data)


def make_folder(folder: str | os.PathLike[str]) -> Path:
    """Create ``folder`` (and its parents) if it is missing; a
    :class:`~numpynn.errors.WriteError` naming it if that cannot be done."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise WriteError.of(folder, NotADirectoryError(errno.ENOTDIR, "Not a directory")) from None
    except OSError as e:
        raise WriteError.of(folder, e) from None
    return folder


def check_writable(path: str | os.PathLike[str], *, folder: bool = False) -> None:
    """Check, before any work is done, that ``path`` can be written: its folder
    exists and takes a new file (or, with ``folder``, ``path`` is a folder that
    exists or can be made, and takes a new file). Raises
    :class:`~numpynn.errors.WriteError` naming the path and the problem;
    writes nothing that stays."""
    path = Path(path)
    if folder:
        directory = make_folder(path)
    else:
        directory = _folder_of(path)
    name = "probe" if folder else path.name
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    except OSError as e:
        raise WriteError.of(path, e) from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)
