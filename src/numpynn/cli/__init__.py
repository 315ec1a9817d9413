"""The ``numpynn`` command: a thin face over the library.

One module per command (``train.py``: its options in ``arguments(parser)``, its work in
``run(args)``), listed in :data:`~numpynn.cli.main.COMMANDS`; what they share (exit codes,
``UsageError``, messages, argparse number types, the options train and sweep share) is in
``common.py``. Every user mistake ends in one line on stderr and a non-zero exit code: 2 for
bad usage or input, 1 for a run that failed (e.g. divergence), 130 for Ctrl-C. Heavy modules
are imported inside the commands, and ``numpynn --help`` builds no command's options, so it
stays fast.
"""

from __future__ import annotations

from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    SHARED_OPTIONS,
    RunFailed,
    UsageError,
)
from .main import COMMANDS, build_parser, main
from .train import selection_note as _selection_note  # noqa: F401 - the name tests/test_recipes.py uses

__all__ = ["COMMANDS", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "SHARED_OPTIONS",
           "RunFailed", "UsageError", "build_parser", "main"]
