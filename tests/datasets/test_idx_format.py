"""IDX reader and writer: round trips, every kind of bad file, fuzzing."""

from __future__ import annotations

import gzip
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from disk_faults import full_disk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from numpynn.datasets import read_idx, write_idx
from numpynn.errors import InvalidFileError

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]
CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C}
CODES.update({np.float32: 0x0D, np.float64: 0x0E})


def random_array(dtype: type, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    return (rng.standard_normal(shape) * 1e3).astype(dtype)


def idx_bytes(code: int, dims: tuple[int, ...], data: bytes = b"") -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + data


# ------------------------------------------------------------------ round trips


@pytest.mark.parametrize("suffix", [".idx", ".idx.gz"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 5), (0, 28, 28), (1, 1, 1, 2)])
def test_round_trip(tmp_path: Path, dtype: type, suffix: str, shape: tuple[int, ...]) -> None:
    array = random_array(dtype, shape)
    path = tmp_path / f"a{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    assert back.shape == shape
    assert back.flags.c_contiguous and back.flags.writeable
    np.testing.assert_array_equal(back, array)
    assert list(tmp_path.iterdir()) == [path]  # no temporary files left


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_plain_layout_is_the_official_one(tmp_path: Path, dtype: type) -> None:
    array = random_array(dtype, (2, 3))
    write_idx(tmp_path / "a.idx", array)
    expected = idx_bytes(CODES[dtype], (2, 3), array.astype(np.dtype(dtype).newbyteorder(">")).tobytes())
    assert (tmp_path / "a.idx").read_bytes() == expected


def test_gz_name_writes_gzip_and_is_deterministic(tmp_path: Path) -> None:
    array = random_array(np.uint8, (4, 5))
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "b.gz", array)
    raw = (tmp_path / "a.gz").read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    assert raw == (tmp_path / "b.gz").read_bytes()
    assert gzip.decompress(raw) == idx_bytes(0x08, (4, 5), array.tobytes())


def test_gzip_is_detected_by_content_not_name(tmp_path: Path) -> None:
    array = random_array(np.int16, (3, 3))
    path = tmp_path / "images-idx3-ubyte"  # no .gz, but gzip inside
    path.write_bytes(gzip.compress(idx_bytes(0x0B, (3, 3), array.astype(">i2").tobytes())))
    np.testing.assert_array_equal(read_idx(path), array)


def test_writes_non_contiguous_and_big_endian_input(tmp_path: Path) -> None:
    base = random_array(np.int32, (6, 8))
    for array in (base[::2, ::3], base.astype(">i4"), base.T):
        write_idx(tmp_path / "a.idx", array)
        np.testing.assert_array_equal(read_idx(tmp_path / "a.idx"), array)


