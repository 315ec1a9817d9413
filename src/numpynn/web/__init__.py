"""Draw a digit, watch it think: a local web page for a numpynn digit classifier.

``numpynn serve`` (or :func:`serve`) starts a small HTTP server on
``http://127.0.0.1:8000/``: draw a digit with the mouse, a pen or a finger and
the page shows, live, the class probabilities, the 28x28 image exactly as the
network sees it, the activations of every hidden layer the model has and a
saliency map of the pixels that push the prediction up or down. "Watch it
learn" trains a fresh network in the background and plots its learning curves
(training and validation) epoch by epoch.

The page is plain HTML, CSS and JavaScript served from the package (no build
step, no CDN: it works offline). The modules, each importing only the ones
listed after it:

- :mod:`numpynn.web.launch`: :func:`make_server` (a network, its training job
  and the server, put together) and :func:`serve`;
- :mod:`numpynn.web.http`: the standard library's ``http.server`` (and why),
  routes, limits, Host and Origin checks, static files, the server's life cycle;
- :mod:`numpynn.web.trainer`: "watch it learn" in a background thread, and the
  cached default model;
- :mod:`numpynn.web.api`: the JSON API (documented there): what a network makes
  of one drawing, its hidden layers of any kind, the saliency, the model in use;
- :mod:`numpynn.web.backprop`: /api/explain's answer, backprop for one drawing
  (:func:`numpynn.explain.explain`) with small pictures of each layer for the page;
- ``numpynn.web._json`` (JSON-safe numbers, :class:`ApiError`) and
  ``numpynn.web._log`` (one line per event in the server's log).
"""

from __future__ import annotations

from ._json import ApiError
from .api import App, analyse, check_network, hidden_layers
from .http import MAX_BODY_BYTES, WebServer
from .launch import make_server, serve
from .trainer import Trainer, default_model_path, load_or_train_default

__all__ = [
    "MAX_BODY_BYTES",
    "ApiError",
    "App",
    "Trainer",
    "WebServer",
    "analyse",
    "check_network",
    "default_model_path",
    "hidden_layers",
    "load_or_train_default",
    "make_server",
    "serve",
]
