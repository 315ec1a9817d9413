"""The page's JSON API: what a network makes of one drawing, and the network in use.

The HTTP side (routes, limits, refusals) is :mod:`numpynn.web.http`; the
"watch it learn" job is :mod:`numpynn.web.trainer`. This module knows
networks and inputs only: it imports neither of them (the job is whatever
:class:`TrainingJob` describes; :mod:`~numpynn.web.trainer` imports this module).

JSON API
--------
``GET /`` (and ``/app.js``, ``/style.css``, also under ``/static/``)
    The page. ``Cache-Control: no-store``; anything else is a 404.

``POST /api/predict`` with ``{"png": "data:image/png;base64,..."}``
    The drawing as a PNG (or any image Pillow reads), exactly what the page
    sends. It goes through :func:`numpynn.images.preprocess`, the function
    ``numpynn predict`` uses, so the page and the command line see the same
    28x28 input. ``{"image": [784 numbers in [0, 1]]}`` (or 28 rows of 28) is
    accepted as well and goes through the same function. Answer (200)::

        {"digit": 7, "probability": 0.98, "probabilities": [10 numbers],
         "input": [784 numbers: the 28x28 image the network sees, row-major],
         "layers": [{"index": 0, "type": "Dense", "activation": "sigmoid",
                     "shape": [128], "view": "units", "values": [128 numbers]},
                    {"index": 2, "type": "Conv2D", "activation": "relu",
                     "shape": [8, 26, 26], "view": "maps",
                     "values": [8 maps of 26 rows of 26 numbers]}, ...],
         "saliency": [784 signed numbers], "saliency_max": 0.31,
         "saliency_method": "...", "model": {...}}

    ``layers`` holds every hidden layer that computes something, in order:
    every layer but the output layer, less those whose output is their input
    at inference (Dropout, Flatten, Reshape: the test is made on the numbers,
    see :func:`hidden_layers`). ``index`` is the layer's place in
    ``net.layers``, ``shape`` its output shape per sample. ``view`` says how
    ``values`` (the layer's output for this drawing) is laid out for drawing:
    ``"units"``, a flat list (a 1-D output, such as a dense layer's, or any
    output of more than three axes, flattened); ``"maps"``, a list of
    channels, each a list of rows (a ``(C, H, W)`` output; an ``(H, W)``
    output is one channel).

    The saliency is the gradient of the log-probability of the predicted
    class with respect to the input pixels, ∂ log p_c / ∂x, computed with the
    network's own backward pass: a forward pass, then ∂ log p_c / ∂a_L =
    e_c / p_c handed to each layer's backward in turn, down to the input
    (:meth:`numpynn.network.Network.input_gradient`; for a dense stack this is
    δ_L = e_c − p, then δ_{l−1} = (δ_l W_lᵀ) ⊙ σ'(z_{l−1}), and
    ∂ log p_c / ∂x = δ_1 W_1ᵀ). Positive: brightening that pixel makes the
    network surer of c (against the other classes); negative: less sure. The
    plain gradient (not input ⊙ gradient) is used because it also shows what
    the network would like to see where nothing has been drawn.

``POST /api/explain`` with the drawing as ``/api/predict`` takes it, plus ``"label"`` (the
target digit K, 0..9; null or absent: the digit the network reads) and ``"lr"`` (the rate R
of the step shown, a positive number; null or absent: chosen, see :func:`numpynn.explain.explain`)
    Backprop you can watch: one forward and one backward pass of the loss for K, in inference
    mode, on a float64 copy of the network, and the probabilities after one step θ ← θ − R∇θ
    applied to another copy (the served network never changes). Answer (200): exactly
    :meth:`numpynn.explain.Explanation.as_json` (``prediction``, ``label``, ``loss``,
    ``probabilities``, ``after_step``, ``lr``, ``layers``: one entry per top-level layer in
    network order with ``index``, ``type``, ``output_shape``, ``output_grad_norm``,
    ``param_grad_norm``, numbers at full precision), each layer entry extended for drawing
    with ``activation``, ``passes`` (its output is its input: no pictures), ``equation``,
    ``view`` (``"units"``, ``"maps"`` or ``"none"``), ``values`` (its output), ``grad``
    (∂C/∂output), ``delta`` (δ = ∂C/∂z, or null), ``grad_max`` (max |∂C/∂output|),
    ``channels`` (the channels shown, for maps), ``top`` (its three largest ∇θ entries); and
    ``loss_name``, ``lr_rule``, ``rates``, ``step_equation``, ``input``, ``input_grad``
    (∂C/∂x, 784), ``input_grad_max``, ``first_layer`` (the first weight layer's ∇W as
    pictures: ``kind`` ``"units"`` or ``"filters"``, ``picks``, ``shape``, ``grads``,
    ``norms``), ``top`` (the network's ten largest ∇θ entries) and ``model``.
    Pictures are kept small: at most 8 maps a layer (those with the
    largest ∂C/∂output), each averaged down to at most 14 on a side, and at most 256
    units (:mod:`numpynn.web.backprop`). A label outside 0..9 or a bad rate: 400.

``POST /api/train`` with ``{}``
    Starts "watch it learn": a fresh network trains on the bundled MNIST
    sample in a background thread (:class:`numpynn.web.trainer.Trainer`),
    each epoch scored on the recipe's validation split of the training
    images. 202 with the status (below, with the test digits' pixels); 409
    ``{"error": ...}`` if a job is already running. When the job finishes,
    ``/api/predict`` uses the new network.

``GET /api/train/status`` (``?pixels=1`` to include the test digits' pixels)
    ``{"state": "idle" | "running" | "done" | "failed" | "stopped",
    "epoch": 3, "epochs": 10, "layers": [784, 128, 64, 10], "history":
    {"epoch": [...], "loss": [...], "accuracy": [...], "val_loss": [...],
    "val_accuracy": [...], "seconds": [...]}, "digits": {"labels": [...],
    "pixels": [[784 ints 0..255], ...]}, "predictions": [{"digit": 3,
    "probability": 0.9}, ...] (one per test digit, for the network as of
    ``predictions_epoch``), "model_generation": 2, "error": null}``.
    ``loss`` and ``accuracy`` are the training batches' averages over each
    epoch; ``val_loss`` and ``val_accuracy`` are measured on the validation
    split (null without one), never on the test set. The test digits are
    shown, not used to choose anything. ``stopped`` means the job was
    stopped (by :meth:`~numpynn.web.trainer.Trainer.stop`, e.g. at shutdown)
    and its network was not adopted.

``GET /api/model``
    The network in use: ``description`` (e.g. ``"784-128-64-10"``: the input
    and each layer that computes), ``sizes``, ``activations``, ``layers``
    (type, output shape and activation of each), where it came from, its test
    accuracy, and ``generation`` (it goes up each time a new network is used).

Errors: 400 malformed JSON, unknown or missing fields, bad base64, not an
image, a blank drawing; 403 a foreign ``Host``, or a POST whose ``Origin`` is
another page; 404 unknown paths; 405 a known path with the wrong method (with
``Allow``); 409 a second training job; 411 no ``Content-Length``; 413 a body
over ``MAX_BODY_BYTES``; 415 a POST that is not JSON; 503 ``/api/predict``
before any network exists.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import threading
from typing import Any, Protocol

import numpy as np

from .._checks import one_line
from ..metrics import classes
from ..network import Network
from ._json import ApiError, num, nums
from .backprop import explain_drawing, parse_explain

__all__ = ["MAX_IMAGE_PIXELS", "App", "TrainingJob", "analyse", "check_network", "describe", "hidden_layers",
           "parse_image"]

#: Largest picture (width x height) /api/predict decodes; checked before decoding.
MAX_IMAGE_PIXELS = 4_000_000
#: What the page draws: 28x28 grey images, 784 values.
IMAGE_SIDE = 28
N_PIXELS = IMAGE_SIDE * IMAGE_SIDE
SALIENCY_METHOD = (
    "gradient of log p(predicted digit) with respect to the input pixels, "
    "by the network's own backward pass (d log p_c / d a_L = e_c / p_c, handed down through "
    "each layer's backward to the input)"
)
#: Extra random inputs run alongside the drawing to tell layers that pass their input through.
_PROBES = 2
_DATA_URL = re.compile(r"^data:image/[A-Za-z0-9.+-]+;base64,", re.ASCII)


# ----------------------------------------------------------------------------- the network


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def check_network(net: Network) -> None:
    """The page draws 28x28 digits and shows class probabilities: refuse, in one
    line that says so, a network that takes anything else or does not end in a
    softmax over two or more classes."""
    if not isinstance(net, Network):
        raise TypeError(f"expected a numpynn Network, not {type(net).__name__}")
    if [d for d in net.input_shape if d != 1] not in ([N_PIXELS], [IMAGE_SIDE, IMAGE_SIDE]):
        got = (f"{net.n_in} input{'s' if net.n_in != 1 else ''}" if len(net.input_shape) == 1
               else f"inputs of shape {_shape_text(net.input_shape)}")
        raise ValueError(f"the page needs a network that reads a 28x28 image (784 inputs, one per pixel, "
                         f"as MNIST digits are); this one takes {got}")
    last = net.layers[-1]
    act = getattr(last, "activation", None)
    act_name = getattr(act, "name", "")
    if net.n_out < 2 or act_name != "softmax":
        ends = f"{net.n_out} {act_name + ' ' if act_name else ''}output{'s' if net.n_out != 1 else ''}"
        raise ValueError("the page needs a classifier that ends in one row of class probabilities (a "
                         f"softmax over 2 or more classes); this one ends in {ends} ({last.name})")


def _outputs(net: Network, x: np.ndarray) -> list[np.ndarray]:
    """Each layer's output (copies) for the batch ``x`` (B, *input_shape), in inference mode."""
    outputs = []
    y = x
    for layer in net.layers:
        y = layer.forward(y, training=False)
        outputs.append(np.array(y))
    return outputs


