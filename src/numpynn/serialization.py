"""Model files and training checkpoints: safetensors, never pickle.

A numpynn model file is an ordinary `safetensors <https://huggingface.co/docs/safetensors>`_
file, so any safetensors reader (PyTorch, JAX, Rust, …) can open it, and
reading one never runs code.

File format (``format_version`` 2)
----------------------------------
Layout, as for every safetensors file::

    8 bytes     N, the header length, unsigned little-endian
    N bytes     the header: a JSON object (UTF-8, padded with spaces)
    the rest    raw tensor data, little-endian, C order

Tensors, one per parameter of layer ``i`` (0 = the layer next to the input),
named after its :meth:`~numpynn.layers.Layer.add_param` call, in the network's
dtype (``F32`` or ``F64``); for a Dense layer:

``layers.{i}.W``
    the weights, shape ``(n_in, n_out)``: the layer computes
    ``z = a_prev @ W + b`` with one sample per row;
``layers.{i}.b``
    the biases, shape ``(n_out,)``.

Layers without parameters (Dropout, Flatten, Reshape) have no tensors.

``__metadata__`` (a string → string map; the values that hold JSON are
marked so):

``format``
    ``"numpynn"``.
``format_version``
    ``"2"`` (files of version ``"1"``, dense networks only, are still read).
``numpynn_version``
    the version that wrote the file, e.g. ``"0.1.0"``.
``architecture`` (JSON)
    ``{"input_shape": [784], "layers": [{"type": "Dense", "config": {"n_in":
    784, "n_out": 128, "activation": {"__activation__": "sigmoid"}, "init":
    "glorot"}}, {"type": "Dropout", "config": {"p": 0.2}}, …], "loss":
    "cross_entropy", "dtype": "float32", "seed": 0}``. Each layer is its
    registered type (:func:`~numpynn.layers.register_layer`) and its
    ``config()``, from which it is rebuilt; an activation in a config is
    ``{"__activation__": name, …its arguments}``. A user-defined activation
    (:class:`~numpynn.activations.Custom`) is stored as ``{"__activation__":
    name, "custom": true}`` only, so loading it needs
    ``custom_activations={"name": activation}`` (code is never stored).
``training`` (JSON)
    facts about the model: ``Network.metadata`` merged with the ``metadata``
    given to :func:`save` (e.g. ``dataset``, ``epochs_trained``,
    ``test_accuracy``). Keys starting with ``_`` are internal and are kept
    only in checkpoints.

A checkpoint (:func:`save_checkpoint`) is a model file with more: the
optimiser's state arrays as tensors ``optimizer.{name}`` (Adam: ``m``, ``v``;
SGD with momentum: ``velocity``; each a flat vector of all parameters, in the
order ``layers.0.W`` (row-major), ``layers.0.b``, ``layers.1.W``, …, that is θ's order) and a
``checkpoint`` JSON entry ``{"epoch": 2, "optimizer": {"config": {…}, "t":
1876, "arrays": ["m", "v"]}, "extra": {…}, "private": {…}, "best_params":
false}``; with ``best_params`` true (training with ``restore_best``) the best
epoch's weights so far are the tensor ``selection.best_params`` (flat, θ's order). :func:`load`
reads the model in a checkpoint and ignores the rest.

Loading the weights elsewhere, e.g. into PyTorch (``nn.Linear`` keeps its
weight as ``(out, in)``, hence the transpose)::

    from safetensors.torch import load_file
    t = load_file("model.safetensors")
    layer0 = torch.nn.Linear(784, 128); layer0.weight.data = t["layers.0.W"].T; layer0.bias.data = t["layers.0.b"]

Reading untrusted files
-----------------------
:func:`load` checks everything before it believes anything: a regular file of
at least 8 bytes, a header length that fits the file (and at most
:data:`MAX_HEADER_BYTES`, checked before the header is read), a JSON object
header, numpynn metadata of a known version, registered layer types whose
shapes fit together, exactly the expected tensors with the expected shapes and
dtype (all before any parameter memory is allocated), finite values. Any failure is an :class:`~numpynn.errors.InvalidFileError` with a
one-line message naming the file; common impostors (a pickle, an ``.npz``, an
HDF5 or gzip file) are named as such.
"""  # noqa: E501

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
from collections.abc import Iterator, Mapping
from typing import IO, Any

