"""What a user's disk does to a write, made to happen in a test.

- :func:`full_disk`: every file numpynn writes (under a folder) fails with ENOSPC
  after a number of bytes, raised by the file's own ``write`` as on a full disk
  (an injected ``OSError``: it works anywhere, as any user).
- :func:`read_only_folder`: a folder that takes no new file. As root (CI), where
  ``mount`` works, a read-only tmpfs mounted on it: the kernel's own EROFS. As
  another user, permission bits (which root ignores). As root where ``mount``
  is refused (a container without the right), every file or folder created in
  it fails with an injected EROFS. Each way runs the test: none skips.
- :func:`limited`: ``preexec_fn`` for a subprocess whose files may not grow past
  a size (``ulimit -f``; a write past it fails with EFBIG).
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from numpynn import _io


class _FullFile:
    """A file on a disk with ``room`` bytes left."""

    def __init__(self, f: Any, room: int) -> None:
        self._f = f
        self._room = room

    def write(self, data: Any) -> int:
        data = bytes(data)
        if len(data) > self._room:
            self._f.write(data[: self._room])  # what fits goes in, as on a real disk
            self._room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return self._f.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


def _inside(path: Path, folder: Path | None) -> bool:
    return folder is None or path.resolve().is_relative_to(folder.resolve())


def full_disk(monkeypatch: pytest.MonkeyPatch, under: str | os.PathLike[str] | None = None,
              room: int = 0, spare: int = 0) -> None:
    """From now on every file numpynn writes (under ``under``, default anywhere) meets a
    full disk after ``room`` bytes: the write raises OSError(ENOSPC). The first
    ``spare`` files are still written whole (the disk fills up during a run)."""
    folder = Path(under) if under is not None else None
    original = _io._Writer.__init__
    written = [0]

    def init(self: Any, f: Any, path: Path) -> None:
        original(self, f, path)
        if _inside(Path(path), folder):
            written[0] += 1
            if written[0] > spare:
                self._f = _FullFile(f, room)

    monkeypatch.setattr(_io._Writer, "__init__", init)


def _mount_read_only(folder: Path) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k,mode=0755", "tmpfs", str(folder)],
                          capture_output=True)
    return done.returncode == 0


def _inject_read_only(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open, real_mkdir = os.open, os.mkdir

    def refuse(path: Any) -> None:
        if _inside(Path(os.fsdecode(path)).parent, folder) or _inside(Path(os.fsdecode(path)), folder):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))

    def open_(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_open(path, flags, *args, **kwargs)

    def mkdir(path: Any, *args: Any, **kwargs: Any) -> None:
        refuse(path)
        real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "mkdir", mkdir)


@contextlib.contextmanager
def read_only_folder(folder: Path, monkeypatch: pytest.MonkeyPatch,
                     fill: Callable[[Path], None] | None = None) -> Iterator[str]:
    """Make ``folder`` (created first, holding what ``fill`` puts there) read-only while
    the block runs; yields how ("mount", "permissions" or "injected")."""
    folder.mkdir(parents=True, exist_ok=True)
    staged = folder.with_name(folder.name + "-content")
    staged.mkdir()
    if fill is not None:
        fill(staged)
    if _mount_read_only(folder):
        # a read-only mount cannot be filled: remount it writable, fill, back to read-only
        subprocess.run(["mount", "-o", "remount,rw", str(folder)], check=True)
        for item in staged.iterdir():
            shutil.copy2(item, folder / item.name)
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        try:
            yield "mount"
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=False)
        return
    for item in staged.iterdir():
        shutil.copy2(item, folder / item.name)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield "permissions"
        finally:
            folder.chmod(0o755)
        return
    with monkeypatch.context() as patch:
        _inject_read_only(folder, patch)
        yield "injected"


def limited(max_bytes: int) -> Callable[[], None]:
    """A ``preexec_fn``: files written by the child may not grow past ``max_bytes``."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return limit
