"""The checks, in order, that a file passes before anything in it is believed: a regular
file, a header length that fits, a JSON header, numpynn metadata of a known version, an
architecture whose layers fit together, and exactly the tensors those layers call for.
Nothing here reads tensor data."""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
from collections.abc import Iterator, Mapping
from typing import IO, Any

import numpy as np

from ..activations import Activation
from ..errors import InvalidFileError
from ..layers import Layer
from . import format as fmt
from .architecture import make_layers, parse_architecture
from .format import PathLike, file_name, invalid, is_int, loads

HINT = "numpynn reads only safetensors files it wrote"
# first bytes of files people mistake for models
MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x80", "a pickle, which numpynn never loads"),
    (b"PK\x03\x04", "an .npz archive or another zip file, such as a PyTorch .pt"),
    (b"PK\x05\x06", "an .npz archive or another zip file"),
    (b"\x93NUMPY", "a NumPy .npy file"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file, such as a Keras .h5 model"),
    (b"\x1f\x8b", "a gzip file"),
    (b"BZh", "a bzip2 file"),
    (b"\xfd7zXZ\x00", "an xz file"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
)


@contextlib.contextmanager
def open_model_file(path: PathLike) -> Iterator[tuple[IO[bytes], int]]:
    """``with open_model_file(path) as (f, size)``: a regular file, opened for reading."""
    name = file_name(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such model file: {name}") from None
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(f"{name} is a folder, not a numpynn model file")
    if not stat.S_ISREG(st.st_mode):
        raise InvalidFileError(f"{name} is not a regular file, so not a numpynn model file")
    with open(path, "rb") as f:
        yield f, os.fstat(f.fileno()).st_size


def not_model(path: PathLike, first: bytes, reason: str) -> InvalidFileError:
    """An error for a file that fails the first structural checks; names the
    impostor if its first bytes give it away. A safetensors header always
    starts with ``{`` at offset 8, so a file with one is called broken, never a
    pickle (a numpynn file may well start with 0x80, like a pickle)."""
    if first[8:9] != b"{":
        for magic, what in MAGIC:
            if first.startswith(magic):
                reason = f"it looks like {what}"
                break
        else:
            sample = first[:64]
            if sample and all(32 <= c < 127 or c in b"\t\r\n" for c in sample):
                reason = "it looks like a text file"
    return InvalidFileError(f"{file_name(path)} is not a numpynn model file ({reason}); {HINT}")


def read_header(f: IO[bytes], path: PathLike, size: int) -> tuple[int, dict[str, Any]]:
    """Check the 8-byte length prefix against the file size *before* reading
    the header, then read it and parse it as a JSON object."""
    first = f.read(64)
    if size == 0:
        raise not_model(path, b"", "the file is empty")
    if size < 8:
        raise not_model(path, first, f"it is only {size} bytes long")
    n = int.from_bytes(first[:8], "little")
    if n < 2:
        raise not_model(path, first, f"it is not a safetensors file: its header length is {n} bytes")
    limit = fmt.MAX_HEADER_BYTES  # read now: setting numpynn.serialization.MAX_HEADER_BYTES sets it
    if n > size - 8:
        truncated = " (truncated?)" if n <= limit and first[8:9] == b"{" else ""
        raise not_model(
            path, first,
            f"it is not a safetensors file: its first 8 bytes give a header length of {n} bytes "
            f"but the file has only {size}{truncated}",
        )
    if n > limit:
        raise not_model(path, first, f"its header length of {n} bytes is over the limit of {limit}")
    f.seek(8)
    raw = f.read(n)
    if len(raw) != n:
        raise invalid(path, "the file changed while being read")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=fmt.no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise not_model(path, first, "its safetensors header is not valid JSON") from None
    if not isinstance(header, dict):
        raise not_model(path, first, "its safetensors header is not a JSON object")
    return n, header


class Parsed:
    """A header that passed :func:`parse`: its metadata, parsed, and its layers, built."""

    def __init__(self) -> None:
        self.meta: dict[str, str] = {}
        self.arch: dict[str, Any] = {}
        self.training: dict[str, Any] = {}
        self.checkpoint: dict[str, Any] | None = None
        self.tensors: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
        self.layers: list[Layer] = []  # built (shapes known), no parameter memory yet


def parse(path: PathLike, header: dict[str, Any], data_len: int,
          custom_activations: Mapping[str, Activation] | None = None) -> Parsed:
    """Validate a header (already a JSON object) against what numpynn writes, and
    rebuild the layers (their shapes, not yet their parameters)."""
    p = Parsed()
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or meta.get("format") != fmt.FORMAT:
        raise InvalidFileError(
            f"{file_name(path)} is a safetensors file but not a numpynn model "
            f"(its header has no numpynn metadata); {HINT}"
        )
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise invalid(path, "its metadata values are not all strings")
    p.meta = meta
    version = meta.get("format_version")
    if version not in fmt.KNOWN_VERSIONS:
        raise invalid(
            path,
            f"format_version {version!r} is not one this numpynn reads "
            f"({', '.join(fmt.KNOWN_VERSIONS)}): a newer numpynn may read it",
        )
    p.arch = parse_architecture(path, meta)
    training = loads(path, meta.get("training", "{}"), "training")
    if not isinstance(training, dict):
        raise invalid(path, "its training metadata is not a JSON object")
    p.training = training
    if "checkpoint" in meta:
        p.checkpoint = parse_checkpoint(path, meta["checkpoint"])
    p.tensors = parse_tensors(path, header, data_len)
    p.layers = make_layers(path, p.arch, custom_activations)
    check_tensors(path, p)
    return p


def check_tensors(path: PathLike, p: Parsed) -> None:
    """Exactly the tensors the layers (and the checkpoint) call for, in the model's dtype."""
    dtype = np.dtype(p.arch["dtype"])
    params, state = fmt.layer_tensors(p.layers)
    expected: dict[str, tuple[int, ...]] = dict(params + state)
    n_params = sum(math.prod(shape) for _, shape in params)
    if p.checkpoint is not None and p.checkpoint["optimizer"] is not None:
        for name in p.checkpoint["optimizer"]["arrays"]:
            expected[fmt.optimizer_tensor(name)] = (n_params,)
    if p.checkpoint is not None and p.checkpoint["best_params"]:
        expected[fmt.BEST_PARAMS] = (n_params,)
        if state:
            expected[fmt.BEST_STATE] = (sum(math.prod(shape) for _, shape in state),)
    for name, shape in expected.items():
        if name not in p.tensors:
            raise invalid(path, f"tensor {name!r} is missing")
        got_dtype, got_shape = p.tensors[name]
        if got_shape != shape:
            raise invalid(path, f"tensor {name!r} has shape {list(got_shape)}, expected {list(shape)}")
        if got_dtype != dtype:
            raise invalid(path, f"tensor {name!r} is {got_dtype.name} but the model is {dtype.name}")
    extra = sorted(set(p.tensors) - set(expected))
    if extra:
        raise invalid(path, f"unexpected tensor {extra[0]!r}")


def parse_tensors(
    path: PathLike, header: dict[str, Any], data_len: int
) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """Every tensor entry: a float dtype, a shape, and offsets that tile the data exactly."""
    tensors: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict):
            raise invalid(path, f"the header entry for {name!r} is not a tensor description")
        dtype_name, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype_name not in fmt.ST_DTYPES:
            raise invalid(
                path, f"tensor {name!r} has dtype {dtype_name!r}; numpynn files hold only F32 or F64"
            )
        if not isinstance(shape, list) or not all(is_int(d) for d in shape):
            raise invalid(path, f"tensor {name!r} has no valid shape")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(is_int(o) for o in offsets)
                or offsets[0] > offsets[1]):
            raise invalid(path, f"tensor {name!r} has no valid data offsets")
        dtype = fmt.ST_DTYPES[dtype_name]
        if offsets[1] - offsets[0] != math.prod(shape) * dtype.itemsize:
            raise invalid(path, f"tensor {name!r}: its data length does not match its shape")
        tensors[name] = (dtype, tuple(shape))
        spans.append((offsets[0], offsets[1], name))
    end = 0
    for start, stop, name in sorted(spans):
        if start != end:
            raise invalid(path, f"tensor {name!r}: its data overlaps another or leaves a gap")
        end = stop
    if end != data_len:
        raise invalid(
            path,
            f"the header describes {end} bytes of tensor data but the file holds {data_len} "
            f"(truncated or padded?)",
        )
    return tensors


