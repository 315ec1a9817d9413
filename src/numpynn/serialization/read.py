"""Reading a model file: :func:`load`, after every check in :mod:`.header` has passed."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .. import losses
from ..activations import Activation
from ..errors import InvalidFileError
from ..losses import Loss
from ..network import Network
from . import format as fmt
from .format import PathLike, file_name, invalid
from .header import Parsed, open_model_file, parse, read_header


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
    net, _, _ = read_model(path, custom_activations, custom_losses)
    return net


def read_model(
    path: PathLike,
    custom_activations: Mapping[str, Activation] | None,
    custom_losses: Mapping[str, Loss] | None,
    checkpoint: bool = False,
) -> tuple[Network, Parsed, dict[str, np.ndarray]]:
    """The network, the parsed header and every tensor; with ``checkpoint``, a model file
    without training state is refused before its tensors are read."""
    with open_model_file(path) as (f, size):
        header_len, header = read_header(f, path, size)
        parsed = parse(path, header, size - 8 - header_len, custom_activations)
        if checkpoint and parsed.checkpoint is None:
            raise InvalidFileError(
                f"{file_name(path)} is a model file, not a checkpoint (it holds no training state): "
                f"read it with numpynn.load"
            )
        f.seek(0)
        data = f.read(size)
        if len(data) != size or f.read(1):
            raise invalid(path, "the file changed while being read")
    import safetensors.numpy

    try:
        tensors = safetensors.numpy.load(data)
    except Exception as e:  # safetensors' errors on untrusted bytes: all of them mean "invalid"
        raise invalid(path, f"safetensors could not read it ({e})") from None
    del data
    if set(tensors) != set(parsed.tensors):
        raise invalid(path, "safetensors read other tensors than its header lists")
    for name, array in tensors.items():
        dtype, shape = parsed.tensors[name]
        if array.dtype != dtype or array.shape != shape:
            raise invalid(path, f"tensor {name!r} read back as {array.dtype} {array.shape}")
        if not np.all(np.isfinite(array)):
            raise invalid(path, f"tensor {name!r} contains NaN or infinite values")
    return build(path, parsed, tensors, custom_losses), parsed, tensors


def build(
    path: PathLike,
    parsed: Parsed,
    tensors: dict[str, np.ndarray],
    custom_losses: Mapping[str, Loss] | None,
) -> Network:
    """The network from checked layers and tensors, with its loss and ``training`` metadata."""
    arch = parsed.arch
    loss: str | Loss = arch["loss"]
    if arch.get("custom_loss"):
        if not custom_losses or arch["loss"] not in custom_losses:
            raise ValueError(
                f"{file_name(path)}: the model uses the custom loss {arch['loss']!r}, whose code is not "
                f"stored in the file: load it with custom_losses={{{arch['loss']!r}: your_loss}}"
            )
        loss = custom_losses[arch["loss"]]
    elif arch["loss"] not in losses.LOSSES:
        raise invalid(path, f"unknown loss {arch['loss']!r}")
    params, state = fmt.layer_tensors(parsed.layers)
    try:
        net = Network(parsed.layers, loss=loss, input_shape=arch["input_shape"], seed=arch["seed"],
                      dtype=arch["dtype"], params=_joined(tensors, params), state=_joined(tensors, state))
    except (ValueError, TypeError) as e:
        raise invalid(path, f"cannot rebuild the network ({e})") from None
    net.metadata = dict(parsed.training)
    return net


def _joined(tensors: dict[str, np.ndarray], names: list[tuple[str, tuple[int, ...]]]) -> np.ndarray:
    """The named tensors end to end, as the network's flat vector."""
    return np.concatenate([tensors[name].ravel() for name, _ in names]) if names else np.empty(0)
