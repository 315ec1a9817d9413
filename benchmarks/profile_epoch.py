"""Where an epoch of dense training goes: a target for a profiler.

Trains compare.py's network (784-128-64-10, sigmoid, softmax + cross-entropy, float32,
Adam 1e-3) on 60,000 uint8 rows (the bundled sample tiled), one warm-up epoch and then
``--epochs`` timed ones, each a call of ``fit`` as compare.py makes it, and prints each
epoch's seconds. Under a sampling profiler this shows the split between the matrix
products (BLAS), NumPy's ufuncs, the C kernels and Python itself:

    perf record -F 4000 -o perf.data python benchmarks/profile_epoch.py --epochs 8
    perf report -i perf.data --sort dso          # by library; --sort dso,sym for functions

``--cprofile`` prints Python's own profile of the timed epochs instead (top functions by
their own time; the ufuncs' time is counted in the function that calls them).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np

import numpynn as nn
from numpynn import _kernels, datasets


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--epochs", type=int, default=5, help="timed epochs (default 5)")
    p.add_argument("--kernels", choices=("auto", "c", "numpy"), default="auto")
    p.add_argument("--cprofile", action="store_true", help="print cProfile's top functions")
    args = p.parse_args(argv)
    _kernels.use(args.kernels)
    sample = datasets.load("mnist-sample")
    rows = np.arange(60_000) % sample.x_train.shape[0]
    x, y = np.ascontiguousarray(sample.x_train[rows]), sample.y_train[rows]
    net = nn.Network([nn.Dense(784, 128, "sigmoid"), nn.Dense(128, 64, "sigmoid"),
                      nn.Dense(64, 10, "softmax")], loss="cross_entropy", seed=0, dtype="float32")
    opt = nn.Adam(lr=1e-3)

    def epoch(e: int) -> float:
        started = time.perf_counter()
        net.fit(x, y, epochs=e + 1, initial_epoch=e, batch_size=args.batch, optimizer=opt, progress=False)
        return time.perf_counter() - started

    epoch(0)  # warm-up
    profile = None
    if args.cprofile:
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
    seconds = [epoch(e) for e in range(1, args.epochs + 1)]
    if profile is not None:
        import pstats

        profile.disable()
        pstats.Stats(profile, stream=sys.stdout).sort_stats("tottime").print_stats(20)
    print(f"batch {args.batch}, {_kernels.backend_name()} kernels: seconds per epoch "
          + " ".join(f"{s:.3f}" for s in seconds) + f" (median {np.median(seconds):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