def _passes_through(x: np.ndarray, y: np.ndarray) -> bool:
    """True when a layer's output holds exactly its input's numbers, in order (Dropout at
    inference, Flatten, Reshape): there is nothing new to show."""
    return x.size == y.size and np.array_equal(x.reshape(x.shape[0], -1), y.reshape(y.shape[0], -1))


def _probed(net: Network, x: np.ndarray | None = None) -> tuple[list[np.ndarray], list[int]]:
    """The layers' outputs for a batch of ``x`` (if given) and a few fixed random inputs, and the
    indices of the layers that compute something (whose output is not their input on every row)."""
    probes = np.random.default_rng(0).random((_PROBES, *net.input_shape)).astype(net.dtype)
    batch = probes if x is None else np.concatenate([x.reshape(1, *net.input_shape).astype(net.dtype),
                                                     probes])
    outputs = _outputs(net, batch)
    inputs = [batch, *outputs[:-1]]
    computing = [i for i, (a, b) in enumerate(zip(inputs, outputs, strict=True)) if not _passes_through(a, b)]
    return outputs, computing


def _for_drawing(values: np.ndarray) -> tuple[str, Any]:
    """One sample's output as the page draws it: ``("units", flat list)`` or
    ``("maps", channels of rows)``."""
    if values.ndim in (2, 3):
        maps = values.reshape(-1, *values.shape[-2:])
        flat = np.array(nums(maps, 4), dtype=object)
        return "maps", flat.reshape(maps.shape).tolist()
    return "units", nums(values, 4)


