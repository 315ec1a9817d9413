"""Regenerate every picture in the README and docs/ from the real code.

    python docs/make_figures.py            # about two minutes on 2 cores

Trains the default MNIST recipe on the bundled sample (as `numpynn train` does), the
README's sweep (as `numpynn sweep` does), the convnet (as `numpynn train --model cnn` does)
and the XOR network, then writes docs/figures/*.png; then takes the screenshot of the web page
(docs/figures/web.png) by running the browser test, when Chromium and Selenium are installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpynn as nn
from numpynn import plots, recipes
from numpynn.xor import train_xor

OUT = Path(__file__).resolve().parent / "figures"


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

    sweep = nn.sweep(data, {"lr": [3e-3, 9e-3, 2.7e-2], "batch_size": [64, 128]}, jobs=1)  # the README's
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
    main()
