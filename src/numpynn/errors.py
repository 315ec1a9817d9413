"""The project's exceptions.

Every user mistake surfaces as one of these (or a plain ``ValueError``,
``TypeError`` or ``FileNotFoundError``) with a one-line message that says what
is wrong and what to do. The CLI prints that line and exits non-zero.
"""

from __future__ import annotations

import errno as _errno


class NumpynnError(Exception):
    """Base class of the project's own errors."""


class InvalidFileError(NumpynnError, ValueError):
    """A file is not what it claims to be (IDX data, a model file, an image)."""


class DownloadError(NumpynnError, OSError):
    """A download failed or its checksum did not match; nothing was kept."""


class DivergenceError(NumpynnError, ArithmeticError):
    """Training produced a NaN or infinite loss and was stopped."""


class WriteError(NumpynnError, OSError):
    """A file could not be written: a full disk, a file-size limit, a read-only
    or missing folder. The message is one line, ``cannot write PATH: problem``;
    the previous file at PATH is intact and no temporary file is left.

    ``errno`` and ``filename`` are those of ``OSError``; :attr:`bad_target`
    tells a target that cannot be written at all (missing or read-only folder,
    no permission, a folder in the way) from a write that failed on the way
    (a full disk, a file-size limit). A missing folder is also a
    ``FileNotFoundError``, no permission a ``PermissionError``.
    """

    #: errno values that say the target itself cannot be written.
    BAD_TARGET = frozenset({_errno.ENOENT, _errno.EACCES, _errno.EPERM, _errno.EROFS, _errno.ENOTDIR,
                            _errno.EISDIR})

    def __init__(self, errno: int | None, problem: str, path: str, message: str | None = None) -> None:
        super().__init__(errno, problem, path)
        self.message = message or f"cannot write {path}: {problem}"

    def __str__(self) -> str:
        return self.message

    @property
    def bad_target(self) -> bool:
        return self.errno in self.BAD_TARGET

    @classmethod
    def of(cls, path: object, error: OSError) -> WriteError:
        """The WriteError for ``error`` met while writing ``path``."""
        if isinstance(error, WriteError):
            return error
        code = error.errno
        kind = _KINDS.get(code, cls) if code is not None else cls
        return kind(code, _problem(error), str(path))

    @classmethod
    def missing_folder(cls, path: object, folder: object) -> WriteError:
        return _MissingFolderError(_errno.ENOENT, f"folder {folder} does not exist", str(path))


def _problem(error: OSError) -> str:
    """What went wrong, in words a user acts on."""
    e = _errno
    words = {
        e.ENOSPC: "No space left on device (the disk is full)",
        e.EFBIG: "File too large (over the file-size limit, see ulimit -f)",
        e.ENOTDIR: "a part of the path is a file, not a folder",
        e.EISDIR: "it is a folder",
    }
    if error.errno in words:
        return words[error.errno]
    return " ".join(str(error.strerror or error).split()) or type(error).__name__


class _MissingFolderError(WriteError, FileNotFoundError):
    pass


class _NoPermissionError(WriteError, PermissionError):
    pass


class _IsAFolderError(WriteError, IsADirectoryError):
    pass


class _NotAFolderError(WriteError, NotADirectoryError):
    pass


_KINDS: dict[int, type[WriteError]] = {
    _errno.ENOENT: _MissingFolderError, _errno.EACCES: _NoPermissionError, _errno.EPERM: _NoPermissionError,
    _errno.EISDIR: _IsAFolderError, _errno.ENOTDIR: _NotAFolderError,
}
