"""What the ±1 px random shifts cost: the default sample recipe's epoch with and without them.

`numpynn train` on the bundled sample trains 784-128-64-10 with the default recipe
(Adam, cosine, batch 64, a validation split of 0.1, ±1 px shifts). This script
trains two copies of that network side by side, one with the recipe's shifts and one
without, one epoch of each in turn (interleaved, the order alternating, so a busy
spell on a shared machine slows both), and reports the median epoch of each and the
difference. An epoch is what `fit` records as its seconds (the training pass: gather,
scale, shift, steps, the loss and accuracy) and, separately, the whole call
(validation included).

    python benchmarks/shifts.py [--rounds 40] [--shift 1] [--kernels auto|c|numpy]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence

import numpynn as nn
from numpynn import _kernels, augment, datasets, models, recipes


class Trainer:
    """One network trained by the default sample recipe, one epoch per call."""

    def __init__(self, data: datasets.Dataset, shift: int) -> None:
        self.data, self.shift = data, shift
        self.recipe = recipes.default_recipe(data.n_train)
        self.net = models.mlp()
        self.opt = self.recipe.make_optimizer()
        self.augment = augment.random_shift(shift, data.image_shape) if shift else None
        self.done = 0
        self.epochs: list[float] = []  # fit's own seconds: the training pass
        self.calls: list[float] = []  # the whole call, validation included

    def epoch(self) -> tuple[float, float]:
        r = self.recipe
        started = time.perf_counter()
        history = self.net.fit(self.data.x_train, self.data.y_train, epochs=self.done + 1,
                               initial_epoch=self.done, batch_size=r.batch_size, optimizer=self.opt,
                               validation_split=r.validation_split, schedule=r.schedule,
                               augment=self.augment, progress=False)
        call = time.perf_counter() - started
        self.done += 1
        return history["seconds"][-1], call


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=40, help="timed epochs of each (default 40)")
    p.add_argument("--shift", type=int, default=1, help="the largest shift in pixels (default 1)")
    p.add_argument("--kernels", choices=("auto", "c", "numpy"), default="auto",
                   help="the kernel backend (default auto: C where built)")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.shift < 1:
        p.error("--rounds and --shift must be at least 1")
    _kernels.use(args.kernels)
    data = datasets.load("mnist-sample")
    plain, shifted = Trainer(data, 0), Trainer(data, args.shift)
    for r in range(args.rounds + 1):  # round 0 warms up
        for trainer in ((plain, shifted) if r % 2 else (shifted, plain)):
            seconds, call = trainer.epoch()
            if r:
                trainer.epochs.append(seconds)
                trainer.calls.append(call)
    recipe = plain.recipe
    print(f"default sample recipe: {data.n_train:,} training images, validation split "
          f"{recipe.validation_split:g}, batch {recipe.batch_size}, Adam {recipe.lr:g} {recipe.schedule}; "
          f"numpynn {nn.__version__}, {_kernels.backend_name()} kernels; {args.rounds} timed epochs each, "
          "interleaved")
    rows = [("epoch (fit's seconds)", "epochs"), ("whole fit call", "calls")]
    print(f"{'median seconds':<24}{'no shifts':>11}{f'±{args.shift} px shifts':>16}{'shifts cost':>13}")
    for label, key in rows:
        a, b = statistics.median(getattr(plain, key)), statistics.median(getattr(shifted, key))
        print(f"{label:<24}{a:>11.4f}{b:>16.4f}{100 * (b - a) / a:>+12.1f}%")
    fastest = min(plain.epochs), min(shifted.epochs)
    print(f"{'fastest epoch':<24}{fastest[0]:>11.4f}{fastest[1]:>16.4f}"
          f"{100 * (fastest[1] - fastest[0]) / fastest[0]:>+12.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
