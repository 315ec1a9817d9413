"""Regenerate every picture in the README and docs/ from the real code, and the
saved outputs in docs/results/ that the README and docs quote.

    python docs/make_figures.py            # the figures, then the results
    python docs/make_figures.py --results  # only the results (docs/results/*.json)
    python docs/make_figures.py --figures  # only the figures (docs/figures/*.png)

The results are the README's commands run as a user runs them (`numpynn train`,
`numpynn train --model cnn`, `numpynn sweep ...`, `numpynn xor --seed 5`), each
saved with its transcript, its `--json` output, the commit, the date and the
machine; tests/test_docs.py checks that the README and docs quote them, so a
re-run that changes a figure fails the tests until the text is updated.

Trains the default MNIST recipe on the bundled sample (as `numpynn train` does), the
README's sweep (as `numpynn sweep` does), the convnet (as `numpynn train --model cnn` does)
and the XOR network, then writes docs/figures/*.png; then takes the screenshot of the web page
(docs/figures/web.png) by running the browser test, when Chromium and Selenium are installed.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpynn as nn
from numpynn import plots, recipes
from numpynn.xor import train_xor

OUT = Path(__file__).resolve().parent / "figures"
RESULTS = Path(__file__).resolve().parent / "results"

#: name -> (the README's command after `numpynn`, whether to add --json): with --json,
#: `train` still writes its transcript to stderr; `sweep` and `xor` print theirs only without it
COMMANDS = {
    "train": (["train", "--save", "model.safetensors"], True),
    "train_cnn": (["train", "--model", "cnn", "--save", "cnn.safetensors"], True),
    "sweep": (["sweep", "--data", "mnist-sample", "--grid", "lr=3e-3,9e-3,2.7e-2", "batch_size=64,128",
               "--jobs", "1"], False),
    "xor": (["xor", "--seed", "5"], False),
}


def machine() -> dict:
    """What the figures were measured on."""
    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo", encoding="utf-8")
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
            "system": f"{platform.system()} {platform.release()} ({platform.machine()})",
            "python": platform.python_version(), "numpy": __import__("numpy").__version__,
            "numpynn": nn.__version__}


def record(name: str, args: list[str], as_json: bool) -> dict:
    """Run `numpynn ARGS` (with --json if ``as_json``) in a scratch folder; save what it
    printed (the transcript, and the JSON) and where it ran."""
    commit = _commit()
    with tempfile.TemporaryDirectory() as scratch:
        load = os.getloadavg()
        started = time.perf_counter()
        errors = subprocess.PIPE if as_json else subprocess.STDOUT  # one transcript, in order
        done = subprocess.run([sys.executable, "-m", "numpynn", *args, *(["--json"] if as_json else [])],
                              cwd=scratch, env={**os.environ, "COLUMNS": "200"}, text=True,
                              stdout=subprocess.PIPE, stderr=errors)
        wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"numpynn {' '.join(args)} failed:\n{done.stderr or done.stdout}")
    transcript = (done.stderr if as_json else done.stdout).splitlines()
    transcript = [re.sub(r"from \S+/numpynn/datasets/data", "from .../numpynn/datasets/data", line)
                  for line in transcript]
    transcript = [re.sub(r"in \S+/\.cache/numpynn/mnist", "in ~/.cache/numpynn/mnist", line)
                  for line in transcript]
    result = {"command": "numpynn " + " ".join(args),
              "ran_with": "--json added (stdout: 'json'; stderr: 'transcript')" if as_json else "as shown",
              "commit": commit, "date": datetime.date.today().isoformat(), "machine": machine(),
              "load_average_at_start": [round(x, 2) for x in load], "wall_seconds": round(wall, 1),
              "transcript": transcript, "json": json.loads(done.stdout) if as_json else None}
    _save(name, result)
    return result


def record_xor_seeds(seeds: range = range(1000)) -> dict:
    """`numpynn xor --seed S` for every seed (in this process, as the CLI calls it): how
    many converge, how many needed restarts, and the training times."""
    import numpy as np

    load = os.getloadavg()
    runs = [train_xor(seed=seed) for seed in seeds]
    seconds = np.array([r.seconds for r in runs])
    restarted = [r.restarts for r in runs if r.restarts]
    result = {"command": f"numpynn xor --seed S, for S in {seeds.start}..{seeds.stop - 1} "
                         "(docs/make_figures.py --results xor_seeds: train_xor(seed=S) in one process)",
              "commit": _commit(), "date": datetime.date.today().isoformat(), "machine": machine(),
              "load_average_at_start": [round(x, 2) for x in load], "seeds": len(runs),
              "converged": sum(r.converged for r in runs),
              "all_within_0.1": sum(all(abs(o[3] - o[2]) < 0.1 for o in r.outputs) for r in runs),
              "seeds_restarted": len(restarted), "restarts": sum(restarted),
              "most_restarts": max(restarted, default=0),
              "seconds_median": round(float(np.median(seconds)), 3),
              "seconds_p95": round(float(np.percentile(seconds, 95)), 3),
              "seconds_max": round(float(seconds.max()), 3)}
    _save("xor_seeds", result)
    return result


def _commit() -> str:
    """The code's commit (NUMPYNN_COMMIT names it when the code runs from a snapshot)."""
    return os.environ.get("NUMPYNN_COMMIT") or subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=RESULTS.parent
    ).stdout.strip()