def hidden_layers(net: Network, x: np.ndarray) -> list[dict[str, Any]]:
    """The hidden layers that compute something, with their outputs for one input ``x``.

    A layer is shown when its output is not simply its input (tested on the
    numbers, for ``x`` and a few fixed random inputs: Dropout at inference,
    Flatten and Reshape pass their input through); the last layer that
    computes is the output layer and is not shown. Each entry:
    ``{"index", "type", "activation", "shape", "view", "values"}`` (see the
    module docstring). ``net`` is used as given (call it on a copy).
    """
    outputs, computing = _probed(net, x)
    shown = []
    for i in computing[:-1]:
        layer = net.layers[i]
        view, values = _for_drawing(outputs[i][0])
        shown.append({
            "index": i,
            "type": layer.name,
            "activation": getattr(getattr(layer, "activation", None), "name", None),
            "shape": list(layer.output_shape),
            "view": view,
            "values": values,
        })
    return shown


def describe(net: Network, accuracy: bool = False) -> str:
    """The input and each layer that computes, by size: e.g. ``"784-128-64-10"``
    (a ``(C, H, W)`` output shows as ``CxHxW``); with ``accuracy``, as the
    server's log names a model: ``"784-128-64-10 network, test accuracy 96.1%"``."""
    _, computing = _probed(net.copy("float64"))
    shapes = [net.input_shape] + [net.layers[i].output_shape for i in computing]
    text = "-".join(_shape_text(s) for s in shapes)
    if not accuracy:
        return text
    acc = net.metadata.get("test_accuracy")
    return f"{text} network" + (f", test accuracy {100 * acc:.1f}%" if isinstance(acc, float) else "")


