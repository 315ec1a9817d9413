"""Read and write IDX files, the format of the official MNIST distribution.

Layout (all integers big-endian)::

    byte 0-1   0x00 0x00
    byte 2     data type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
               0x0D float32, 0x0E float64
    byte 3     number of dimensions d
    4 * d      the size of each dimension, uint32
    rest       the data, C order, big-endian, nothing after it

Files may be gzip-compressed (detected by the gzip magic bytes 1f 8b, not by
the name). Reading never trusts the header blindly: the sizes it declares are
checked against the bytes that really exist before anything is allocated, and
every problem with the file's content is an :class:`~numpynn.errors.InvalidFileError`
with a one-line message naming the file. Reading never uses pickle.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import sys
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from numpynn._checks import one_line
from numpynn._io import atomic_write
from numpynn.errors import InvalidFileError

__all__ = ["IDX_DTYPES", "read_idx", "write_idx"]

#: IDX type code -> NumPy dtype (native byte order; stored big-endian on disk).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(np.int16),
    0x0C: np.dtype(np.int32),
    0x0D: np.dtype(np.float32),
    0x0E: np.dtype(np.float64),
}
_CODE_OF: dict[np.dtype, int] = {dtype: code for code, dtype in IDX_DTYPES.items()}

GZIP_MAGIC = b"\x1f\x8b"
#: Deflate never expands more than about 1032:1, so a gzip file of ``n`` bytes
#: cannot decompress to more than ``n * MAX_GZIP_RATIO`` bytes.
MAX_GZIP_RATIO = 1032
#: NumPy 1.x supports at most 32 dimensions.
MAX_DIMS = 32
_CHUNK = 1 << 20
_FIX = "re-download or re-create the file"


def _bad(path: Path, problem: str) -> InvalidFileError:
    """An InvalidFileError whose message is one line: ``path: problem``."""
    return InvalidFileError(f"{path}: {one_line(problem)}")


def _shape_str(dims: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in dims)


def _read_upto(f: BinaryIO, n: int) -> bytes:
    """Read up to ``n`` bytes, fewer only at the end of the stream."""
    parts: list[bytes] = []
    got = 0
    while got < n:
        part = f.read(n - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _fill(f: BinaryIO, buf: np.ndarray) -> int:
    """Read into the 1-D uint8 array ``buf`` until it is full or the stream
    ends, in bounded chunks; return the number of bytes read."""
    view = memoryview(buf)
    filled = 0
    while filled < len(view):
        got = f.readinto(view[filled : filled + _CHUNK])
        if not got:
            break
        filled += got
    return filled


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (plain or gzip-compressed) into an array.

    Returns an array of the shape the header declares, e.g. ``(n, 28, 28)``
    uint8 for MNIST images or ``(n,)`` uint8 for labels, in native byte order,
    C-contiguous and writable.

    Raises ``FileNotFoundError`` if ``path`` does not exist and
    :class:`~numpynn.errors.InvalidFileError` for anything wrong with the
    content: bad magic, unknown type code, truncated data, trailing bytes, a
    ``.gz`` name on a file that is not gzip, or a corrupt gzip stream.
    """
    path = Path(path)
    try:
        f = open(path, "rb")  # closed by the with below
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file; check the path") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise _bad(path, f"empty file (0 bytes), not IDX data; {_FIX}")
        is_gzip = f.read(2) == GZIP_MAGIC
        f.seek(0)
        if not is_gzip:
            if path.suffix.lower() == ".gz":
                raise _bad(
                    path,
                    "named .gz but not gzip-compressed (it does not start with bytes 1f 8b); "
                    "if it is a plain IDX file rename it without .gz, otherwise re-download it",
                )
            return _read_stream(f, path, plain_size=size)
        try:
            with gzip.GzipFile(fileobj=f, mode="rb") as g:
                return _read_stream(g, path, gzip_size=size)  # type: ignore[arg-type]
        except (gzip.BadGzipFile, EOFError, zlib.error) as e:
            reason = str(e) or type(e).__name__
            raise _bad(path, f"corrupt gzip data ({reason}); re-download the file") from None


