"""What the commands share: exit codes, errors, messages, argparse number types and options.

Every user mistake ends in one line on stderr and a non-zero exit code: 2 for bad usage
or input, 1 for a run that failed (e.g. divergence), 130 for Ctrl-C. Nothing here imports
more than the standard library at import time, so ``numpynn --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """Bad options or input: exit code 2."""


class RunFailed(Exception):
    """A run that could not go on (e.g. its checkpoint could not be written): exit code 1."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (and exit code 2), not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --- argparse types -----------------------------------------------------------------------
def number(parse: Callable[[str], Any], ok: Callable[[Any], bool], rule: str, kind: str) -> Any:
    """An argparse type: ``parse`` the text, then check it with ``ok``."""

    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{rule}, got {text}")
        return value

    return convert


positive_int = number(int, lambda v: v >= 1, "must be at least 1", "a whole number")
count = number(int, lambda v: v >= 0, "must be 0 or more", "a whole number")
port = number(int, lambda v: 0 <= v <= 65535, "a port is 0..65535", "a port number")
positive_float = number(float, lambda v: 0 < v < float("inf"), "must be a positive number", "a number")
non_negative_float = number(float, lambda v: 0 <= v < float("inf"), "must be 0 or a positive number",
                            "a number")
fraction = number(float, lambda v: 0 <= v < 1, "must be in [0, 1)", "a number")
open_fraction = number(float, lambda v: 0 < v < 1, "must be in (0, 1)", "a number")


def layer_sizes(text: str) -> list[int]:
    """An argparse type: comma-separated layer sizes, at least two, all positive."""
    try:
        sizes = [int(s) for s in text.replace(" ", "").split(",") if s]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated sizes like 784,128,64,10, got {text!r}"
        ) from None
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(
            f"need at least two positive sizes like 784,128,64,10, got {text!r}"
        )
    return sizes


def choices(registry: Any, *drop: str) -> list[str]:
    """The names a registry holds, for argparse choices and help text."""
    return [name for name in registry.names() if name not in drop]


# --- options train and sweep share --------------------------------------------------------
#: The options of numpynn train that numpynn sweep takes too (tests/test_sweep.py checks both).
SHARED_OPTIONS = ("--data", "--no-download", "--no-progress", "--json", "--seed", "--epochs",
                  "--validation-split", "--save")


def shared_options(p: argparse.ArgumentParser) -> None:
    """The data and output options numpynn train and numpynn sweep share, with one meaning in both
    (each adds its own --seed, --epochs, --validation-split and --save)."""
    from ..datasets import dataset_names

    p.add_argument("--data", metavar="NAME|DIR",
                   help=f"{', '.join(dataset_names())}, or a folder of IDX files "
                        "(default: full MNIST if cached or downloadable, else mnist-sample)")
    p.add_argument("--no-download", action="store_true", help="never download MNIST")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")


# --- messages and shared steps ------------------------------------------------------------
def say(text: str, quiet: bool = False) -> None:
    """A progress or status line, on stderr (stdout is for results and --json)."""
    if not quiet:
        print(text, file=sys.stderr, flush=True)


def pct(x: float | None) -> str:
    return "   -  " if x is None else f"{100 * x:6.2f}%"


def check_targets(*paths: str | None, folder: str | None = None) -> None:
    """Before any work: each file given can be written, and the folder given exists
    or can be made, and takes files (else exit 2, naming the path and the problem)."""
    from .._io import check_writable
    from ..errors import WriteError

    try:
        for path in paths:
            if path:
                check_writable(path)
        if folder:
            check_writable(folder, folder=True)
    except WriteError as e:
        raise UsageError(str(e)) from None


def load_data(name: str | None, *, download: bool, progress: bool, quiet: bool) -> Any:
    """The data set ``name`` (a registered name or a folder); by default full MNIST when it is
    cached or can be downloaded, else the bundled sample, saying so."""
    from .. import datasets

    if name is not None:
        return datasets.load(name, download=download, progress=progress)
    if datasets.is_cached("mnist") or download:
        try:  # downloads if need be, and works without the cache if it cannot be written
            return datasets.load("mnist", download=download, progress=progress)
        except OSError:
            pass
    say("full MNIST is not cached here and could not be downloaded: training on the bundled "
        "mnist-sample (8,000 train + 2,000 test real digits) instead; to use the full set, put "
        f"the four MNIST files in {datasets.mnist_dir()} or pass --data", quiet)
    return datasets.load("mnist-sample")


def model_and_data(args: argparse.Namespace, quiet: bool) -> tuple[Any, Any]:
    """The saved model and the data set to judge it on (by default the one it was trained on)."""
    from .. import load
    from ..datasets import dataset_names

    net = load(args.model)
    # the CLI records where its data came from ("data"); a network trained from Python records
    # the data set's name ("dataset"); a model with neither is judged on the bundled sample
    name = args.data or net.metadata.get("data") or net.metadata.get("dataset") or "mnist-sample"
    if args.data is None and name not in dataset_names() and not Path(name).is_dir():
        raise UsageError(f"{args.model} was trained on {name}, which is not there now: "
                         "say which data to use with --data")
    data = load_data(name, download=False, progress=False, quiet=quiet)
    if net.n_in != data.n_features:
        raise UsageError(f"{args.model} takes {net.n_in} inputs but {data.name} images have "
                         f"{data.n_features} pixels")
    return net, data
