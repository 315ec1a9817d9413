"""The HTTP server behind ``numpynn serve``: static page plus a small JSON API.

Why the standard library's :class:`http.server.ThreadingHTTPServer`
--------------------------------------------------------------------
The page is for one person on their own machine: a handful of small requests
a second. ``http.server`` does that with no dependency at all (numpynn needs
only NumPy, plus Pillow to read the drawing), starts instantly, and a thread
per connection keeps the page responsive while a network trains in the
background. It is not a production web server (no TLS, no authentication, no
protection against floods), so by default it listens on 127.0.0.1 only, and
:func:`serve` warns when asked to listen anywhere else.

Hardening that costs nothing: request bodies are limited to
:data:`MAX_BODY_BYTES`; POSTs must be ``Content-Type: application/json`` (a
cross-site form cannot send that without a CORS preflight, which this server
never grants); a loopback server only answers requests whose ``Host`` is a
loopback name (no DNS rebinding); static files come only from the package's
``static`` folder; every error is a JSON ``{"error": "..."}`` with no traceback.

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
         "hidden": [[activations of hidden layer 1], [... layer 2], ...],
         "hidden_activations": ["sigmoid", "sigmoid"],
         "saliency": [784 signed numbers], "saliency_max": 0.31,
         "saliency_method": "...", "model": {...}}

    The saliency is the gradient of the log-probability of the predicted
    class with respect to the input pixels, ∂ log p_c / ∂x, computed with the
    network's own backward recursion: a forward pass keeping every z_l and
    a_l, then δ_L = ∂ log p_c / ∂z_L (for softmax, e_c − p), then
    δ_{l−1} = (δ_l W_lᵀ) ⊙ σ'(z_{l−1}) down to the input, where
    ∂ log p_c / ∂x = δ_1 W_1ᵀ. Positive: brightening that pixel makes the
    network surer of c (against the other classes); negative: less sure. The
    plain gradient (not input ⊙ gradient) is used because it also shows what
    the network would like to see where nothing has been drawn.

``POST /api/train`` with ``{}``
    Starts "watch it learn": a fresh network trains on the bundled MNIST
    sample in a background thread. 202 with the status (below, with the test
    digits' pixels); 409 ``{"error": ...}`` if a job is already running. When
    the job finishes, ``/api/predict`` uses the new network.

``GET /api/train/status`` (``?pixels=1`` to include the test digits' pixels)
    ``{"state": "idle" | "running" | "done" | "failed" | "stopped",
    "epoch": 3, "epochs": 10, "history": {"epoch": [...], "loss": [...],
    "accuracy": [...], "val_loss": [...], "val_accuracy": [...]},
    "digits": {"labels": [...], "pixels": [[784 ints 0..255], ...]},
    "predictions": [{"digit": 3, "probability": 0.9}, ...] (one per test digit,
    for the network as of ``predictions_epoch``), "model_generation": 2,
    "error": null}``. ``stopped`` means the job was stopped (by
    :meth:`Trainer.stop`, e.g. at shutdown) and its network was not adopted.

``GET /api/model``
    The network in use: sizes, activations, where it came from, its test
    accuracy, and ``generation`` (it goes up each time a new network is used).

Errors: 400 malformed JSON, unknown or missing fields, bad base64, not an
image, a blank drawing; 403 a foreign ``Host``; 404 unknown paths; 405 a known
path with the wrong method (with ``Allow``); 409 a second training job; 411
no ``Content-Length``; 413 a body over :data:`MAX_BODY_BYTES`; 415 a POST that
is not JSON; 503 ``/api/predict`` before any network exists.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import io
import ipaddress
import json
import math
import re
import socket
import socketserver
import sys
import threading
import time
import traceback
import webbrowser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

from ..network import Network

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_IMAGE_PIXELS",
    "WEB_RECIPE_EPOCHS",
    "App",
    "Trainer",
    "WebServer",
    "analyse",
    "default_model_path",
    "load_or_train_default",
    "make_server",
    "serve",
]

#: Largest request body accepted (a 280x280 drawing as a PNG data URL is ~20 KiB).
MAX_BODY_BYTES = 1024 * 1024
#: A body over the limit but under this is read and dropped before the 413 (larger: cut off).
_DRAIN_LIMIT = 16 * MAX_BODY_BYTES
#: Largest picture (width x height) /api/predict decodes; checked before decoding.
MAX_IMAGE_PIXELS = 4_000_000
#: Epochs of the default model and of "watch it learn" (about 96% on the sample).
WEB_RECIPE_EPOCHS = 10
#: The test digits shown while a network learns: the first of each class.
N_TEST_DIGITS = 10

STATIC_DIR = Path(__file__).resolve().parent / "static"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
}
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
SALIENCY_METHOD = (
    "gradient of log p(predicted digit) with respect to the input pixels, "
    "by the network's own backward pass (delta_L = e_c - p, then delta W^T down to the input)"
)
_DATA_URL = re.compile(r"^data:image/[A-Za-z0-9.+-]+;base64,", re.ASCII)


class ApiError(Exception):
    """An error answered as ``{"error": message}`` with an HTTP status."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = int(status)
        self.message = message
        self.headers = headers or {}


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _num(value: Any, digits: int = 6) -> float | None:
    """A JSON-safe float (non-finite values become null), ``digits`` significant."""
    if value is None:
        return None
    v = float(value)
    if not math.isfinite(v):
        return None
    return float(f"{v:.{digits}g}")