def analyse(net: Network, x: np.ndarray) -> dict[str, Any]:
    """Everything the page shows about one input ``x`` (784 values in [0, 1]).

    Works on a float64 copy of the network (request threads never share its
    buffers): a forward pass keeping each hidden layer's output
    (:func:`hidden_layers`), then the saliency ∂ log p_c / ∂x for the
    predicted class c, by the network's own backward pass carried to the
    input (:meth:`Network.input_gradient` with ∂ log p_c / ∂a_L = e_c / p_c).
    """
    net = net.copy("float64")
    x64 = np.asarray(x, dtype=np.float64).reshape(1, *net.input_shape)
    layers = hidden_layers(net, x64)
    rows = net.predict(x64)
    probs, digit = rows[0], int(classes(rows)[0])
    grad = np.zeros((1, probs.size))
    grad[0, digit] = 1.0 / max(float(probs[digit]), 1e-300)
    saliency = net.input_gradient(x64, grad)[0]
    return {
        "digit": digit,
        "probability": num(probs[digit]),
        "probabilities": nums(probs, 6),
        "input": nums(x64, 4),
        "layers": layers,
        "saliency": nums(saliency, 4),
        "saliency_max": num(np.abs(saliency).max()),
        "saliency_method": SALIENCY_METHOD,
    }


# ----------------------------------------------------------------------------- the request


def parse_image(payload: Any) -> np.ndarray:
    """The request body of /api/predict -> the network's input (784,), via images.preprocess."""
    from .. import images
    from ..errors import InvalidFileError

    if not isinstance(payload, dict):
        raise ApiError(400, 'the body must be a JSON object: {"png": "data:image/png;base64,..."}')
    unknown = sorted(set(payload) - {"png", "image"})
    if unknown:
        raise ApiError(400, f"unknown field(s) {', '.join(map(repr, unknown))}: send png or image")
    if ("png" in payload) == ("image" in payload):
        raise ApiError(400, 'send exactly one of "png" (a data URL of the drawing) or "image" (784 numbers)')
    if "png" in payload:
        text = payload["png"]
        if not isinstance(text, str):
            raise ApiError(400, '"png" must be a string: a data:image/png;base64,... URL')
        match = _DATA_URL.match(text)
        if match is None and text.startswith("data:"):
            raise ApiError(400, '"png" must be a base64 data URL like data:image/png;base64,...')
        b64 = text[match.end():] if match else text
        try:
            raw = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, '"png" is not valid base64') from None
        if not raw:
            raise ApiError(400, '"png" is empty')
        _check_image_size(raw)
        try:
            return images.preprocess(raw)
        except InvalidFileError as e:
            raise ApiError(400, one_line(e)) from None
        except ValueError as e:  # e.g. "no ink found: the image looks blank"
            raise ApiError(400, f"{one_line(e)}: draw a digit first") from None
    values = payload["image"]
    if isinstance(values, list) and len(values) == IMAGE_SIDE and all(isinstance(r, list) for r in values):
        values = [v for row in values for v in row]
    if not isinstance(values, list) or len(values) != N_PIXELS:
        raise ApiError(400, '"image" must be a list of 784 numbers in [0, 1] (28 rows of 28, row-major)')
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise ApiError(400, '"image" must hold numbers only')
    try:
        x = np.asarray(values, dtype=np.float64)
    except OverflowError:  # an integer beyond any float
        x = np.full(1, np.inf)
    if not np.all(np.isfinite(x)) or x.min() < 0.0 or x.max() > 1.0:
        raise ApiError(400, '"image" values must lie in [0, 1]')
    try:
        return images.preprocess(x.astype(np.float32))
    except ValueError as e:
        raise ApiError(400, f"{one_line(e)}: draw a digit first") from None


