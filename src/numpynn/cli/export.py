"""``numpynn export``: a saved model as an ONNX file."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import EXIT_OK, UsageError

HELP = "write a saved model as an ONNX file, for ONNX Runtime (C++, C#, Java, JavaScript, phones)"


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model")
    p.add_argument("out", metavar="OUT.onnx", help="the ONNX file to write (float32, opset 17)")


def run(args: argparse.Namespace) -> int:
    from .. import load
    from ..export import onnx

    if Path(args.out).resolve() == Path(args.model).resolve():
        raise UsageError(f"{args.out} is the model file itself: write the ONNX file elsewhere")
    net = load(args.model)
    onnx.save(net, args.out)
    print(f"{args.model} exported to {args.out}: {onnx.describe(net)}")
    return EXIT_OK
