"""Draw a digit, watch it think: a local web page for a numpynn digit classifier.

``numpynn serve`` (or :func:`serve`) starts a small HTTP server on
``http://127.0.0.1:8000/``: draw a digit with the mouse, a pen or a finger and
the page shows, live, the class probabilities, the 28x28 image exactly as the
network sees it, the activations of every hidden layer the model has and a
saliency map of the pixels that push the prediction up or down. "Watch it
learn" trains a fresh network in the background and plots its learning curves
(training and validation) epoch by epoch.

The page is plain HTML, CSS and JavaScript served from the package (no build
step, no CDN: it works offline). Three modules, each importing only the ones
listed after it:

- :mod:`numpynn.web.http`: the standard library's ``http.server`` (and why),
  routes, limits, Host checks, static files, :func:`make_server`, :func:`serve`;
- :mod:`numpynn.web.trainer`: "watch it learn" in a background thread, and the
  cached default model;
- :mod:`numpynn.web.api`: the JSON API (documented there): what a network makes
  of one drawing, its hidden layers of any kind, the saliency, the model in use.
"""

from __future__ import annotations

from .api import App, analyse, check_network, hidden_layers
from .http import MAX_BODY_BYTES, WebServer, make_server, serve
from .trainer import Trainer, default_model_path, load_or_train_default

__all__ = [
    "MAX_BODY_BYTES",
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
