"""The sweeps that chose the dense network's default recipes (docs/recipes.md).

Each set is swept over several seeds (a seed draws the initial weights, the
batch orders and the validation split); every trial is scored on the
validation split of the training images, never on the test set. The report
averages each setting's validation accuracy over the seeds, then checks the
chosen default against rates three times lower and higher.

    python benchmarks/recipe_sweeps.py small            # the bundled sample, 8,000 training digits
    python benchmarks/recipe_sweeps.py large            # the 60,000-image stand-in (recipe_60k.py)
    python benchmarks/recipe_sweeps.py check --lr 9e-3 --epochs 15   # rates 3x lower and higher

Results go to /tmp/recipe-sweeps/{set}-seed{S}/results.jsonl; a rerun skips the
trials already there.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpynn as nn
from numpynn import datasets, recipes

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# rates a factor of about √3 apart: each rate's 3x lower and higher neighbours are two steps away
RATES = [1e-3, 1.7e-3, 3e-3, 5e-3, 9e-3, 1.5e-2]
SETS = {
    "small": {"data": "mnist-sample", "seeds": [0, 1, 2],
              "grid": {"lr": RATES, "epochs": [15, 30, 50], "shift": [0, 1], "batch_size": [64, 128]}},
    "large": {"data": "/tmp/mnist-60k-standin", "seeds": [0, 1],
              "grid": {"lr": RATES, "epochs": [15, 30], "shift": [0, 1], "batch_size": [64, 128]}},
}


def load(name: str) -> datasets.Dataset:
    folder = Path(name)
    if name.startswith("/") and not (folder / "train-images-idx3-ubyte.gz").exists():
        from recipe_60k import make_standin

        make_standin(folder)
    return datasets.load(name)


def check(args: argparse.Namespace) -> None:
    """A recipe against the same with a rate 3x lower and 3x higher, on each set, over seeds."""
    recipe = {"epochs": [args.epochs], "shift": [args.shift], "batch_size": [args.batch_size]}
    rates = [float(f"{r:.6g}") for r in (args.lr / 3, args.lr, args.lr * 3)]
    print(f"rate {args.lr:g} against {rates[0]:g} and {rates[2]:g}: {args.epochs} epochs, "
          f"shift {args.shift}, batch {args.batch_size}, Adam, cosine")
    for name in args.sets:
        data = load(SETS[name]["data"])
        seeds = args.seeds if args.seeds is not None else SETS[name]["seeds"]
        scores: dict[float, list[float]] = {r: [] for r in rates}
        for seed in seeds:
            result = nn.sweep.sweep(data, {"lr": rates, **recipe}, seed=seed, jobs=args.jobs,
                                    out=f"{args.out}/{name}-seed{seed}")
            for row in result.table:
                scores[row["options"]["lr"]].append(row["val_accuracy"] or 0.0)
        mean = {r: 100 * statistics.mean(v) for r, v in scores.items()}
        per_seed = {r: " / ".join(f"{100 * x:.2f}" for x in v) for r, v in scores.items()}
        print(f"{data.name}, seeds {seeds}:")
        for r in rates:
            gain = mean[r] - mean[args.lr]
            verdict = "" if r == args.lr else f"  {gain:+.2f} points ({'ok' if gain <= 0.2 else 'BEATS IT'})"
            print(f"  rate {r:<9g} validation {mean[r]:.2f}%  ({per_seed[r]}){verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("set", choices=[*SETS, "check"])
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--out", default="/tmp/recipe-sweeps")
    parser.add_argument("--lr", type=float, help="check: the rate")
    parser.add_argument("--epochs", type=int, help="check: the epochs")
    parser.add_argument("--shift", type=int, default=1, help="check: the shifts")
    parser.add_argument("--batch-size", type=int, default=64, help="check: the batch size")
    parser.add_argument("--sets", nargs="+", default=list(SETS), help="check: on these sets")
    parser.add_argument("--seeds", type=int, nargs="+", help="check: these seeds (default: each set's)")
    args = parser.parse_args()
    if args.set == "check":
        check(args)
        return
    spec = SETS[args.set]
    data = load(spec["data"])
    print(data.describe())
    scores: dict[tuple, list[float]] = {}
    seconds: dict[tuple, list[float]] = {}
    for seed in spec["seeds"]:
        started = time.perf_counter()
        result = nn.sweep.sweep(data, spec["grid"], seed=seed, jobs=args.jobs,
                                out=f"{args.out}/{args.set}-seed{seed}")
        if seed == spec["seeds"][0]:
            nn.plots.write_sweep_figure(result)
        best = result.best
        print(f"seed {seed}: {len(result.table)} trials ({result.ran} run now) in "
              f"{time.perf_counter() - started:.0f} s; best {best['options']} "
              f"val {100 * best['val_accuracy']:.2f}%; test (best trial, once) "
              f"{100 * result.test['accuracy']:.2f}%", flush=True)
        for row in result.table:
            key = tuple(row["options"][n] for n in spec["grid"])
            scores.setdefault(key, []).append(row["val_accuracy"] or 0.0)
            seconds.setdefault(key, []).append(row["seconds"])
    names = list(spec["grid"])
    ranked = sorted(scores, key=lambda k: -statistics.mean(scores[k]))
    print(f"\nmean validation accuracy over seeds {spec['seeds']} (best 15, then the current defaults):\n")
    print("| " + " | ".join(names) + " | val acc (mean) | per seed | seconds |")
    print("|" + " ---: |" * (len(names) + 3))
    defaults = {"small-set": recipes.default_recipe(8_000), "large-set": recipes.default_recipe(60_000)}
    keys = {which: tuple(getattr(r, n) for n in names) for which, r in defaults.items()}
    shown = ranked[:15] + [k for k in ranked[15:] if k in keys.values()]
    for key in shown:
        per_seed = " / ".join(f"{100 * v:.2f}" for v in scores[key])
        label = " ".join(f"({w} default)" for w, k in keys.items() if k == key)
        print("| " + " | ".join(f"{v:g}" for v in key) + f" | {100 * statistics.mean(scores[key]):.2f}% "
              f"{label} | {per_seed} | {statistics.mean(seconds[key]):.1f} |")
    for which, default in defaults.items():
        current = keys[which]
        if current not in scores:
            continue
        print(f"\nthe {which} default (rate {default.lr:g}, {default.epochs} epochs, shift {default.shift}, "
              f"batch {default.batch_size}): {100 * statistics.mean(scores[current]):.2f}% on {data.name}")
        for other in (default.lr / 3, default.lr * 3):
            near = min(RATES, key=lambda r: abs(r / other - 1))
            key = tuple(near if n == "lr" else getattr(default, n) for n in names)
            if abs(near / other - 1) > 0.15 or key not in scores:
                print(f"  rate {other:g}: not in the grid")
                continue
            gain = 100 * (statistics.mean(scores[key]) - statistics.mean(scores[current]))
            print(f"  rate {near:g} instead: {100 * statistics.mean(scores[key]):.2f}%, {gain:+.2f} points "
                  f"({'ok' if gain <= 0.2 else 'BEATS THE DEFAULT by more than 0.2'})")


if __name__ == "__main__":
    main()