def _read_header(f: BinaryIO, path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype the IDX header at the start of ``f`` declares."""
    header = _read_upto(f, 4)
    if header[:2] != bytes(len(header[:2])):  # the first two bytes must be zero
        raise _bad(
            path,
            f"not an IDX file: it starts with bytes {header.hex(' ')} instead of 00 00 "
            f"(IDX magic); is this really an MNIST-format IDX file?",
        )
    if len(header) < 4:
        raise _bad(
            path,
            f"truncated IDX file: it ends inside the 4-byte header (only {len(header)} bytes); {_FIX}",
        )
    code, ndim = header[2], header[3]
    if code not in IDX_DTYPES:
        codes = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise _bad(
            path,
            f"not an IDX file: unknown data type code 0x{code:02X} in the header "
            f"(expected one of {codes}); is this really an IDX file?",
        )
    if ndim == 0:
        raise _bad(path, f"bad IDX header: it declares 0 dimensions; {_FIX}")
    if ndim > MAX_DIMS:
        raise _bad(path, f"bad IDX header: it declares {ndim} dimensions, at most {MAX_DIMS} are supported")
    dims_raw = _read_upto(f, 4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise _bad(
            path,
            f"truncated IDX file: the header declares {ndim} dimensions ({4 * ndim} bytes) "
            f"but only {len(dims_raw)} bytes follow; {_FIX}",
        )
    return struct.unpack(f">{ndim}I", dims_raw), IDX_DTYPES[code]


def _read_stream(
    f: BinaryIO,
    path: Path,
    *,
    plain_size: int | None = None,
    gzip_size: int | None = None,
) -> np.ndarray:
    """Parse IDX data from ``f``. Exactly one of ``plain_size`` (the file's
    size) or ``gzip_size`` (the compressed file's size) is given."""
    dims, dtype = _read_header(f, path)
    nbytes = math.prod(dims) * dtype.itemsize
    header_len = 4 + 4 * len(dims)
    says = f"header says {_shape_str(dims)} {dtype.name} ({nbytes} bytes of data)"

    if plain_size is not None:
        follow = plain_size - header_len
        if follow < nbytes:
            raise _bad(path, f"truncated IDX file: {says} but only {follow} bytes follow; {_FIX}")
        if follow > nbytes:
            raise _bad(
                path,
                f"trailing bytes after the IDX data: {says} but {follow} bytes follow "
                f"({follow - nbytes} too many); {_FIX}",
            )
    else:
        assert gzip_size is not None
        if header_len + nbytes > gzip_size * MAX_GZIP_RATIO:
            raise _bad(
                path,
                f"truncated IDX file: {says} but a gzip file of {gzip_size} bytes cannot hold "
                f"that much; {_FIX}",
            )

    if math.prod(d for d in dims if d) * dtype.itemsize > np.iinfo(np.intp).max:
        # NumPy refuses such shapes even when another dimension is 0
        raise _bad(
            path,
            f"bad IDX header: shape {_shape_str(dims)} is too large for any array; {_FIX}",
        )
    buf = np.empty(nbytes, dtype=np.uint8)
    got = _fill(f, buf)
    if got < nbytes:
        where = " after decompression" if gzip_size is not None else ""
        raise _bad(path, f"truncated IDX file: {says} but only {got} bytes follow{where}; {_FIX}")
    if gzip_size is not None and f.read(1):  # bounded: at most nbytes + 1 bytes decompressed
        raise _bad(
            path,
            f"trailing bytes after the IDX data: {says} but more data follows after decompression; {_FIX}",
        )

    big = dtype.newbyteorder(">")
    if dtype.itemsize > 1 and sys.byteorder == "little":
        buf.view(big).byteswap(inplace=True)  # in place: no second copy of the data
    return buf.view(dtype).reshape(dims)


def write_idx(path: str | os.PathLike[str], array: np.ndarray, *, compresslevel: int = 6) -> None:
    """Write ``array`` (any shape with 1 to 32 dimensions, each < 2**32) to
    ``path`` as IDX, atomically; gzip-compressed when ``path`` ends with
    ``.gz``.

    The dtype must be one IDX can hold: uint8, int8, int16, int32, float32 or
    float64 (otherwise ``TypeError``; convert first, e.g. ``a.astype(np.int32)``).
    """
    path = Path(path)
    arr = np.asarray(array)
    dtype = arr.dtype.newbyteorder("=") if arr.dtype.byteorder == ">" else arr.dtype
    if dtype not in _CODE_OF:
        names = ", ".join(d.name for d in IDX_DTYPES.values())
        raise TypeError(
            f"cannot write {arr.dtype} data to IDX file {path}: IDX holds {names}; "
            f"convert first, e.g. array.astype(np.int32)"
        )
    if not 1 <= arr.ndim <= MAX_DIMS:
        raise ValueError(
            f"cannot write a {arr.ndim}-dimensional array to IDX file {path}: "
            f"it needs 1 to {MAX_DIMS} dimensions"
        )
    if any(d >= 2**32 for d in arr.shape):
        raise ValueError(f"cannot write shape {arr.shape} to IDX file {path}: a dimension >= 2**32")
    header = bytes([0, 0, _CODE_OF[dtype], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = np.ascontiguousarray(arr.astype(dtype.newbyteorder(">"), copy=False)).reshape(-1)
    payload = memoryview(data.view(np.uint8))
    with atomic_write(path) as f:
        if path.suffix.lower() == ".gz":
            with gzip.GzipFile(filename="", fileobj=f, mode="wb", compresslevel=compresslevel, mtime=0) as g:
                g.write(header)
                g.write(payload)
        else:
            f.write(header)
            f.write(payload)