def test_write_replaces_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new file replaces the old one whole; a write that fails on the way (a full disk) leaves
    the old file as it was and no temporary file, hidden or not."""
    path = tmp_path / "a.idx.gz"
    write_idx(path, np.arange(3, dtype=np.uint8))
    write_idx(path, np.arange(5, dtype=np.int16))  # replaced, with another dtype and shape
    np.testing.assert_array_equal(read_idx(path), np.arange(5))
    full_disk(monkeypatch, tmp_path, room=1000)  # the disk fills up after 1,000 bytes
    with pytest.raises(OSError, match="cannot write"):
        write_idx(path, np.random.default_rng(0).integers(0, 2**31, 100_000, dtype=np.int32))
    np.testing.assert_array_equal(read_idx(path), np.arange(5))  # the old file, whole
    assert [p.name for p in tmp_path.iterdir()] == ["a.idx.gz"]


@pytest.mark.parametrize("dtype", [np.int64, np.uint16, np.bool_, np.complex64, np.float16])
def test_write_rejects_dtypes_idx_cannot_hold(tmp_path: Path, dtype: type) -> None:
    with pytest.raises(TypeError, match="convert first"):
        write_idx(tmp_path / "a.idx", np.zeros(3, dtype=dtype))
    assert not (tmp_path / "a.idx").exists()


def test_write_rejects_scalars(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dimensions"):
        write_idx(tmp_path / "a.idx", np.uint8(3))


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    path = tmp_path / "nope-idx3-ubyte.gz"
    with pytest.raises(FileNotFoundError) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


# -------------------------------------------------------------------- bad files

VALID = idx_bytes(0x08, (3, 4), bytes(range(12)))
HUGE = idx_bytes(0x08, (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF))

BAD_FILES = {
    # id: (file name, content, words expected in the message)
    "empty": ("a.idx", b"", ["empty"]),
    "empty-gz-name": ("a.idx.gz", b"", ["empty"]),
    "wrong-magic": ("a.idx", b"\x01\x02" + VALID[2:], ["not an IDX file", "01 02"]),
    "png-magic": ("a.idx", b"\x89PNG\r\n\x1a\n" + bytes(20), ["not an IDX file"]),
    "one-byte": ("a.idx", b"\x00", ["truncated", "header"]),
    "unknown-type": ("a.idx", idx_bytes(0x07, (3,), bytes(3)), ["unknown data type code 0x07"]),
    "zero-dims": ("a.idx", idx_bytes(0x08, ()), ["0 dimensions"]),
    "too-many-dims": ("a.idx", idx_bytes(0x08, (1,) * 40, b"\0"), ["40 dimensions"]),
    "header-cut": ("a.idx", b"\0\0\x08", ["truncated", "header"]),
    "dims-cut": ("a.idx", VALID[:9], ["truncated", "2 dimensions"]),
    "data-cut": ("a.idx", VALID[:-7], ["truncated", "3x4", "12 bytes of data", "only 5 bytes"]),
    "trailing": ("a.idx", VALID + b"xyz", ["trailing bytes", "3x4", "3 too many"]),
    "dims-vs-length": (
        "a.idx",
        idx_bytes(0x0C, (5, 2), bytes(10 * 4 - 1)),
        ["truncated", "5x2 int32", "40 bytes of data", "only 39 bytes"],
    ),
    "overflowing-zero-size": (
        "a.idx",
        idx_bytes(0x08, (0, 46341, 46341, 4294958031)),
        ["too large", "0x46341x46341x4294958031"],
    ),
    "huge-dims": ("a.idx", HUGE, ["truncated", "4294967295x4294967295x4294967295"]),
    "gz-data-cut": ("a.gz", gzip.compress(VALID[:-1]), ["truncated", "only 11 bytes"]),
    "gz-trailing": ("a.gz", gzip.compress(VALID + b"\0"), ["trailing bytes"]),
    "gz-huge-dims": ("a.gz", gzip.compress(HUGE), ["truncated", "cannot hold"]),
    "gz-wrong-magic": ("a.gz", gzip.compress(b"PK\x03\x04" + bytes(30)), ["not an IDX file"]),
    "gz-name-not-gzip": ("a-idx3-ubyte.gz", VALID, ["not gzip", "1f 8b"]),
    "gz-cut-stream": ("a.gz", gzip.compress(VALID)[:-10], ["corrupt gzip"]),
    "gz-bad-crc": (
        "a.gz",
        (lambda z: z[:-8] + bytes([z[-8] ^ 0xFF]) + z[-7:])(gzip.compress(VALID)),
        ["corrupt gzip", "CRC"],
    ),
    "gz-bad-length": (
        "a.gz",
        (lambda z: z[:-4] + bytes([z[-4] ^ 1]) + z[-3:])(gzip.compress(VALID)),
        ["corrupt gzip"],
    ),
    "gz-garbage": ("a.gz", b"\x1f\x8b" + bytes(range(200, 250)), ["corrupt gzip"]),
    "gz-magic-only": ("a.gz", b"\x1f\x8b", ["corrupt gzip"]),
}


@pytest.mark.parametrize("case", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_file_gives_one_clear_line(tmp_path: Path, case: tuple[str, bytes, list[str]]) -> None:
    name, content, words = case
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InvalidFileError) as info:
        read_idx(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    for word in words:
        assert word in message, message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("name", ["a.idx", "a.gz"])
def test_huge_header_does_not_allocate(tmp_path: Path, name: str) -> None:
    # 1 GB declared in a few bytes: must be refused before allocating anything big
    content = idx_bytes(0x0E, (1 << 14, 1 << 13)) + bytes(64)
    if name.endswith(".gz"):
        content = gzip.compress(content)
    path = tmp_path / name
    path.write_bytes(content)
    tracemalloc.start()
    try:
        with pytest.raises(InvalidFileError, match="truncated"):
            read_idx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_gzip_read_is_bounded(tmp_path: Path) -> None:
    # a small header followed by 50 MB of zeros (a 50 kB gzip file): the reader
    # must stop after the declared data plus one byte instead of inflating it all
    z = gzip.compress(idx_bytes(0x08, (4,), bytes(4)) + bytes(50_000_000), compresslevel=1)
    path = tmp_path / "a.gz"
    path.write_bytes(z)
    tracemalloc.start()
    try:
        with pytest.raises(InvalidFileError, match="trailing bytes"):
            read_idx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


# ------------------------------------------------------------------------ fuzz

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def check_reads_or_rejects(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    try:
        result = read_idx(path)
    except InvalidFileError as e:
        assert str(e).startswith(str(path)) and "\n" not in str(e)
    else:
        assert isinstance(result, np.ndarray)


@FUZZ
@given(content=st.binary(max_size=300), gz_name=st.booleans(), gz_magic=st.booleans())
def test_fuzz_random_bytes(tmp_path: Path, content: bytes, gz_name: bool, gz_magic: bool) -> None:
    if gz_magic:
        content = b"\x1f\x8b" + content
    check_reads_or_rejects(tmp_path / ("f.gz" if gz_name else "f.idx"), content)


@FUZZ
@given(
    content=st.builds(
        lambda code, dims, extra: idx_bytes(code, tuple(dims)) + extra,
        st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x01]),
        st.lists(st.integers(0, 2**32 - 1), min_size=0, max_size=5),
        st.binary(max_size=64),
    ),
    compress=st.booleans(),
)
def test_fuzz_random_headers(tmp_path: Path, content: bytes, compress: bool) -> None:
    if compress:
        content = gzip.compress(content, compresslevel=1)
    check_reads_or_rejects(tmp_path / "f.idx", content)


VALID_GZ = gzip.compress(idx_bytes(0x0C, (3, 5), np.arange(15, dtype=">i4").tobytes()))
VALID_PLAIN = idx_bytes(0x0B, (2, 3, 4), np.arange(24, dtype=">i2").tobytes())


@FUZZ
@given(
    base=st.sampled_from([VALID_PLAIN, VALID_GZ]),
    data=st.data(),
)
def test_fuzz_mutated_valid_files(tmp_path: Path, base: bytes, data: st.DataObject) -> None:
    content = bytearray(base)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        kind = data.draw(st.sampled_from(["flip", "cut", "append", "insert"]), label="kind")
        i = data.draw(st.integers(0, max(len(content) - 1, 0)), label="position")
        if kind == "flip" and content:
            content[i] ^= data.draw(st.integers(1, 255), label="xor")
        elif kind == "cut":
            del content[i:]
        elif kind == "append":
            content += data.draw(st.binary(min_size=1, max_size=16), label="tail")
        else:
            content[i:i] = data.draw(st.binary(min_size=1, max_size=4), label="inserted")
    name = "f.idx.gz" if base is VALID_GZ else "f.idx"
    check_reads_or_rejects(tmp_path / name, bytes(content))
