"""``numpynn serve`` put together: a network, its "watch it learn" job and the HTTP server.

:func:`make_server` joins an :class:`~numpynn.web.api.App`, a
:class:`~numpynn.web.trainer.Trainer` and a :class:`~numpynn.web.http.WebServer`;
:func:`serve` finds the network (a saved one, or the cached default model,
trained first if missing) and serves the page until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import threading
import webbrowser
from pathlib import Path
from typing import Any

from ..network import Network
from ._log import say
from .api import App, check_network, describe
from .http import REQUEST_TIMEOUT, WebServer, is_loopback
from .trainer import Trainer, load_or_train_default

__all__ = ["make_server", "serve"]


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
    request_timeout: float = REQUEST_TIMEOUT,
) -> WebServer:
    """A ready-to-run server for ``net`` (None: no network until "watch it learn" trains one).

    ``port=0`` picks a free port (see ``server.port`` / ``server.url``). Run it
    with ``server.serve_forever()`` (blocking) or ``server.start()`` (a
    background thread) and end it with ``server.shutdown()``.

    ``train_data`` (a :class:`~numpynn.datasets.Dataset`; default the bundled
    MNIST sample), ``train_layers`` (default 784-128-64-10) and
    ``train_recipe`` (a :class:`~numpynn.recipes.Recipe`; default
    :func:`~numpynn.web.trainer.web_recipe`: 10 epochs, each scored on a
    validation split of a tenth of the training images) set up "watch it
    learn"; ``verbose`` logs every request to stderr; ``request_timeout`` is how long a
    connection may sit idle or stall in the middle of a request before it is closed.
    """
    app = App(net, source, verbose=verbose)
    app.trainer = Trainer(app, train_data, train_layers, train_recipe)
    return WebServer(app, host, port, request_timeout)


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
        source = f"{model} ({describe(net, accuracy=True)})"
    if not is_loopback(host):
        say(f"numpynn serve: warning: listening on {host}: anyone who can reach this machine can use "
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
