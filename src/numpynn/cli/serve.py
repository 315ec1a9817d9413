"""``numpynn serve``: a web page to draw a digit on and watch the network think."""

from __future__ import annotations

import argparse

from .common import EXIT_OK, port

HELP = "a web page: draw a digit and watch the network think"


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", default=None,
                   help="a saved model (default: one trained once on the bundled sample, then cached)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=port, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--open", action="store_true", help="open the page in the default web browser")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar while training the default model")


def run(args: argparse.Namespace) -> int:
    from ..web import serve

    serve(args.model, host=args.host, port=args.port, open_browser=args.open,
          progress=not args.no_progress)
    return EXIT_OK
