"""``numpynn xor``: the classic 2-2-1 sigmoid network learning XOR."""

from __future__ import annotations

import argparse
import json

from .common import EXIT_FAILED, EXIT_OK, check_targets, positive_float, positive_int

HELP = "train the classic 2-2-1 sigmoid network on XOR"


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=positive_int, default=5000, help="most epochs per attempt")
    p.add_argument("--lr", type=positive_float, default=20.0)
    p.add_argument("--plot", metavar="FILE", help="draw the decision surface to a PNG")
    p.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    from ..xor import train_xor

    check_targets(args.plot)
    result = train_xor(seed=args.seed, epochs=args.epochs, lr=args.lr)
    if args.plot:
        from .. import plots

        plots.save_figure(plots.xor_surface(result.network), args.plot)
    if args.json:
        print(json.dumps(result.as_dict()))
        return EXIT_OK if result.converged else EXIT_FAILED
    print(f"XOR, 2-2-1 sigmoid network, squared error, seed {args.seed}")
    print("  x1  x2  target  output")
    for x1, x2, target, output in result.outputs:
        print(f"  {x1:2.0f}  {x2:2.0f}  {target:6.0f}  {output:6.3f}")
    state = "converged" if result.converged else "did NOT converge"
    restarts = (f" after {result.restarts} restart{'s' if result.restarts != 1 else ''} from a local "
                f"minimum ({result.total_epochs} epochs in all)") if result.restarts else ""
    print(f"{state} in {result.epochs} epochs{restarts}, loss {result.loss:.5f}, "
          f"{result.seconds:.3f} s")
    if args.plot:
        print(f"decision surface written to {args.plot}")
    return EXIT_OK if result.converged else EXIT_FAILED