def _nums(values: Any, digits: int = 5) -> list[float | None]:
    return [_num(v, digits) for v in np.asarray(values, dtype=np.float64).ravel()]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.1, localhost, ::1 (and the rest of 127.0.0.0/8)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


# ----------------------------------------------------------------------------- the network


def check_network(net: Network) -> None:
    """The page draws 28x28 digits: the network must take 784 inputs and have classes."""
    if not isinstance(net, Network):
        raise TypeError(f"expected a numpynn Network, not {type(net).__name__}")
    if net.n_in != 784:
        raise ValueError(f"the network takes {net.n_in} inputs, not 28x28 = 784 pixel images")
    if net.n_out < 2:
        raise ValueError("the page needs a classifier with at least two outputs (one per class)")


def analyse(net: Network, x: np.ndarray) -> dict[str, Any]:
    """Everything the page shows about one input ``x`` (784,) in [0, 1].

    Works on a float64 copy of the network (request threads never share its
    buffers): a forward pass, then the saliency ∂ log p_c / ∂x for the
    predicted class c, by the network's own δ recursion carried one step further,
    to the input (:meth:`Network.input_gradient` with ∂ log p_c / ∂a_L = e_c / p_c).
    """
    net = net.copy("float64")
    x64 = np.asarray(x, dtype=np.float64).reshape(1, -1)
    probs = net.predict(x64)[0]
    digit = int(np.argmax(probs))
    grad = np.zeros((1, probs.size))
    grad[0, digit] = 1.0 / max(float(probs[digit]), 1e-300)
    saliency = net.input_gradient(x64, grad)[0]  # also leaves each layer's a from this x
    layers = [layer for layer in net.layers[:-1] if hasattr(layer, "activation")]
    hidden = [layer.a for layer in layers]
    return {
        "digit": digit,
        "probability": _num(probs[digit]),
        "probabilities": _nums(probs, 6),
        "input": _nums(x64[0], 4),
        "hidden": [_nums(h[0], 4) for h in hidden],
        "hidden_activations": [layer.activation.name for layer in layers],
        "saliency": _nums(saliency, 4),
        "saliency_max": _num(np.abs(saliency).max()),
        "saliency_method": SALIENCY_METHOD,
    }


def _parse_image(payload: Any) -> np.ndarray:
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
            raise ApiError(400, _one_line(e)) from None
        except ValueError as e:  # e.g. "no ink found: the image looks blank"
            raise ApiError(400, f"{_one_line(e)}: draw a digit first") from None
    values = payload["image"]
    if isinstance(values, list) and len(values) == 28 and all(isinstance(r, list) for r in values):
        values = [v for row in values for v in row]
    if not isinstance(values, list) or len(values) != 784:
        raise ApiError(400, '"image" must be a list of 784 numbers in [0, 1] (28 rows of 28, row-major)')
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise ApiError(400, '"image" must hold numbers only')
    x = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(x)) or x.min() < 0.0 or x.max() > 1.0:
        raise ApiError(400, '"image" values must lie in [0, 1]')
    try:
        return images.preprocess(x.astype(np.float32))
    except ValueError as e:
        raise ApiError(400, f"{_one_line(e)}: draw a digit first") from None


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


