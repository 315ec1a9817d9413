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

Where each part lives
---------------------
:mod:`.format` (names, versions, limits, the error shape), :mod:`.v1` (reading
version 1), :mod:`.architecture` (the architecture JSON both ways),
:mod:`.header` (the checks above, before any tensor is read), :mod:`.read`
(:func:`load`), :mod:`.write` (:func:`save`), :mod:`.checkpoints`
(:func:`save_checkpoint`, :func:`load_checkpoint`) and :mod:`.describe`
(:func:`describe`); each imports only those listed before it.
"""  # noqa: E501

from __future__ import annotations

import sys
import types

from . import format as _format
from .checkpoints import load_checkpoint, save_checkpoint
from .describe import describe
from .format import FORMAT, FORMAT_VERSION
from .format import KNOWN_VERSIONS as KNOWN_VERSIONS
from .read import load
from .write import save

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


class _Package(types.ModuleType):
    """``numpynn.serialization.MAX_HEADER_BYTES`` reads and sets the one limit the reader
    checks (:data:`.format.MAX_HEADER_BYTES`), so raising it here still works."""

    @property
    def MAX_HEADER_BYTES(self) -> int:
        return _format.MAX_HEADER_BYTES

    @MAX_HEADER_BYTES.setter
    def MAX_HEADER_BYTES(self, value: int) -> None:
        _format.MAX_HEADER_BYTES = value


sys.modules[__name__].__class__ = _Package
