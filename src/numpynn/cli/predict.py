"""``numpynn predict``: read the digit in each image file."""

from __future__ import annotations

import argparse
import json

from .common import EXIT_OK, UsageError

HELP = "read the digit in each image file"


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from .. import images, load

    net = load(args.model)
    if net.n_in != 784:
        raise UsageError(f"{args.model} takes {net.n_in} inputs, not 28x28 = 784 pixel images")
    rows = []
    for path in args.images:
        x = images.preprocess(path)
        probs = net.predict(x[None, :])[0]
        digit = int(np.argmax(probs))
        rows.append({"path": path, "digit": digit, "probability": float(probs[digit]),
                     "probabilities": [round(float(p), 6) for p in probs]})
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            print(f"{row['path']}: {row['digit']} ({100 * row['probability']:.1f}%)")
    return EXIT_OK