def _describe(net: Network) -> str:
    sizes = "-".join(map(str, net.sizes))
    acc = net.metadata.get("test_accuracy")
    return f"{sizes} network" + (f", test accuracy {100 * acc:.1f}%" if isinstance(acc, float) else "")


# ----------------------------------------------------------------------------- training


def _web_recipe() -> Any:
    from ..recipes import Recipe

    return Recipe(epochs=WEB_RECIPE_EPOCHS, lr=5e-3, schedule="cosine", shift=1,
                  notes=["numpynn serve: short recipe, about 96% on the bundled sample"])


class Trainer:
    """One "watch it learn" job at a time, in a background thread.

    ``start()`` trains a fresh network (``layers``, ``recipe``) on the data
    (default: the bundled MNIST sample), recording each epoch's history row
    and the current predictions for a few fixed test digits; when it ends the
    app switches to the new network. ``stop()`` asks the job to stop after the
    current epoch (used at shutdown and by tests); a stopped job's network is
    not adopted.
    """

    def __init__(
        self,
        app: App,
        data: Any = None,
        layers: tuple[int, ...] | None = None,
        recipe: Any = None,
        n_digits: int = N_TEST_DIGITS,
    ) -> None:
        from ..models import DEFAULT_LAYERS

        self.app = app
        self._data = data
        self.layers = tuple(layers) if layers is not None else DEFAULT_LAYERS
        self.recipe = recipe if recipe is not None else _web_recipe()
        self.n_digits = n_digits
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._runs = 0
        self._state = "idle"
        self._error: str | None = None
        self._history: dict[str, list[Any]] = {}
        self._predictions: list[dict[str, Any]] = []
        self._predictions_epoch = 0
        self._digits_x: np.ndarray | None = None
        self._digits_y: list[int] = []
        self._started = 0.0
        self._finished = 0.0

    @property
    def state(self) -> str:
        return self._state

    def data(self) -> Any:
        """The training data, loaded on first use."""
        if self._data is None:
            from .. import datasets

            self._data = datasets.load("mnist-sample", download=False, progress=False)
        return self._data

    def _pick_digits(self, data: Any) -> None:
        y = np.asarray(data.y_test)
        picks = []
        for label in range(int(y.max()) + 1):
            hits = np.flatnonzero(y == label)
            if hits.size:
                picks.append(int(hits[0]))
            if len(picks) == self.n_digits:
                break
        self._digits_x = np.asarray(data.x_test[picks])
        self._digits_y = [int(v) for v in y[picks]]

    def start(self) -> dict[str, Any]:
        """Start a job; raises ApiError(409) if one is running. Returns the status (with pixels)."""
        with self._lock:
            if self._state == "running":
                raise ApiError(409, "a training job is already running: wait for it to finish")
            self._state = "running"  # taken now, so a second request gets 409 at once
        try:
            data = self.data()
            if self._digits_x is None:
                self._pick_digits(data)
        except Exception as e:
            with self._lock:
                self._state, self._error = "failed", f"could not load the training data: {_one_line(e)}"
            raise ApiError(500, self._error) from None
        with self._lock:
            self._stop.clear()
            self._error = None
            self._history = {k: [] for k in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy",
                                             "seconds")}
            self._predictions, self._predictions_epoch = [], 0
            self._started, self._finished = time.time(), 0.0
            self._runs += 1
            self._thread = threading.Thread(target=self._run, args=(data, self._runs),
                                            name="numpynn-web-train", daemon=True)
            self._thread.start()
        return self.status(pixels=True)

    def stop(self, timeout: float | None = 10.0) -> None:
        """Ask the running job (if any) to stop after its current epoch, and wait for it."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the job to end; True if none is running any more."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self._state != "running"

    def _record_predictions(self, net: Network, epoch: int) -> None:
        assert self._digits_x is not None
        probs = net.predict(self._digits_x)
        preds = [{"digit": int(np.argmax(p)), "probability": _num(p.max(), 4)} for p in probs]
        with self._lock:
            self._predictions, self._predictions_epoch = preds, epoch

    def _run(self, data: Any, run: int) -> None:
        from ..models import mlp
        from ..recipes import train_classifier

        try:
            net = mlp(self.layers, seed=run - 1)
            check_network(net)
            self._record_predictions(net, 0)  # what an untrained network says

            def on_epoch(epoch: int, row: dict[str, Any]) -> bool:
                with self._lock:
                    for key in self._history:
                        value = row.get(key)
                        self._history[key].append(int(value) if key == "epoch" else _num(value))
                self._record_predictions(net, epoch)
                return self._stop.is_set()

            net, _ = train_classifier(data, net, self.recipe, progress=False, callback=on_epoch)
            if self._stop.is_set():
                state = "stopped"
            else:
                self.app.set_network(net, "trained in the page (watch it learn)")
                state = "done"
        except Exception as e:  # reported in the status, never raised into the server
            traceback.print_exc(file=sys.stderr)
            with self._lock:
                self._error = _one_line(e) or type(e).__name__
            state = "failed"
        with self._lock:
            self._state = state
            self._finished = time.time()

    def status(self, pixels: bool = False) -> dict[str, Any]:
        with self._lock:
            history = {k: list(v) for k, v in self._history.items()}
            out: dict[str, Any] = {
                "state": self._state,
                "epoch": len(history.get("epoch", [])),
                "epochs": int(self.recipe.epochs),
                "layers": list(self.layers),
                "history": history,
                "digits": {"labels": list(self._digits_y)},
                "predictions": list(self._predictions),
                "predictions_epoch": self._predictions_epoch,
                "seconds": _num((self._finished or time.time()) - self._started, 4) if self._started else 0.0,
                "error": self._error,
                "model_generation": self.app.generation,
            }
            if pixels and self._digits_x is not None:
                x = self._digits_x
                if x.dtype != np.uint8:
                    x = np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)
                out["digits"]["pixels"] = x.astype(int).tolist()
        return out


# ----------------------------------------------------------------------------- the app


class App:
    """The state behind the server: the network in use and the training job.

    ``net`` may be None: /api/predict then answers 503 until a training job
    has produced a network.
    """

    def __init__(
        self,
        net: Network | None,
        source: str = "",
        *,
        train_data: Any = None,
        train_layers: tuple[int, ...] | None = None,
        train_recipe: Any = None,
        verbose: bool = False,
    ) -> None:
        if net is not None:
            check_network(net)
        self._lock = threading.Lock()
        self._net = net
        self.source = source or ("a network given in Python" if net is not None else "none yet")
        self.generation = 1 if net is not None else 0
        self.verbose = verbose
        self.trainer = Trainer(self, train_data, train_layers, train_recipe)

    @property
    def net(self) -> Network | None:
        with self._lock:
            return self._net

    def set_network(self, net: Network, source: str) -> None:
        check_network(net)
        with self._lock:
            self._net = net
            self.source = source
            self.generation += 1

    def model_info(self) -> dict[str, Any]:
        with self._lock:
            net, source, generation = self._net, self.source, self.generation
        if net is None:
            return {"loaded": False, "source": source, "generation": generation}
        acc = net.metadata.get("test_accuracy")
        return {
            "loaded": True,
            "source": source,
            "generation": generation,
            "sizes": net.sizes,
            "activations": [layer.activation.name for layer in net.layers if hasattr(layer, "activation")],
            "n_params": net.n_params,
            "dataset": net.metadata.get("dataset"),
            "test_accuracy": _num(acc) if isinstance(acc, (int, float)) else None,
        }

    def predict(self, payload: Any) -> dict[str, Any]:
        x = _parse_image(payload)
        net = self.net
        if net is None:
            raise ApiError(503, 'no network yet: press "Watch it learn" to train one')
        out = analyse(net, x)
        out["model"] = self.model_info()
        return out


# ----------------------------------------------------------------------------- HTTP


def _static_file(path: str) -> Path | None:
    """The file in the static folder that a URL path names, or None.

    The path is URL-decoded, then resolved (following ``..`` and links), and
    must then be a file directly inside the static folder with a known type.
    """
    try:
        name = unquote(path, errors="strict")
    except UnicodeDecodeError:
        return None
    if "\x00" in name or "\\" in name:
        return None
    name = name.lstrip("/")
    if name.startswith("static/"):
        name = name[len("static/"):]
    if name in ("", "index.html"):
        name = "index.html"
    root = STATIC_DIR.resolve()
    try:
        candidate = (root / name).resolve()
    except (OSError, ValueError, RuntimeError):
        return None
    if candidate.parent != root or not candidate.is_file():
        return None
    if candidate.suffix.lower() not in CONTENT_TYPES:
        return None
    return candidate


class Handler(BaseHTTPRequestHandler):
    """Routes requests to the static files and the JSON API (see the module docstring)."""

    server: WebServer
    server_version = "numpynn-web"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds a connection may sit idle (or dribble a request)
    error_content_type = "application/json"

    API_ROUTES: dict[str, tuple[str, ...]] = {
        "/api/predict": ("POST",),
        "/api/train": ("POST",),
        "/api/train/status": ("GET", "HEAD"),
        "/api/model": ("GET", "HEAD"),
    }

    # -- plumbing ---------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        if self.server.app.verbose:
            super().log_message(format, *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors found by http.server itself (bad request line, unknown method, ...) as JSON too."""
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        self.close_connection = True
        self._send_json(code, {"error": _one_line(message or phrase)}, close=True)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None,
              close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if close:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and status >= 200 and status not in (204, 304):
            self.wfile.write(body)

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None,
                   close: bool = False) -> None:
        body = json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8", headers, close)

    def _read_json(self) -> Any:
        """The request body as JSON, within MAX_BODY_BYTES (read nothing if it is too big)."""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            self.close_connection = True
            raise ApiError(415, "send the body as JSON with Content-Type: application/json")
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise ApiError(411, "send a Content-Length (chunked bodies are not accepted)")
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            self.close_connection = True
            raise ApiError(411, "send a Content-Length")
        try:
            length = int(length_text.strip())
        except ValueError:
            length = -1
        if length < 0 or not length_text.strip().isdigit():
            self.close_connection = True
            raise ApiError(400, "bad Content-Length")
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            if length <= _DRAIN_LIMIT:  # read and drop it, so the client sees the answer, not a reset
                self._discard(length)
            raise ApiError(413, f"the request body is too large: {length:,} bytes, at most "
                                f"{MAX_BODY_BYTES:,}")
        body = self.rfile.read(length) if length else b""
        self._body_read = True
        if len(body) != length:
            self.close_connection = True
            raise ApiError(400, "the request body ended early")
        if not body.strip():
            return None

        def no_constants(name: str) -> Any:
            raise ValueError(f"{name} is not valid JSON")

        try:
            return json.loads(body.decode("utf-8"), parse_constant=no_constants)
        except UnicodeDecodeError:
            raise ApiError(400, "the body is not UTF-8 text") from None
        except (ValueError, RecursionError) as e:
            raise ApiError(400, f"malformed JSON: {_one_line(e)}") from None

    def _discard(self, length: int) -> None:
        left = length
        while left > 0:
            chunk = self.rfile.read(min(left, 65536))
            if not chunk:
                break
            left -= len(chunk)
        self._body_read = True

    def _check_host(self) -> None:
        """A loopback server answers only loopback Host names (defeats DNS rebinding)."""
        if not self.server.loopback:
            return
        host = self.headers.get("Host")
        if host is None:
            return
        name = host.strip()
        if name.startswith("["):
            name = name[1:].split("]")[0]
        elif name.count(":") == 1:
            name = name.split(":")[0]
        if not is_loopback(name):
            raise ApiError(403, "this server only answers requests addressed to a loopback name "
                                "(127.0.0.1, localhost, ::1)")

    # -- dispatch ---------------------------------------------------------------
    def _dispatch(self) -> None:
        self._body_read = False
        try:
            self._check_host()
            url = urlsplit(self.path)
            path = url.path or "/"
            if path in self.API_ROUTES:
                allowed = self.API_ROUTES[path]
                if self.command not in allowed:
                    raise ApiError(405, f"{path} accepts {' and '.join(allowed)}, not {self.command}",
                                   {"Allow": ", ".join(allowed)})
                self._api(path, url.query)
            elif path == "/api" or path.startswith("/api/"):
                raise ApiError(404, f"no such API endpoint: {path}")
            else:
                self._static(path)
        except ApiError as e:
            if not self._body_read and (self.headers.get("Transfer-Encoding")
                                        or (self.headers.get("Content-Length") or "0").strip() != "0"):
                self.close_connection = True  # the unread body must not be taken for the next request
            self._send_json(e.status, {"error": e.message}, e.headers, close=self.close_connection)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
        except Exception:  # never a traceback in a response
            traceback.print_exc(file=sys.stderr)
            with contextlib.suppress(OSError):
                self._send_json(500, {"error": "internal server error (details in the server's log)"},
                                close=True)

    def _api(self, path: str, query: str) -> None:
        app = self.server.app
        if path == "/api/predict":
            self._send_json(200, app.predict(self._read_json()))
        elif path == "/api/train":
            payload = self._read_json()
            if payload not in (None, {}):
                raise ApiError(400, "/api/train takes no options: send {}")
            self._send_json(202, app.trainer.start())
        elif path == "/api/train/status":
            flags = parse_qs(query)
            pixels = flags.get("pixels", ["0"])[-1].lower() in ("1", "true", "yes")
            self._send_json(200, app.trainer.status(pixels=pixels))
        elif path == "/api/model":
            self._send_json(200, app.model_info())

    def _static(self, path: str) -> None:
        file = _static_file(path)
        if file is None:
            raise ApiError(404, f"not found: {path[:200]}")
        if self.command not in ("GET", "HEAD"):
            raise ApiError(405, f"{path[:200]} accepts GET and HEAD, not {self.command}",
                           {"Allow": "GET, HEAD"})
        headers = {"Content-Security-Policy": PAGE_CSP} if file.suffix == ".html" else {}
        self._send(200, file.read_bytes(), CONTENT_TYPES[file.suffix.lower()], headers)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch


class WebServer(ThreadingHTTPServer):
    """A :class:`ThreadingHTTPServer` holding an :class:`App`.

    Use it in a background thread (``server.start()`` or
    ``Thread(target=server.serve_forever)``) and end it with
    :meth:`shutdown`, which also stops a training job, closes the listening
    socket and any kept-alive connections. Works as a context manager.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 8000) -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as e:
            raise OSError(f"cannot listen on {host!r}: {e.strerror}") from None
        self.address_family = infos[0][0]
        self.app = app
        self.loopback = is_loopback(host)
        self._serving = False
        self._closed = False
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        try:
            super().__init__((host, port), Handler)
        except OSError as e:
            why = e.strerror or _one_line(e)
            hint = " (is another server using it? try another port, or 0 for any free one)" \
                if e.errno == errno.EADDRINUSE else ""
            raise OSError(e.errno, f"cannot listen on {host} port {port}: {why}{hint}") from None

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (socket.getfqdn), which can
        # stall for seconds without DNS; the name is not needed here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        """The page's address, e.g. ``http://127.0.0.1:8000/`` (a wildcard host shows as 127.0.0.1)."""
        host = str(self.server_address[0])
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._serving = True
        super().serve_forever(poll_interval)

    def start(self) -> threading.Thread:
        """Serve in a daemon thread; returns it."""
        self._thread = threading.Thread(target=self.serve_forever, name="numpynn-web", daemon=True)
        self._thread.start()
        return self._thread

    def shutdown(self) -> None:
        """Stop serving, stop a training job, close the socket and open connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.app.trainer.stop(timeout=10.0)
        if self._serving:
            super().shutdown()
        self.server_close()
        with self._connections_lock:
            open_connections = list(self._connections)
        for conn in open_connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5.0)

    def __enter__(self) -> WebServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()


def make_server(
    net: Network | None,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    source: str = "",
    train_data: Any = None,
    train_layers: tuple[int, ...] | None = None,
    train_recipe: Any = None,
    verbose: bool = False,
) -> WebServer:
    """A ready-to-run server for ``net`` (None: no network until "watch it learn" trains one).

    ``port=0`` picks a free port (see ``server.port`` / ``server.url``). Run it
    with ``server.serve_forever()`` (blocking) or ``server.start()`` (a
    background thread) and end it with ``server.shutdown()``.

    ``train_data`` (a :class:`~numpynn.datasets.Dataset`; default the bundled
    MNIST sample), ``train_layers`` (default 784-128-64-10) and
    ``train_recipe`` (a :class:`~numpynn.recipes.Recipe`; default 10 epochs)
    set up "watch it learn"; ``verbose`` logs every request to stderr.
    """
    app = App(net, source, train_data=train_data, train_layers=train_layers,
              train_recipe=train_recipe, verbose=verbose)
    return WebServer(app, host, port)


# ----------------------------------------------------------------------------- serve


def default_model_path() -> Path:
    """Where ``numpynn serve`` keeps its model: ``$NUMPYNN_DATA/web-model.safetensors``
    if that is set, else ``platformdirs.user_cache_dir("numpynn")/web-model.safetensors``."""
    from ..datasets.mnist import cache_dir

    return cache_dir() / "web-model.safetensors"


def load_or_train_default(progress: bool = True, path: Path | None = None) -> tuple[Network, str]:
    """The cached web model, trained on the bundled sample first if missing (about 10 s, once)."""
    from .. import datasets
    from ..errors import InvalidFileError
    from ..models import mlp
    from ..recipes import train_classifier
    from ..serialization import load

    path = default_model_path() if path is None else Path(path)
    if path.is_file():
        try:
            net = load(path)
            check_network(net)
            return net, f"{path} ({_describe(net)})"
        except (InvalidFileError, OSError, ValueError) as e:
            _say(f"numpynn serve: warning: the cached model is unusable ({_one_line(e)}); training a new one")
    recipe = _web_recipe()
    data = datasets.load("mnist-sample", download=False, progress=False)
    net = mlp()
    _say(f"numpynn serve: no model given and none cached: training {'-'.join(map(str, net.sizes))} "
         f"on the bundled {data.n_train:,} MNIST digits ({recipe.epochs} epochs, once; about 10 s)")

    def on_epoch(epoch: int, row: dict[str, Any]) -> None:
        if progress:
            _say(f"  epoch {epoch:>2}/{recipe.epochs}  loss {row['loss']:.4f}  "
                 f"test accuracy {100 * row['val_accuracy']:.1f}%")

    net, _ = train_classifier(data, net, recipe, progress=progress, callback=on_epoch)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        net.save(str(path))
        _say(f"numpynn serve: model saved to {path}")
    except OSError as e:
        _say(f"numpynn serve: warning: could not save the model to {path} ({_one_line(e)}); "
             "set NUMPYNN_DATA to a writable folder")
    return net, f"{path} ({_describe(net)})"


def serve(
    model: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    open_browser: bool = False,
    progress: bool = True,
) -> None:
    """Serve the page for ``model`` (a saved network; None: the cached web model,
    trained first if missing) until Ctrl-C."""
    if model is None:
        net, source = load_or_train_default(progress=progress)
    else:
        from ..serialization import load

        net = load(model)
        check_network(net)
        source = f"{model} ({_describe(net)})"
    if not is_loopback(host):
        _say(f"numpynn serve: warning: listening on {host}: anyone who can reach this machine can use "
             "the page and its API (no authentication, no TLS); use --host 127.0.0.1 to keep it local")
    server = make_server(net, host, port, source=source)

    def opener() -> None:
        with contextlib.suppress(Exception):
            webbrowser.open(server.url)

    print(f"numpynn serve: model {source}", flush=True)
    print(f"numpynn serve: open {server.url} (Ctrl-C to stop)", flush=True)
    if open_browser:
        threading.Thread(target=opener, daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("numpynn serve: stopped", flush=True)
    finally:
        server.shutdown()