def parse_checkpoint(path: PathLike, text: str) -> dict[str, Any]:
    """The ``checkpoint`` metadata, checked for form, with its optional entries filled in."""
    ckpt = loads(path, text, "checkpoint")

    def bad(why: str) -> InvalidFileError:
        return invalid(path, f"its checkpoint metadata is malformed: {why}")

    if not isinstance(ckpt, dict):
        raise bad("not a JSON object")
    if not is_int(ckpt.get("epoch")):
        raise bad("'epoch' is not a non-negative whole number")
    for key in ("extra", "private"):
        if not isinstance(ckpt.get(key, {}), dict):
            raise bad(f"{key!r} is not a JSON object")
    ckpt.setdefault("extra", {})
    ckpt.setdefault("private", {})
    ckpt.setdefault("best_params", False)
    if not isinstance(ckpt["best_params"], bool):
        raise bad("'best_params' is not true or false")
    if not all(str(k).startswith("_") for k in ckpt["private"]):
        raise bad("'private' holds a key that does not start with '_'")
    if "optimizer" not in ckpt:
        raise bad("no 'optimizer' entry")
    opt = ckpt["optimizer"]
    if opt is not None:
        if not isinstance(opt, dict) or not isinstance(opt.get("config"), dict):
            raise bad("no optimizer config")
        if not is_int(opt.get("t")):
            raise bad("the optimizer step count is not a non-negative whole number")
        names = opt.get("arrays", [])
        if (not isinstance(names, list) or not all(isinstance(n, str) and n.isidentifier() for n in names)
                or len(set(names)) != len(names)):
            raise bad("invalid optimizer array names")
        opt["arrays"] = names
    return ckpt