def _save(name: str, result: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{path.relative_to(RESULTS.parents[1])} written")


def record_results(names: list[str] | None = None) -> None:
    for name, (args, as_json) in COMMANDS.items():
        if not names or name in names:
            record(name, args, as_json)
    if not names or "xor_seeds" in names:
        record_xor_seeds()


def main() -> None:
    OUT.mkdir(exist_ok=True)
    result = train_xor(seed=0)
    plots.save_figure(plots.xor_surface(result.network), OUT / "xor_surface.png")
    plots.save_figure(plots.xor_snapshots(seed=0), OUT / "xor_snapshots.png")
    print("XOR figures written")

    data = nn.datasets.load("mnist-sample")
    net, history = recipes.train_classifier(data, progress=True)
    written = plots.write_training_plots(OUT, net, history, data)
    print(f"MNIST figures written: {', '.join(written)} "
          f"(test accuracy {net.metadata['test_accuracy']:.2%})")

    # the README's sweep
    sweep = nn.sweep.sweep(data, {"lr": [3e-3, 9e-3, 2.7e-2], "batch_size": [64, 128]}, jobs=1)
    plots.save_figure(plots.sweep_results(sweep.table, sweep.swept), OUT / "sweep.png")
    print(f"sweep figure written (best of {len(sweep.table)} trials: {sweep.best['options']})")

    recipe = recipes.default_recipe(data.n_train, "cnn")
    cnn, _ = recipes.train_classifier(data, nn.models.convnet(), recipe, progress=True)
    plots.save_figure(plots.conv_filters(cnn), OUT / plots.CONV_FILTERS)
    title = f"Feature maps of a test {data.y_test[0]}"
    plots.save_figure(plots.feature_maps(cnn, data.x_test[0], title=title), OUT / plots.FEATURE_MAPS)
    print(f"convnet figures written (test accuracy {cnn.metadata['test_accuracy']:.2%})")

    test = OUT.parents[1] / "tests" / "test_web_browser.py"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", str(test)],
                          env={**os.environ, "NUMPYNN_WRITE_SCREENSHOT": "1"})
    print("web page screenshot written" if done.returncode == 0 else "web page screenshot NOT written")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--results"]:
        record_results(sys.argv[2:])  # optionally only some: --results train xor
    elif sys.argv[1:] == ["--figures"]:
        main()
    else:
        main()
        record_results()
