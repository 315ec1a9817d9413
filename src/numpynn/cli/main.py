"""The top of the ``numpynn`` command: the parser, built from :data:`COMMANDS`, and :func:`main`."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable, Sequence
from types import ModuleType

from .common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Parser, RunFailed, UsageError, say

#: The commands, in the order ``numpynn --help`` lists them. Each is the module of that name in
#: this package, with ``HELP`` (its line in the list), ``arguments(parser)`` and ``run(args)``
#: (an exit code). A new command is one new module and its name here.
COMMANDS = (
    "train",
    "sweep",
    "evaluate",
    "predict",
    "explain",
    "info",
    "plot",
    "export",
    "serve",
    "xor",
)


def command(name: str) -> ModuleType:
    """The module of command ``name``."""
    return importlib.import_module(f".{name}", __package__)


def build_parser(commands: Iterable[str] | None = None) -> Parser:
    """The ``numpynn`` parser. The commands named in ``commands`` (default: all) get their options;
    the others are only listed, which is all ``numpynn --help`` needs, so it imports no registry."""
    full = set(COMMANDS if commands is None else commands)
    parser = Parser(
        prog="numpynn",
        description="Neural networks from scratch in NumPy: train, evaluate and use an MNIST digit "
        "classifier, or watch a 2-2-1 network learn XOR.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = command(name)
        p = sub.add_parser(name, help=module.HELP)
        if name in full:
            module.arguments(p)
    return parser


def _named(argv: Sequence[str]) -> str | None:
    """The command argv names: its first word that is not an option (the top level takes none
    with a value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``numpynn`` with ``argv`` (default: the process's arguments); returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser([name for name in [_named(argv)] if name in COMMANDS])
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, or a usage error already printed as one line
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    if args.version:
        from .. import __version__

        print(f"numpynn {__version__}")
        return EXIT_OK
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    run = command(args.command).run
    if os.environ.get("NUMPYNN_DEBUG"):  # show full tracebacks when debugging numpynn itself
        return run(args)
    return _run(run, args)


def _run(run: object, args: object) -> int:
    """``run(args)``, with every failure turned into one line on stderr and its exit code."""
    from ..errors import DivergenceError, WriteError

    name = args.command  # type: ignore[attr-defined]
    try:
        return run(args)  # type: ignore[operator, no-any-return]
    except (DivergenceError, RunFailed) as e:
        say(f"numpynn {name}: error: {e}")
        return EXIT_FAILED
    except WriteError as e:  # a target that cannot be written at all: 2; a full disk on the way: 1
        say(f"numpynn {name}: error: {e}")
        return EXIT_USAGE if e.bad_target else EXIT_FAILED
    except KeyboardInterrupt:
        say(f"numpynn {name}: interrupted")
        return EXIT_INTERRUPTED
    except ImportError as e:
        say(f"numpynn {name}: error: {e}")
        return EXIT_USAGE
    except BrokenPipeError:  # pragma: no cover - e.g. piped into head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (UsageError, ValueError, TypeError, OSError) as e:
        message = str(e) or type(e).__name__
        if isinstance(e, FileNotFoundError) and e.filename and str(e.filename) not in message:
            message = f"{e.filename}: {message}"
        say(f"numpynn {name}: error: {message}")
        return EXIT_USAGE
