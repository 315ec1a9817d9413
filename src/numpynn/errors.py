"""The project's exceptions.

Every user mistake surfaces as one of these (or a plain ``ValueError``,
``TypeError`` or ``FileNotFoundError``) with a one-line message that says what
is wrong and what to do. The CLI prints that line and exits non-zero.
"""

from __future__ import annotations


class NumpynnError(Exception):
    """Base class of the project's own errors."""


class InvalidFileError(NumpynnError, ValueError):
    """A file is not what it claims to be (IDX data, a model file, an image)."""


class DownloadError(NumpynnError, OSError):
    """A download failed or its checksum did not match; nothing was kept."""


class DivergenceError(NumpynnError, ArithmeticError):
    """Training produced a NaN or infinite loss and was stopped."""