def _check_image_size(raw: bytes) -> None:
    """Refuse a picture larger than MAX_IMAGE_PIXELS before decoding it (Pillow reads only the header)."""
    try:
        from PIL import Image
    except ImportError:
        raise ApiError(500, "reading the drawing needs Pillow: pip install 'numpynn[web]'") from None
    try:
        with Image.open(io.BytesIO(raw)) as img:
            width, height = img.size
    except Exception:
        raise ApiError(400, "the uploaded image is not a readable image (PNG, JPEG, ...)") from None
    if width * height > MAX_IMAGE_PIXELS:
        raise ApiError(400, f"the image is too large: {width}x{height} pixels (at most "
                            f"{MAX_IMAGE_PIXELS:,} pixels)")


# ----------------------------------------------------------------------------- the app


class TrainingJob(Protocol):
    """What the server asks of a "watch it learn" job (:class:`numpynn.web.trainer.Trainer` is one)."""

    @property
    def state(self) -> str: ...

    def start(self) -> dict[str, Any]: ...

    def status(self, pixels: bool = False) -> dict[str, Any]: ...

    def stop(self, timeout: float | None = 10.0) -> None: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class App:
    """The state behind the server: the network in use and the training job.

    ``net`` may be None: /api/predict then answers 503 until a training job
    has produced a network. ``trainer`` is the "watch it learn" job (a
    :class:`TrainingJob`: the :class:`~numpynn.web.trainer.Trainer` that
    :func:`~numpynn.web.make_server` attaches; None: the server does not train).
    """

    def __init__(self, net: Network | None, source: str = "", *, verbose: bool = False) -> None:
        self._lock = threading.Lock()
        self._net: Network | None = None
        self._layout: dict[str, Any] = {}
        self.generation = 0
        self.source = "none yet"
        self.verbose = verbose
        self.trainer: TrainingJob | None = None
        if net is not None:
            self.set_network(net, source or "a network given in Python")

    @property
    def net(self) -> Network | None:
        with self._lock:
            return self._net

    def set_network(self, net: Network, source: str) -> None:
        """Use ``net`` from now on (checked first: see :func:`check_network`)."""
        check_network(net)
        layout = {
            "description": describe(net),
            "sizes": net.sizes,
            "activations": [act.name for act in (getattr(layer, "activation", None) for layer in net.layers)
                            if act is not None],
            "layers": [{"type": layer.name, "shape": list(layer.output_shape),
                        "activation": getattr(getattr(layer, "activation", None), "name", None)}
                       for layer in net.layers],
            "n_params": net.n_params,
        }
        with self._lock:
            self._net = net
            self._layout = layout
            self.source = source
            self.generation += 1

    def model_info(self) -> dict[str, Any]:
        with self._lock:
            net, source, generation, layout = self._net, self.source, self.generation, self._layout
        return self._info(net, source, generation, layout)

    @staticmethod
    def _info(net: Network | None, source: str, generation: int, layout: dict[str, Any]) -> dict[str, Any]:
        if net is None:
            return {"loaded": False, "source": source, "generation": generation}
        acc = net.metadata.get("test_accuracy")
        return {
            "loaded": True,
            "source": source,
            "generation": generation,
            **layout,
            "dataset": net.metadata.get("dataset"),
            "test_accuracy": num(acc) if isinstance(acc, (int, float)) else None,
        }

    def predict(self, payload: Any) -> dict[str, Any]:
        x = parse_image(payload)
        with self._lock:  # the network and the facts about it, as one (a job may switch it any time)
            net, source, generation, layout = self._net, self.source, self.generation, self._layout
        if net is None:
            raise ApiError(503, 'no network yet: press "Watch it learn" to train one')
        out = analyse(net, x)
        out["model"] = self._info(net, source, generation, layout)
        return out

    def explain(self, payload: Any) -> dict[str, Any]:
        """/api/explain: backprop for one drawing and a target digit (see the module docstring)."""
        fields, label, lr = parse_explain(payload)
        x = parse_image(fields)
        with self._lock:
            net, source, generation, layout = self._net, self.source, self.generation, self._layout
        if net is None:
            raise ApiError(503, 'no network yet: press "Watch it learn" to train one')
        try:
            out = explain_drawing(net, x, label, lr)
        except ValueError as e:  # a label outside the classes
            raise ApiError(400, one_line(e)) from None
        out["model"] = self._info(net, source, generation, layout)
        return out
