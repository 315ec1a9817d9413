"""``numpynn sweep``: train many recipes and architectures, score each on a validation split,
test the best once."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import (
    EXIT_FAILED,
    EXIT_OK,
    RunFailed,
    UsageError,
    check_targets,
    load_data,
    open_fraction,
    pct,
    positive_int,
    say,
    shared_options,
)

HELP = ("train many recipes and architectures, score each on a validation split, test the best once "
        "(joblib on this machine, or a Dask cluster)")


def arguments(p: argparse.ArgumentParser) -> None:
    shared_options(p)
    p.add_argument("--grid", nargs="+", required=True, metavar="NAME=V1,V2",
                   help="options and their values, e.g. lr=1e-3,3e-3 batch_size=32,64 "
                        "layers=784,128,64,10:784,256,10 (alternatives of layers separated by ':'); "
                        "any of lr, batch_size, epochs, optimizer, momentum, schedule, shift, patience, "
                        "model, layers, activation, dropout, loss; the rest as numpynn train's defaults")
    p.add_argument("--random", type=positive_int, metavar="N",
                   help="run N combinations of the grid drawn at random (with --seed), not all")
    p.add_argument("--seed", type=int, default=0,
                   help="initial weights, batch orders, the validation split and --random (default 0)")
    p.add_argument("--epochs", type=positive_int, metavar="N", help="epochs of every trial "
                   "(default: the recipe's, 30 for the mlp)")
    p.add_argument("--validation-split", type=open_fraction, default=0.1, metavar="F",
                   help="fraction of the training images that scores every trial (default 0.1)")
    p.add_argument("--jobs", type=positive_int, metavar="N",
                   help="trials at once, in joblib worker processes (default: the number of cores)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run the trials on this Dask scheduler's workers instead")
    p.add_argument("--out", metavar="DIR", default="sweep", help="results.jsonl, best.safetensors and "
                   "sweep.png (default sweep); a rerun skips the trials already there")
    p.add_argument("--save", metavar="FILE", help="write the best trial's model (safetensors)")


def run(args: argparse.Namespace) -> int:
    from .. import sweep as sweeps

    grid = sweeps.parse_grid(args.grid)  # a bad grid: one line, exit 2, before anything runs
    sweeps.check(grid, random=args.random, epochs=args.epochs, validation_split=args.validation_split)
    if args.scheduler and args.jobs:
        raise UsageError("--jobs is for joblib on this machine; with --scheduler the cluster's workers "
                         "run the trials")
    sweeps.require()
    # the cluster answers (within sweeps.CONNECT_TIMEOUT seconds) before --out is made or data loaded
    client = sweeps.connect(args.scheduler) if args.scheduler else None
    try:
        return _run_sweep(args, grid, client)
    finally:
        if client is not None:
            client.close()


def _run_sweep(args: argparse.Namespace, grid: dict[str, list[Any]], client: Any) -> int:
    from .. import sweep as sweeps

    data = load_data(args.data, download=not args.no_download,
                     progress=not (args.no_progress or args.json), quiet=args.json)
    settings = {"random": args.random, "seed": args.seed, "epochs": args.epochs,
                "validation_split": args.validation_split}
    trials, swept = sweeps.plan(data, grid, **settings)  # layers that do not fit the data: exit 2 too
    check_targets(args.save, folder=args.out)
    engine = (f"Dask scheduler {args.scheduler}" if args.scheduler
              else "joblib, in this process" if (args.jobs or sweeps.cores()) == 1
              else f"joblib, {args.jobs or sweeps.cores()} processes")
    say(f"data: {data.describe()}", args.json)
    what = ", ".join(swept) or "one setting"
    say(f"sweep: {len(trials)} trial{'s' if len(trials) != 1 else ''} ({what}), each scored on the "
        f"{sweeps.validation_note(data, args.validation_split, args.seed)}; {engine}", args.json)

    def report(row: dict[str, Any], done: int, total: int) -> None:
        score = f"val {pct(row['val_accuracy']).strip()}" if row["error"] is None else "diverged"
        say(f"trial {done}/{total}  {_options(row, swept)}  {score}  {row['seconds']:.1f} s", args.json)

    result = sweeps.sweep(data, grid, **settings, jobs=args.jobs, scheduler=client,
                          out=args.out, on_trial=report)
    from .. import plots

    if plots.available():
        plots.write_sweep_figure(result)  # out/sweep.png; sets result.figure
    if args.save and result.model is not None:
        result.model.save(args.save)
    if args.json:
        print(json.dumps({**result.as_dict(), "saved": args.save if result.model is not None else None}))
        return EXIT_OK if result.best is not None else EXIT_FAILED
    _print_results(args, data, swept, result)
    return EXIT_OK


def _print_results(args: argparse.Namespace, data: Any, swept: list[str], result: Any) -> None:
    """The table of trials, best first; where the results are; the best trial and its test score."""
    from .. import sweep as sweeps
    from .._tables import table

    rows = [[row["rank"], *(sweeps.format_value(row["options"].get(n)) for n in swept),
             pct(row["val_accuracy"]).strip() if row["error"] is None else "diverged",
             "-" if row["val_loss"] is None else f"{row['val_loss']:.4f}",
             row["epochs"] or "-", f"{row['seconds']:.{1 if row['seconds'] >= 10 else 2}f}"]
            for row in result.table]
    print(f"{len(rows)} trial{'s' if len(rows) != 1 else ''} on {data.name}, best first by validation "
          "accuracy:")
    print(table(["#", *swept, "val acc", "val loss", "epochs", "seconds"], rows,
                right=(0, *range(len(swept) + 1, len(swept) + 5))))
    reused = f": {result.reused} from an earlier run, {result.ran} run now" if result.reused else ""
    print(f"results: {Path(args.out) / sweeps.RESULTS} ({len(rows)} trial{'s' if len(rows) != 1 else ''}"
          f"{reused}); "
          f"sweep took {result.seconds:.1f} s")
    if result.figure:
        print(f"figure: {result.figure}")
    best = result.best
    if best is None:
        raise RunFailed("every trial diverged: try smaller learning rates")
    print(f"best: {_options(best, list(best['options']))}: validation accuracy "
          f"{pct(best['val_accuracy']).strip()}, loss {best['val_loss']:.4f}")
    test = result.test or {}
    print(f"test set (evaluated once, for the best trial only): accuracy {pct(test['accuracy']).strip()}, "
          f"loss {test['loss']:.4f} on {test['n']:,} images")
    if args.save:
        print(f"best model saved to {args.save}")


def _options(row: dict[str, Any], names: Sequence[str]) -> str:
    from .. import sweep as sweeps

    return ", ".join(f"{n} {sweeps.format_value(row['options'].get(n))}" for n in names) or "defaults"
