"""``numpynn plot``: figures of a saved model (confusion matrix, mistakes, first-layer weights)."""

from __future__ import annotations

import argparse

from .common import EXIT_OK, check_targets, model_and_data

HELP = "draw figures for a saved model: confusion matrix, mistakes, weights"


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model")
    p.add_argument("--data", default=None, help="as for train (default: the model's data set)")
    p.add_argument("--out", metavar="DIR", default="figures", help="folder for the PNGs (default figures)")


def run(args: argparse.Namespace) -> int:
    from .. import plots

    check_targets(folder=args.out)
    net, data = model_and_data(args, quiet=False)
    written = plots.write_model_plots(args.out, net, data)
    print(f"figures for {args.model} on {data.name} written to {args.out}: {', '.join(written)}")
    return EXIT_OK
