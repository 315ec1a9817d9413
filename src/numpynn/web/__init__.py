"""Draw a digit, watch it think: a local web page for a numpynn digit classifier.

``numpynn serve`` (or :func:`serve`) starts a small HTTP server on
``http://127.0.0.1:8000/``: draw a digit with the mouse, a pen or a finger and
the page shows, live, the ten class probabilities, the 28x28 image exactly as
the network sees it, every hidden layer's activations and a saliency map of
the pixels that push the prediction up or down. "Watch it learn" trains a
fresh network in the background and plots its learning curves epoch by epoch.

The page is plain HTML, CSS and JavaScript served from the package (no build
step, no CDN: it works offline); the server is the standard library's
``http.server`` (see :mod:`numpynn.web.server` for why, and for the JSON API).
"""

from __future__ import annotations

from .server import (
    MAX_BODY_BYTES,
    App,
    Trainer,
    WebServer,
    default_model_path,
    load_or_train_default,
    make_server,
    serve,
)

__all__ = [
    "MAX_BODY_BYTES",
    "App",
    "Trainer",
    "WebServer",
    "default_model_path",
    "load_or_train_default",
    "make_server",
    "serve",
]