import numpy as np

from . import activations, losses, optimizers
from ._io import atomic_write_bytes
from .activations import SPEC_KEY, Activation, Identity
from .errors import InvalidFileError
from .layers import LAYERS, Layer, build_layers
from .losses import Loss
from .network import Network, shortcut
from .optimizers import Optimizer

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_HEADER_BYTES",
    "describe",
    "load",
    "load_checkpoint",
    "save",
    "save_checkpoint",
]

FORMAT = "numpynn"
FORMAT_VERSION = "2"
KNOWN_VERSIONS = ("1", "2")
#: Largest safetensors header accepted (checked before reading it).
MAX_HEADER_BYTES = 16 * 1024 * 1024
_MAX_WIDTH = 2**31  # units in a layer: a sanity bound

PathLike = str | os.PathLike[str]
_ST_DTYPES = {"F32": np.dtype(np.float32), "F64": np.dtype(np.float64)}
_HINT = "numpynn reads only safetensors files it wrote"
# first bytes of files people mistake for models
_MAGIC: tuple[tuple[bytes, str], ...] = (
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


# ------------------------------------------------------------------------------- saving


@shortcut("save")
def save(net: Network, path: PathLike, metadata: Mapping[str, Any] | None = None) -> None:
    """Write ``net`` to ``path`` as a safetensors file, atomically.

    ``metadata`` (JSON-compatible values) is merged over ``net.metadata`` and
    stored as the file's ``training`` facts; keys starting with ``_`` are left
    out. Refuses (``ValueError``) a network whose weights hold NaN or inf; the
    file at ``path`` is then untouched.
    """
    tensors, meta = _model_payload(net, path, metadata)
    _write(path, tensors, meta)


def save_checkpoint(
    path: PathLike,
    net: Network,
    optimizer: Optimizer | None,
    epoch: int,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write a checkpoint to resume training from: the model (as :func:`save`,
    plus the internal ``_`` metadata keys), the optimiser's full state, the
    number of completed ``epoch`` s, and ``extra`` (JSON-compatible; e.g. the
    ``fit`` arguments: batch size, seed, schedule, total epochs).

    Resuming with ``net.fit(..., optimizer=opt, initial_epoch=epoch)`` after
    :func:`load_checkpoint` continues exactly as the uninterrupted run would.
    """
    if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
        raise ValueError(f"epoch must be a non-negative whole number, not {epoch!r}")
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a numpynn Optimizer or None, not {type(optimizer).__name__}")
    tensors, meta = _model_payload(net, path, None)
    opt_state: dict[str, Any] | None = None
    if optimizer is not None:
        state = optimizer.state_dict()
        names = []
        for name, value in sorted(state["arrays"].items()):
            if value is None:
                continue
            value = np.ascontiguousarray(value)
            if value.dtype != net.dtype or value.shape != net.params.shape:
                raise ValueError(
                    f"optimizer state {name!r} ({value.dtype}, shape {value.shape}) does not match "
                    f"the network ({net.dtype}, {net.n_params} parameters): is it this network's optimizer?"
                )
            if not np.all(np.isfinite(value)):
                raise ValueError(
                    f"refusing to save: optimizer state {name!r} contains NaN or infinite values "
                    f"({_name(path)} left as it was)"
                )
            tensors[f"optimizer.{name}"] = value
            names.append(name)
        opt_state = {"config": state["config"], "t": int(state["t"]), "arrays": names}
    private = {k: v for k, v in net.metadata.items() if str(k).startswith("_")}
    checkpoint = {
        "epoch": int(epoch),
        "optimizer": opt_state,
        "extra": dict(extra or {}),
        "private": private,
        "best_params": net.best_params is not None,
    }
    if net.best_params is not None:  # the best epoch's weights, for restore_best after a resume
        tensors["selection.best_params"] = np.ascontiguousarray(net.best_params, dtype=net.dtype)
    meta["checkpoint"] = _dumps(checkpoint, "checkpoint")
    _write(path, tensors, meta)


def _model_payload(
    net: Network, path: PathLike, metadata: Mapping[str, Any] | None
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    if not isinstance(net, Network):
        raise TypeError(f"can only save a numpynn Network, not {type(net).__name__}")
    if not np.all(np.isfinite(net.params)):
        raise ValueError(
            f"refusing to save: weights contain NaN or infinite values (training diverged?); "
            f"{_name(path)} left as it was"
        )
    from ._version import __version__

    tensors: dict[str, np.ndarray] = {}
    for i, layer in enumerate(net.layers):
        for spec in layer.specs:
            tensors[f"layers.{i}.{spec.name}"] = np.ascontiguousarray(layer.params[spec.name])
    architecture = {
        "input_shape": list(net.input_shape),
        "layers": [{"type": _registered_type(i, layer), "config": _encode(layer.config())}
                   for i, layer in enumerate(net.layers)],
        "loss": net.loss.name,
        "dtype": net.dtype.name,
        "seed": _seed_for_file(net.seed),
    }
    loss_cls = losses.LOSSES.get(net.loss.name)
    if loss_cls is None or type(net.loss) is not loss_cls:
        architecture["custom_loss"] = True
    merged = dict(net.metadata)
    merged.update(metadata or {})
    training = {str(k): v for k, v in merged.items() if not str(k).startswith("_")}
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "numpynn_version": str(__version__),
        "architecture": _dumps(architecture, "architecture"),
        "training": _dumps(training, "metadata"),
    }
    return tensors, meta


def _registered_type(i: int, layer: Layer) -> str:
    """The name a model file gives the layer's type; it must be registered to be loaded again."""
    name = type(layer).__name__
    if LAYERS.get(name) is not type(layer):
        raise TypeError(f"layer {i} is a {name}, which is not registered: decorate its class with "
                        "@numpynn.register_layer to save it")
    return name


def _encode(value: Any) -> Any:
    """A layer config as JSON values: activations become their spec, tuples lists."""
    if isinstance(value, Activation):
        return activations.spec(value)
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def _seed_for_file(seed: Any) -> int | None:
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        return int(seed)
    return None


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(value, default=_json_default, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise TypeError(f"cannot save the {what}: {e} (use numbers, strings, lists, dicts)") from None


def _write(path: PathLike, tensors: dict[str, np.ndarray], meta: dict[str, str]) -> None:
    import safetensors.numpy

    data = safetensors.numpy.save(tensors, metadata=meta)
    atomic_write_bytes(path, data)


# ------------------------------------------------------------------------------- loading


def load(
    path: PathLike,
    *,
    custom_activations: Mapping[str, Activation] | None = None,
    custom_losses: Mapping[str, Loss] | None = None,
) -> Network:
    """Read a network written by :func:`save` (or the model in a checkpoint).

    ``custom_activations`` maps the names of user-defined activations in the
    file to the :class:`~numpynn.activations.Activation` objects to use
    (likewise ``custom_losses``). Never executes code from the file.

    Raises ``FileNotFoundError``, ``IsADirectoryError``, or
    :class:`~numpynn.errors.InvalidFileError` for anything that is not a
    sound numpynn model file.
    """
    net, _ = _load(path, custom_activations, custom_losses)
    return net


def load_checkpoint(
    path: PathLike,
    *,
    custom_activations: Mapping[str, Activation] | None = None,
    custom_losses: Mapping[str, Loss] | None = None,
) -> tuple[Network, Optimizer | None, int, dict[str, Any]]:
    """Read a checkpoint: ``(net, optimizer, epoch, extra)``.

    ``net.metadata`` gets back its internal keys (such as ``_base_lr``), and
    the optimiser its step count and state arrays, so that
    ``net.fit(x, y, epochs, optimizer=optimizer, initial_epoch=epoch, ...)``
    continues bit for bit.
    """
    net, parsed = _load(path, custom_activations, custom_losses, checkpoint=True)
    ckpt, arrays = parsed
    return net, _rebuild_optimizer(path, ckpt, arrays), ckpt["epoch"], ckpt["extra"]


def describe(path: PathLike) -> dict[str, Any]:
    """Facts about a model file from its header alone (no tensor is read).

    Returns ``{"path", "file_size", "kind" ("model" or "checkpoint"),
    "format_version", "numpynn_version", "dtype", "loss", "seed",
    "input_shape", "sizes" (values per sample after each layer, inputs
    first), "architecture" (the stored architecture JSON, in version 2's
    form), "layers" (per layer: index, type, config, output_shape, params,
    and activation, n_in, n_out, init, alpha, custom where they apply),
    "n_params", "training", "checkpoint" (epoch, optimizer config, step,
    extra; or None)}``.
    """
    with _open(path) as (f, size):
        header_len, header = _read_header(f, path, size)
        parsed = _parse(path, header, size - 8 - header_len, custom_activations=_PLACEHOLDER)
    arch = parsed.arch
    layers = []
    for i, layer in enumerate(parsed.layers):
        spec = arch["layers"][i]
        row: dict[str, Any] = {"index": i, "type": spec["type"], "config": spec["config"],
                               "output_shape": list(layer.output_shape), "params": layer.n_params}
        act = getattr(layer, "activation", None)
        if isinstance(act, Activation):
            row["activation"] = act.name
            act_spec = spec["config"].get("activation")
            if isinstance(act_spec, dict):
                row.update({k: v for k, v in act_spec.items() if k in ("alpha", "custom")})
        for key in ("n_in", "n_out", "init"):
            if key in spec["config"]:
                row[key] = spec["config"][key]
        layers.append(row)
    ckpt = None
    if parsed.checkpoint is not None:
        c = parsed.checkpoint
        opt = c["optimizer"]
        ckpt = {"epoch": c["epoch"], "extra": c["extra"],
                "optimizer": None if opt is None else opt["config"],
                "step": None if opt is None else opt["t"]}
    return {
        "path": os.fspath(path),
        "file_size": size,
        "kind": "model" if ckpt is None else "checkpoint",
        "format_version": parsed.meta["format_version"],
        "numpynn_version": parsed.meta.get("numpynn_version", "unknown"),
        "dtype": arch["dtype"],
        "loss": arch["loss"],
        "seed": arch["seed"],
        "input_shape": list(arch["input_shape"]),
        "sizes": [math.prod(arch["input_shape"])] + [math.prod(layer.output_shape)
                                                     for layer in parsed.layers],
        "architecture": arch,
        "layers": layers,
        "n_params": sum(row["params"] for row in layers),
        "training": parsed.training,
        "checkpoint": ckpt,
    }


# --- the checks, in order ---------------------------------------------------------------


@contextlib.contextmanager
def _open(path: PathLike) -> Iterator[tuple[IO[bytes], int]]:
    """``with _open(path) as (f, size)``: a regular file, opened for reading."""
    name = _name(path)
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


def _name(path: PathLike) -> str:
    name = os.fspath(path)
    if isinstance(name, bytes):
        name = name.decode(errors="replace")
    return repr(name) if any(c in name for c in "\r\n") else name


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _invalid(path: PathLike, reason: str) -> InvalidFileError:
    return InvalidFileError(f"{_name(path)} is not a valid numpynn model file: {_one_line(reason)}")


def _not_model(path: PathLike, first: bytes, reason: str) -> InvalidFileError:
    """An error for a file that fails the first structural checks; names the
    impostor if its first bytes give it away. A safetensors header always
    starts with ``{`` at offset 8, so a file with one is called broken, never a
    pickle (a numpynn file may well start with 0x80, like a pickle)."""
    if first[8:9] != b"{":
        for magic, what in _MAGIC:
            if first.startswith(magic):
                reason = f"it looks like {what}"
                break
        else:
            sample = first[:64]
            if sample and all(32 <= c < 127 or c in b"\t\r\n" for c in sample):
                reason = "it looks like a text file"
    return InvalidFileError(f"{_name(path)} is not a numpynn model file ({reason}); {_HINT}")


def _read_header(f: IO[bytes], path: PathLike, size: int) -> tuple[int, dict[str, Any]]:
    """Check the 8-byte length prefix against the file size *before* reading
    the header, then read it and parse it as a JSON object."""
    first = f.read(64)
    if size == 0:
        raise _not_model(path, b"", "the file is empty")
    if size < 8:
        raise _not_model(path, first, f"it is only {size} bytes long")
    n = int.from_bytes(first[:8], "little")
    if n < 2:
        raise _not_model(path, first, f"it is not a safetensors file: its header length is {n} bytes")
    if n > size - 8:
        truncated = " (truncated?)" if n <= MAX_HEADER_BYTES and first[8:9] == b"{" else ""
        raise _not_model(
            path, first,
            f"it is not a safetensors file: its first 8 bytes give a header length of {n} bytes "
            f"but the file has only {size}{truncated}",
        )
    if n > MAX_HEADER_BYTES:
        raise _not_model(
            path, first,
            f"its header length of {n} bytes is over the limit of {MAX_HEADER_BYTES}",
        )
    f.seek(8)
    raw = f.read(n)
    if len(raw) != n:
        raise _invalid(path, "the file changed while being read")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _not_model(path, first, "its safetensors header is not valid JSON") from None
    if not isinstance(header, dict):
        raise _not_model(path, first, "its safetensors header is not a JSON object")
    return n, header


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _loads(path: PathLike, text: str, what: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as e:
        raise _invalid(path, f"its {what} metadata is not valid JSON ({e})") from None


class _Parsed:
    def __init__(self) -> None:
        self.meta: dict[str, str] = {}
        self.arch: dict[str, Any] = {}
        self.training: dict[str, Any] = {}
        self.checkpoint: dict[str, Any] | None = None
        self.tensors: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
        self.layers: list[Layer] = []  # built (shapes known), no parameter memory yet


def _is_int(value: Any, minimum: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _parse(path: PathLike, header: dict[str, Any], data_len: int,
           custom_activations: Mapping[str, Activation] | None = None) -> _Parsed:
    """Validate a header (already a JSON object) against what numpynn writes, and
    rebuild the layers (their shapes, not yet their parameters)."""
    p = _Parsed()
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InvalidFileError(
            f"{_name(path)} is a safetensors file but not a numpynn model "
            f"(its header has no numpynn metadata); {_HINT}"
        )
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise _invalid(path, "its metadata values are not all strings")
    p.meta = meta
    version = meta.get("format_version")
    if version not in KNOWN_VERSIONS:
        raise _invalid(
            path,
            f"format_version {version!r} is not one this numpynn reads "
            f"({', '.join(KNOWN_VERSIONS)}): a newer numpynn may read it",
        )
    p.arch = _parse_architecture(path, meta)
    training = _loads(path, meta.get("training", "{}"), "training")
    if not isinstance(training, dict):
        raise _invalid(path, "its training metadata is not a JSON object")
    p.training = training
    if "checkpoint" in meta:
        p.checkpoint = _parse_checkpoint(path, meta["checkpoint"])
    p.tensors = _parse_tensors(path, header, data_len)
    p.layers = _make_layers(path, p.arch, custom_activations)
    # exactly the tensors the layers call for
    dtype = np.dtype(p.arch["dtype"])
    expected: dict[str, tuple[int, ...]] = {}
    for i, layer in enumerate(p.layers):
        for spec in layer.specs:
            expected[f"layers.{i}.{spec.name}"] = spec.shape
    n_params = sum(math.prod(shape) for shape in expected.values())
    if p.checkpoint is not None and p.checkpoint["optimizer"] is not None:
        for name in p.checkpoint["optimizer"]["arrays"]:
            expected[f"optimizer.{name}"] = (n_params,)
    if p.checkpoint is not None and p.checkpoint["best_params"]:
        expected["selection.best_params"] = (n_params,)
    for name, shape in expected.items():
        if name not in p.tensors:
            raise _invalid(path, f"tensor {name!r} is missing")
        got_dtype, got_shape = p.tensors[name]
        if got_shape != shape:
            raise _invalid(path, f"tensor {name!r} has shape {list(got_shape)}, expected {list(shape)}")
        if got_dtype != dtype:
            raise _invalid(path, f"tensor {name!r} is {got_dtype.name} but the model is {dtype.name}")
    extra = sorted(set(p.tensors) - set(expected))
    if extra:
        raise _invalid(path, f"unexpected tensor {extra[0]!r}")
    return p


def _parse_tensors(
    path: PathLike, header: dict[str, Any], data_len: int
) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """Every tensor entry: a float dtype, a shape, and offsets that tile the data exactly."""
    tensors: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict):
            raise _invalid(path, f"the header entry for {name!r} is not a tensor description")
        dtype_name, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype_name not in _ST_DTYPES:
            raise _invalid(
                path, f"tensor {name!r} has dtype {dtype_name!r}; numpynn files hold only F32 or F64"
            )
        if not isinstance(shape, list) or not all(_is_int(d) for d in shape):
            raise _invalid(path, f"tensor {name!r} has no valid shape")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) for o in offsets)
                or offsets[0] > offsets[1]):
            raise _invalid(path, f"tensor {name!r} has no valid data offsets")
        dtype = _ST_DTYPES[dtype_name]
        if offsets[1] - offsets[0] != math.prod(shape) * dtype.itemsize:
            raise _invalid(path, f"tensor {name!r}: its data length does not match its shape")
        tensors[name] = (dtype, tuple(shape))
        spans.append((offsets[0], offsets[1], name))
    end = 0
    for start, stop, name in sorted(spans):
        if start != end:
            raise _invalid(path, f"tensor {name!r}: its data overlaps another or leaves a gap")
        end = stop
    if end != data_len:
        raise _invalid(
            path,
            f"the header describes {end} bytes of tensor data but the file holds {data_len} "
            f"(truncated or padded?)",
        )
    return tensors


def _parse_architecture(path: PathLike, meta: dict[str, str]) -> dict[str, Any]:
    """The architecture JSON, checked for form (and a version-1 one turned into version 2's form)."""
    if "architecture" not in meta:
        raise _invalid(path, "its metadata has no architecture")
    arch = _loads(path, meta["architecture"], "architecture")

    def bad(why: str) -> InvalidFileError:
        return _invalid(path, f"its architecture metadata is malformed: {why}")

    if not isinstance(arch, dict):
        raise bad("not a JSON object")
    if meta.get("format_version") == "1":
        arch = _from_version_1(arch, bad)
    shape = arch.get("input_shape")
    if (not isinstance(shape, list) or not shape or not all(_is_int(d, 1) for d in shape)
            or math.prod(shape) > _MAX_WIDTH):
        raise bad(f"'input_shape' must list whole numbers from 1 up, at most {_MAX_WIDTH} values in all")
    layers = arch.get("layers")
    if not isinstance(layers, list) or not layers:
        raise bad("'layers' must list at least one layer")
    for i, spec in enumerate(layers):
        if (not isinstance(spec, dict) or not isinstance(spec.get("type"), str)
                or not isinstance(spec.get("config"), dict) or set(spec) != {"type", "config"}):
            raise bad(f"layer {i} is not {{\"type\": name, \"config\": {{...}}}}")
    if not isinstance(arch.get("loss"), str):
        raise bad("no loss name")
    if not isinstance(arch.get("custom_loss", False), bool):
        raise bad("invalid 'custom_loss' flag")
    if arch.get("dtype") not in ("float32", "float64"):
        raise bad(f"dtype {arch.get('dtype')!r} is not float32 or float64")
    seed = arch.get("seed")
    if seed is not None and not _is_int(seed):
        raise bad(f"seed {seed!r} is not a non-negative whole number")
    arch["seed"] = seed
    return arch


def _from_version_1(arch: dict[str, Any], bad: Any) -> dict[str, Any]:
    """Version 1 (dense networks only): ``sizes`` and one ``{activation, init, [alpha], [custom]}``
    per layer, turned into version 2's ``input_shape`` and ``{type: "Dense", config}`` list."""
    sizes = arch.get("sizes")
    if (not isinstance(sizes, list) or len(sizes) < 2
            or not all(_is_int(s, 1) and s <= _MAX_WIDTH for s in sizes)):
        raise bad(f"'sizes' must list at least two whole numbers from 1 to {_MAX_WIDTH}")
    layers = arch.get("layers")
    if not isinstance(layers, list) or len(layers) != len(sizes) - 1:
        raise bad(f"'layers' must describe {len(sizes) - 1} layers")
    dense = []
    for i, spec in enumerate(layers):
        if not isinstance(spec, dict) or not isinstance(spec.get("activation"), str):
            raise bad(f"layer {i} has no activation name")
        if spec.get("init") not in ("glorot", "he"):
            raise bad(f"layer {i} has init {spec.get('init')!r}, not 'glorot' or 'he'")
        if "alpha" in spec and not _is_number(spec["alpha"]):
            raise bad(f"layer {i} has an invalid alpha {spec['alpha']!r}")
        if not isinstance(spec.get("custom", False), bool):
            raise bad(f"layer {i} has an invalid 'custom' flag")
        act: dict[str, Any] = {SPEC_KEY: spec["activation"]}
        if spec.get("custom"):
            act["custom"] = True
        elif "alpha" in spec and spec["activation"] == "leaky_relu":
            act["alpha"] = spec["alpha"]
        dense.append({"type": "Dense", "config": {"n_in": sizes[i], "n_out": sizes[i + 1],
                                                  "activation": act, "init": spec["init"]}})
    out = {k: v for k, v in arch.items() if k != "sizes"}
    out.update(input_shape=[sizes[0]], layers=dense)
    return out


class _Unresolved(Identity):
    """Stands in for a user-defined activation where only shapes are needed (describe)."""

    def __init__(self, name: str) -> None:
        self.name = name


class _Placeholders(dict):  # type: ignore[type-arg]
    def __contains__(self, name: object) -> bool:
        return True

    def __getitem__(self, name: str) -> Activation:
        return _Unresolved(name)


_PLACEHOLDER = _Placeholders()


def _make_layers(path: PathLike, arch: dict[str, Any],
                 custom_activations: Mapping[str, Activation] | None) -> list[Layer]:
    """Each layer from its registered type and config, built for its input shape (no memory yet)."""
    layers = []
    for i, spec in enumerate(arch["layers"]):
        kind = spec["type"]
        if kind not in LAYERS:
            raise _invalid(path, f"layer {i} has type {kind!r}, which is not a registered layer type "
                                 f"here (known: {', '.join(LAYERS.names())}); if it is your own, import "
                                 "its module (with @numpynn.register_layer) before loading")
        config = {k: _decode(path, i, v, custom_activations) for k, v in spec["config"].items()}
        try:
            layers.append(LAYERS[kind].from_config(config))
        except (TypeError, ValueError) as e:
            raise _invalid(path, f"layer {i} ({kind}) cannot be made from its config ({e})") from None
    try:
        build_layers(layers, tuple(arch["input_shape"]))
    except (TypeError, ValueError) as e:
        raise _invalid(path, f"cannot rebuild the network ({e})") from None
    return layers


def _decode(path: PathLike, i: int, value: Any, custom: Mapping[str, Activation] | None) -> Any:
    """A config value from JSON: activation specs become activations (user-defined ones from ``custom``)."""
    if isinstance(value, list):
        return [_decode(path, i, v, custom) for v in value]
    if not isinstance(value, dict):
        return value
    if SPEC_KEY not in value:
        return {k: _decode(path, i, v, custom) for k, v in value.items()}
    name = value[SPEC_KEY]
    if not isinstance(name, str):
        raise _invalid(path, f"layer {i} has an activation without a name")
    if value.get("custom"):
        if not custom or name not in custom:
            raise ValueError(
                f"{_name(path)}: layer {i} uses the custom activation {name!r}, whose code is "
                f"not stored in the file: load it with custom_activations={{{name!r}: "
                f"Custom(fn, dfn, name={name!r})}}"
            )
        return activations.get(custom[name])
    try:
        return activations.get(value)
    except (ValueError, TypeError) as e:
        raise _invalid(path, f"layer {i} has an unusable activation ({e})") from None


def _parse_checkpoint(path: PathLike, text: str) -> dict[str, Any]:
    ckpt = _loads(path, text, "checkpoint")

    def bad(why: str) -> InvalidFileError:
        return _invalid(path, f"its checkpoint metadata is malformed: {why}")

    if not isinstance(ckpt, dict):
        raise bad("not a JSON object")
    if not _is_int(ckpt.get("epoch")):
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
        if not _is_int(opt.get("t")):
            raise bad("the optimizer step count is not a non-negative whole number")
        names = opt.get("arrays", [])
        if (not isinstance(names, list) or not all(isinstance(n, str) and n.isidentifier() for n in names)
                or len(set(names)) != len(names)):
            raise bad("invalid optimizer array names")
        opt["arrays"] = names
    return ckpt


def _load(
    path: PathLike,
    custom_activations: Mapping[str, Activation] | None,
    custom_losses: Mapping[str, Loss] | None,
    checkpoint: bool = False,
) -> tuple[Network, Any]:
    with _open(path) as (f, size):
        header_len, header = _read_header(f, path, size)
        parsed = _parse(path, header, size - 8 - header_len, custom_activations)
        if checkpoint and parsed.checkpoint is None:
            raise InvalidFileError(
                f"{_name(path)} is a model file, not a checkpoint (it holds no training state): "
                f"read it with numpynn.load"
            )
        f.seek(0)
        data = f.read(size)
        if len(data) != size or f.read(1):
            raise _invalid(path, "the file changed while being read")
    import safetensors.numpy

    try:
        tensors = safetensors.numpy.load(data)
    except Exception as e:  # safetensors' errors on untrusted bytes: all of them mean "invalid"
        raise _invalid(path, f"safetensors could not read it ({e})") from None
    del data
    if set(tensors) != set(parsed.tensors):
        raise _invalid(path, "safetensors read other tensors than its header lists")
    for name, array in tensors.items():
        dtype, shape = parsed.tensors[name]
        if array.dtype != dtype or array.shape != shape:
            raise _invalid(path, f"tensor {name!r} read back as {array.dtype} {array.shape}")
        if not np.all(np.isfinite(array)):
            raise _invalid(path, f"tensor {name!r} contains NaN or infinite values")
    net = _build(path, parsed, tensors, custom_losses)
    if checkpoint:
        assert parsed.checkpoint is not None
        net.metadata.update(parsed.checkpoint["private"])
        net.best_params = tensors.get("selection.best_params")
        arrays = {k[len("optimizer."):]: v for k, v in tensors.items() if k.startswith("optimizer.")}
        return net, (parsed.checkpoint, arrays)
    return net, None


def _build(
    path: PathLike,
    parsed: _Parsed,
    tensors: dict[str, np.ndarray],
    custom_losses: Mapping[str, Loss] | None,
) -> Network:
    arch = parsed.arch
    loss: str | Loss = arch["loss"]
    if arch.get("custom_loss"):
        if not custom_losses or arch["loss"] not in custom_losses:
            raise ValueError(
                f"{_name(path)}: the model uses the custom loss {arch['loss']!r}, whose code is not "
                f"stored in the file: load it with custom_losses={{{arch['loss']!r}: your_loss}}"
            )
        loss = custom_losses[arch["loss"]]
    elif arch["loss"] not in losses.LOSSES:
        raise _invalid(path, f"unknown loss {arch['loss']!r}")
    theta = [tensors[f"layers.{i}.{spec.name}"].ravel()
             for i, layer in enumerate(parsed.layers) for spec in layer.specs]
    try:
        net = Network(parsed.layers, loss=loss, input_shape=arch["input_shape"], seed=arch["seed"],
                      dtype=arch["dtype"], params=np.concatenate(theta) if theta else np.empty(0))
    except (ValueError, TypeError) as e:
        raise _invalid(path, f"cannot rebuild the network ({e})") from None
    net.metadata = dict(parsed.training)
    return net


def _rebuild_optimizer(
    path: PathLike, ckpt: dict[str, Any], arrays: dict[str, np.ndarray]
) -> Optimizer | None:
    state = ckpt["optimizer"]
    if state is None:
        return None
    try:
        opt = optimizers.from_config(state["config"])
    except (ValueError, TypeError, OverflowError) as e:
        raise _invalid(path, f"its optimizer config cannot be used ({e})") from None
    known = opt._arrays()
    unknown = sorted(set(arrays) - set(known))
    if unknown:
        raise _invalid(path, f"optimizer {type(opt).__name__} has no state array {unknown[0]!r}")
    opt.load_state_dict({"t": state["t"], "arrays": {k: arrays.get(k) for k in known}})
    return opt
