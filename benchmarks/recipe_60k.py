"""How does the default recipe behave on a 60,000-image training set?

The full MNIST cannot be downloaded on this project's machines, so this script
builds a drop-in stand-in: the bundled sample's 8,000 training digits, each
drawn 7.5 times with a random small affine distortion (rotation ±12°, scale
0.9-1.1, shear ±0.15, shift ±2 px; the first copy undistorted), written as an
IDX folder. It then trains the default recipe and variants on it and tests on
the sample's 2,000 held-out real digits, which no variant ever sees (the
sweeps that chose the recipe are benchmarks/recipe_sweeps.py).

    python benchmarks/recipe_60k.py [--out /tmp/mnist-60k-standin] [--epochs 15]

What it measures is how the recipes compare on 60,000 images; absolute
accuracy on the real MNIST test set will differ (the stand-in has only 8,000
distinct writers' digits).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from numpynn import datasets, recipes


def make_standin(out: Path, rows: int = 60_000, seed: int = 0) -> Path:
    from scipy.ndimage import affine_transform

    data = datasets.load("mnist-sample")
    rng = np.random.default_rng(seed)
    src = data.x_train.reshape(-1, 28, 28).astype(np.float32)
    n = src.shape[0]
    images = np.empty((rows, 28, 28), np.uint8)
    labels = np.empty(rows, np.uint8)
    centre = np.array([13.5, 13.5])
    for i in range(rows):
        k = i % n
        labels[i] = data.y_train[k]
        if i < n:
            images[i] = data.x_train[k].reshape(28, 28)
            continue
        angle = np.deg2rad(rng.uniform(-12, 12))
        scale = rng.uniform(0.9, 1.1)
        shear = rng.uniform(-0.15, 0.15)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        matrix = rot @ np.array([[1.0, shear], [0.0, 1.0]]) / scale
        shift = rng.uniform(-2, 2, size=2)
        offset = centre - matrix @ (centre + shift)
        warped = affine_transform(src[k], matrix, offset=offset, order=1, mode="constant")
        images[i] = np.clip(np.rint(warped), 0, 255).astype(np.uint8)
    out.mkdir(parents=True, exist_ok=True)
    datasets.write_idx(out / "train-images-idx3-ubyte.gz", images)
    datasets.write_idx(out / "train-labels-idx1-ubyte.gz", labels)
    datasets.write_idx(out / "t10k-images-idx3-ubyte.gz", data.x_test.reshape(-1, 28, 28))
    datasets.write_idx(out / "t10k-labels-idx1-ubyte.gz", data.y_test.astype(np.uint8))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="/tmp/mnist-60k-standin")
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    args = parser.parse_args()
    folder = Path(args.out)
    if not (folder / "train-images-idx3-ubyte.gz").exists():
        started = time.perf_counter()
        make_standin(folder)
        print(f"stand-in written to {folder} in {time.perf_counter() - started:.1f} s")
    data = datasets.load(folder)
    default = recipes.default_recipe(data.n_train)
    variants = {
        "default recipe (9e-3, shifts, 30 epochs)": default,
        "same, 15 epochs": recipes.Recipe(**{**default.as_dict(), "epochs": 15}),
        "earlier large-set recipe (1e-3, no shifts, 15)": recipes.Recipe(epochs=15, lr=1e-3, shift=0),
    }
    print(data.describe())
    for name, recipe in variants.items():
        if args.epochs:
            recipe.epochs = args.epochs
        started = time.perf_counter()
        net, history = recipes.train_classifier(data, recipe=recipe, progress=False)
        seconds = time.perf_counter() - started
        # chosen on the validation split of the training images; the test set, reported once
        print(f"{name:48s} {recipe.epochs:3d} epochs  validation {100 * history['val_accuracy'][-1]:.2f}%  "
              f"test {100 * net.metadata['test_accuracy']:.2f}%  {seconds:6.1f} s")


if __name__ == "__main__":
    main()
