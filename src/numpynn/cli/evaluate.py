"""``numpynn evaluate``: accuracy, loss and confusion matrix of a saved model."""

from __future__ import annotations

import argparse
import json

from .common import EXIT_OK, model_and_data

HELP = "accuracy, loss and confusion matrix of a saved model"


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model")
    p.add_argument("--data", default=None, help="as for train (default: the model's data set)")
    p.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    net, data = model_and_data(args, quiet=args.json)
    scores = net.evaluate(data.x_test, data.y_test)
    matrix = net.confusion_matrix(data.x_test, data.y_test)
    if args.json:
        print(json.dumps({"data": data.name, "n": data.n_test, "accuracy": scores["accuracy"],
                          "loss": scores["loss"], "confusion_matrix": matrix.tolist()}))
        return EXIT_OK
    from .._tables import table

    print(f"{data.name} test set, {data.n_test:,} images: accuracy {100 * scores['accuracy']:.2f}%, "
          f"loss {scores['loss']:.4f}")
    k = matrix.shape[0]
    rows = []
    for i in range(k):
        total = matrix[i].sum()
        recall = matrix[i, i] / total if total else 0.0
        rows.append([i, *(f"{v:,}" for v in matrix[i]), f"{100 * recall:.1f}%"])
    print(table(["true", *map(str, range(k)), "recall"], rows, right=tuple(range(k + 2)),
                title="confusion matrix (rows: true digit, columns: predicted)"))
    return EXIT_OK
