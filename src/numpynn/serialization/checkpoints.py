"""Training checkpoints: a model file plus the optimiser's state, the epoch count, the
``fit`` arguments and the best epoch's weights, so that a resumed run continues exactly."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import optimizers
from .._checks import whole_number
from ..activations import Activation
from ..losses import Loss
from ..network import Network
from ..optimizers import Optimizer
from . import format as fmt
from .format import PathLike, file_name, invalid
from .read import read_model
from .write import dumps, model_payload, write_file


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
    epoch = whole_number(epoch, "epoch", minimum=0)
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a numpynn Optimizer or None, not {type(optimizer).__name__}")
    tensors, meta = model_payload(net, path, None)
    opt_state: dict[str, Any] | None = None
    if optimizer is not None:
        arrays, opt_state = optimizer_payload(path, net, optimizer)
        tensors.update(arrays)
    private = {k: v for k, v in net.metadata.items() if str(k).startswith("_")}
    checkpoint = {
        "epoch": epoch,
        "optimizer": opt_state,
        "extra": dict(extra or {}),
        "private": private,
        "best_params": net.best_params is not None,
    }
    if net.best_params is not None:  # the best epoch's weights, for restore_best after a resume
        tensors[fmt.BEST_PARAMS] = np.ascontiguousarray(net.best_params, dtype=net.dtype)
        if net.state.size:  # and its state (e.g. batch norm's running statistics)
            best_state = net.state if net.best_state is None else net.best_state
            tensors[fmt.BEST_STATE] = np.ascontiguousarray(best_state, dtype=net.dtype)
    meta["checkpoint"] = dumps(checkpoint, "checkpoint")
    write_file(path, tensors, meta)


def optimizer_payload(
    path: PathLike, net: Network, optimizer: Optimizer
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The optimiser's state arrays as tensors, and its ``checkpoint`` entry (config, step, array names)."""
    state = optimizer.state_dict()
    tensors: dict[str, np.ndarray] = {}
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
                f"({file_name(path)} left as it was)"
            )
        tensors[fmt.optimizer_tensor(name)] = value
        names.append(name)
    return tensors, {"config": state["config"], "t": int(state["t"]), "arrays": names}


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
    net, parsed, tensors = read_model(path, custom_activations, custom_losses, checkpoint=True)
    ckpt = parsed.checkpoint
    assert ckpt is not None
    net.metadata.update(ckpt["private"])
    net.best_params = tensors.get(fmt.BEST_PARAMS)
    net.best_state = tensors.get(fmt.BEST_STATE)
    arrays = {k[len(fmt.OPTIMIZER_PREFIX):]: v for k, v in tensors.items()
              if k.startswith(fmt.OPTIMIZER_PREFIX)}
    return net, rebuild_optimizer(path, ckpt, arrays), ckpt["epoch"], ckpt["extra"]


def rebuild_optimizer(
    path: PathLike, ckpt: dict[str, Any], arrays: dict[str, np.ndarray]
) -> Optimizer | None:
    """The optimiser from its stored config, step count and state arrays (None if none was saved)."""
    state = ckpt["optimizer"]
    if state is None:
        return None
    try:
        opt = optimizers.from_config(state["config"])
    except (ValueError, TypeError, OverflowError) as e:
        raise invalid(path, f"its optimizer config cannot be used ({e})") from None
    known = opt._arrays()
    unknown = sorted(set(arrays) - set(known))
    if unknown:
        raise invalid(path, f"optimizer {type(opt).__name__} has no state array {unknown[0]!r}")
    opt.load_state_dict({"t": state["t"], "arrays": {k: arrays.get(k) for k in known}})
    return opt
