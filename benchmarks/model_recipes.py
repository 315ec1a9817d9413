"""Choose a model's recipe on validation splits of the training images, over seeds.

Every (rate, seed) pair trains the model with its default recipe at that rate on the
bundled sample's training digits, scores each epoch on the seeded 10% validation split,
keeps the epoch of lowest validation loss, and reports that epoch's validation accuracy.
The recipe is chosen by the mean validation accuracy over the seeds; the test digits are
scored once per trial for the report only, never to choose. Trials run in parallel
processes, one BLAS thread each.

    python benchmarks/model_recipes.py --model resnet --rates 1e-3,3e-3,9e-3 --seeds 0,1,2 \\
        --out docs/results/resnet_recipes.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def trial(model: str, lr: float, seed: int, epochs: int | None, threads: int) -> dict:
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    from threadpoolctl import threadpool_limits

    import numpynn as nn
    from numpynn import _parallel, recipes

    _parallel.set_threads(threads)  # numpynn's own threads per trial: trials × threads ≤ cores
    with threadpool_limits(threads):
        data = nn.datasets.load("mnist-sample")
        recipe = recipes.default_recipe(data.n_train, model).with_options(lr=lr, epochs=epochs)
        net = nn.models.build(model, data.n_features, data.n_classes, seed=seed)
        started = time.perf_counter()
        net, history = recipes.train_classifier(data, net, recipe, progress=False)
        seconds = time.perf_counter() - started
    kept = net.metadata["selection"]["best_epoch"]
    return {"model": model, "lr": lr, "seed": seed, "epochs": recipe.epochs, "kept_epoch": kept,
            "val_accuracy": history["val_accuracy"][kept - 1], "val_loss": history["val_loss"][kept - 1],
            "test_accuracy": net.metadata["test_accuracy"], "seconds": round(seconds, 1)}


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent).stdout.strip() or os.environ.get("COMMIT", "")
    except OSError:  # no git here: the caller may say which commit this is
        return os.environ.get("COMMIT", "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet")
    parser.add_argument("--rates", default="1e-3,3e-3,9e-3")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads per trial")
    parser.add_argument("--out", default=None, help="write the table as JSON here")
    args = parser.parse_args()
    from joblib import Parallel, delayed

    commit = _commit()  # the code the trials run: read before they start
    rates = [float(r) for r in args.rates.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    started = time.perf_counter()
    rows = Parallel(n_jobs=args.jobs)(delayed(trial)(args.model, lr, seed, args.epochs, args.threads)
                                      for lr in rates for seed in seeds)
    summary = []
    for lr in rates:
        mine = [r for r in rows if r["lr"] == lr]
        summary.append({"lr": lr, "val_accuracy_mean": statistics.mean(r["val_accuracy"] for r in mine),
                        "val_accuracy_sd": statistics.pstdev(r["val_accuracy"] for r in mine),
                        "test_accuracy": [r["test_accuracy"] for r in mine]})
    chosen = max(summary, key=lambda s: s["val_accuracy_mean"])
    for s in summary:
        mark = "  <- chosen on validation" if s is chosen else ""
        print(f"lr {s['lr']:g}: validation {100 * s['val_accuracy_mean']:.2f}% ± "
              f"{100 * s['val_accuracy_sd']:.2f} over seeds {seeds}; test (reported once per trial) "
              + ", ".join(f"{100 * t:.2f}%" for t in s["test_accuracy"]) + mark)
    wall = time.perf_counter() - started
    print(f"{len(rows)} trials in {wall:.0f} s on {os.cpu_count()} cores")
    if args.out:
        record = {"command": " ".join(["python", "benchmarks/model_recipes.py", *sys.argv[1:]]),
                  "commit": commit, "date": time.strftime("%Y-%m-%d"),
                  "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
                  "wall_seconds": round(wall), "trials": rows, "summary": summary, "chosen_lr": chosen["lr"]}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
