"""The ``numpynn`` command: a thin face over the library.

Every user mistake ends in one line on stderr and a non-zero exit code:
2 for bad usage or input, 1 for a run that failed (e.g. divergence),
130 for Ctrl-C. Heavy modules are imported inside the commands, so
``numpynn --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """Bad options or input: exit code 2."""


class RunFailed(Exception):
    """A run that could not go on (e.g. its checkpoint could not be written): exit code 1."""


def _check_targets(*paths: str | None, folder: str | None = None) -> None:
    """Before any work: each file given can be written, and the folder given exists
    or can be made, and takes files (else exit 2, naming the path and the problem)."""
    from ._io import check_writable
    from .errors import WriteError

    try:
        for path in paths:
            if path:
                check_writable(path)
        if folder:
            check_writable(folder, folder=True)
    except WriteError as e:
        raise UsageError(str(e)) from None


def _number(parse: Any, ok: Any, rule: str, kind: str) -> Any:
    """An argparse type: ``parse`` the text, then check it with ``ok``."""

    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{rule}, got {text}")
        return value

    return convert


_positive_int = _number(int, lambda v: v >= 1, "must be at least 1", "a whole number")
_port = _number(int, lambda v: 0 <= v <= 65535, "a port is 0..65535", "a port number")
_positive_float = _number(float, lambda v: 0 < v < float("inf"), "must be a positive number", "a number")
_fraction = _number(float, lambda v: 0 <= v < 1, "must be in [0, 1)", "a number")
_open_fraction = _number(float, lambda v: 0 < v < 1, "must be in (0, 1)", "a number")


def _choices(registry: Any, *drop: str) -> list[str]:
    """The names a registry holds, for argparse choices and help text."""
    return [name for name in registry.names() if name not in drop]


def _layers(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.replace(" ", "").split(",") if s]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated sizes like 784,128,64,10, got {text!r}"
        ) from None
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(
            f"need at least two positive sizes like 784,128,64,10, got {text!r}"
        )
    return sizes


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (and exit code 2), not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _shared_options(p: argparse.ArgumentParser, datasets_help: str) -> None:
    """The options numpynn train and numpynn sweep share, with one meaning in both."""
    p.add_argument("--data", metavar="NAME|DIR", help=f"{datasets_help} "
                   "(default: full MNIST if cached or downloadable, else mnist-sample)")
    p.add_argument("--no-download", action="store_true", help="never download MNIST")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")


#: The options of numpynn train that numpynn sweep takes too (tests/test_sweep.py checks both).
SHARED_OPTIONS = ("--data", "--no-download", "--no-progress", "--json", "--seed", "--epochs",
                  "--validation-split", "--save")


def build_parser() -> argparse.ArgumentParser:
    from .activations import ACTIVATIONS
    from .datasets import DATASET_NAMES
    from .losses import LOSSES
    from .models import MODELS
    from .optimizers import OPTIMIZERS
    from .training import SCHEDULES

    parser = _Parser(
        prog="numpynn",
        description="Neural networks from scratch in NumPy: train, evaluate and use an MNIST digit "
        "classifier, or watch a 2-2-1 network learn XOR.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("train", help="train a digit classifier (MNIST, the bundled sample, or IDX files)")
    datasets_help = f"{', '.join(DATASET_NAMES)}, or a folder of IDX files"
    _shared_options(p, datasets_help)
    p.add_argument("--model", default="mlp", choices=_choices(MODELS),
                   help="mlp: dense layers (default); cnn: a LeNet-style convnet (two 5x5 convolutions "
                        "with max-pooling, then 512 -> 128 -> 10)")
    p.add_argument("--layers", type=_layers, default=None, metavar="SIZES",
                   help="layer sizes of the mlp (default 784,128,64,10)")
    hidden = _choices(ACTIVATIONS, "softmax")
    p.add_argument("--activation", default=None, choices=hidden, metavar="NAME",
                   help=f"hidden activation of the mlp: {', '.join(hidden)} (default sigmoid)")
    p.add_argument("--dropout", type=_fraction, default=None, metavar="P",
                   help="dropout after each hidden dense layer, probability P of dropping a unit "
                        "(default 0 for the mlp, 0.25 for the cnn)")
    p.add_argument("--loss", default="cross_entropy", choices=_choices(LOSSES), metavar="NAME",
                   help=f"{' or '.join(_choices(LOSSES))} (default cross_entropy)")
    p.add_argument("--optimizer", choices=_choices(OPTIMIZERS), default=None, help="default adam")
    p.add_argument("--lr", type=_positive_float,
                   help="learning rate (default 9e-3, the cnn 4e-3; 0.1 for sgd)")
    p.add_argument("--momentum", type=_fraction, metavar="M", help="SGD momentum (default 0.9)")
    p.add_argument("--schedule", choices=list(SCHEDULES),
                   help="learning-rate schedule (default cosine)")
    p.add_argument("--validation-split", type=_fraction, metavar="F",
                   help="fraction of the training images held out to score each epoch (default 0.1; "
                        "0 for none); the test set is evaluated once, at the end")
    p.add_argument("--patience", type=_positive_int, metavar="N",
                   help="stop after N epochs without a better validation loss and keep the best "
                        "epoch's weights (default: train every epoch)")
    p.add_argument("--shift", type=int, choices=[0, 1, 2],
                   help="random shifts of the training images, in pixels (default 1)")
    p.add_argument("--batch-size", type=_positive_int, metavar="N", help="rows per step (default 64)")
    p.add_argument("--epochs", type=_positive_int, metavar="N",
                   help="passes over the data (default 30; the cnn 20, or 6 above 20,000 images)")
    p.add_argument("--seed", type=int, default=0, help="initial weights and batch order (default 0)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                   help="float32 (default, fast) or float64")
    p.add_argument("--save", metavar="FILE", help="write the trained model (safetensors)")
    p.add_argument("--checkpoint", metavar="FILE", help="write model and optimiser after every epoch")
    p.add_argument("--resume", metavar="FILE", help="continue from a checkpoint")
    p.add_argument("--plots", metavar="DIR", help="write learning curves and other figures as PNGs")

    p = sub.add_parser("sweep", help="train many recipes and architectures, score each on a validation "
                       "split, test the best once (joblib on this machine, or a Dask cluster)")
    _shared_options(p, datasets_help)
    p.add_argument("--grid", nargs="+", required=True, metavar="NAME=V1,V2",
                   help="options and their values, e.g. lr=1e-3,3e-3 batch_size=32,64 "
                        "layers=784,128,64,10:784,256,10 (alternatives of layers separated by ':'); "
                        "any of lr, batch_size, epochs, optimizer, momentum, schedule, shift, patience, "
                        "model, layers, activation, dropout, loss; the rest as numpynn train's defaults")
    p.add_argument("--random", type=_positive_int, metavar="N",
                   help="run N combinations of the grid drawn at random (with --seed), not all")
    p.add_argument("--seed", type=int, default=0,
                   help="initial weights, batch orders, the validation split and --random (default 0)")
    p.add_argument("--epochs", type=_positive_int, metavar="N", help="epochs of every trial "
                   "(default: the recipe's, 30 for the mlp)")
    p.add_argument("--validation-split", type=_open_fraction, default=0.1, metavar="F",
                   help="fraction of the training images that scores every trial (default 0.1)")
    p.add_argument("--jobs", type=_positive_int, metavar="N",
                   help="trials at once, in joblib worker processes (default: the number of cores)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run the trials on this Dask scheduler's workers instead")
    p.add_argument("--out", metavar="DIR", default="sweep", help="results.jsonl, best.safetensors and "
                   "sweep.png (default sweep); a rerun skips the trials already there")
    p.add_argument("--save", metavar="FILE", help="write the best trial's model (safetensors)")

    p = sub.add_parser("evaluate", help="accuracy, loss and confusion matrix of a saved model")
    p.add_argument("model")
    p.add_argument("--data", default=None, help="as for train (default: the model's data set)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("predict", help="read the digit in each image file")
    p.add_argument("model")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("info", help="architecture, parameter counts and training facts of a model")
    p.add_argument("model")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("plot", help="draw figures for a saved model: confusion matrix, mistakes, weights")
    p.add_argument("model")
    p.add_argument("--data", default=None, help="as for train (default: the model's data set)")
    p.add_argument("--out", metavar="DIR", default="figures", help="folder for the PNGs (default figures)")

    p = sub.add_parser("export", help="write a saved model as an ONNX file, for ONNX Runtime (C++, C#, "
                       "Java, JavaScript, phones)")
    p.add_argument("model")
    p.add_argument("out", metavar="OUT.onnx", help="the ONNX file to write (float32, opset 17)")

    p = sub.add_parser("serve", help="a web page: draw a digit and watch the network think")
    p.add_argument("model", nargs="?", default=None,
                   help="a saved model (default: one trained once on the bundled sample, then cached)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_port, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--open", action="store_true", help="open the page in the default web browser")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar while training the default model")

    p = sub.add_parser("xor", help="train the classic 2-2-1 sigmoid network on XOR")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=_positive_int, default=5000, help="most epochs per attempt")
    p.add_argument("--lr", type=_positive_float, default=20.0)
    p.add_argument("--plot", metavar="FILE", help="draw the decision surface to a PNG")
    p.add_argument("--json", action="store_true")
    return parser


# --- helpers ------------------------------------------------------------------------------
def _say(text: str, quiet: bool = False) -> None:
    if not quiet:
        print(text, file=sys.stderr, flush=True)


def _load_data(name: str | None, *, download: bool, progress: bool, quiet: bool):
    from . import datasets

    if name is not None:
        return datasets.load(name, download=download, progress=progress)
    if datasets.is_cached("mnist") or download:
        try:  # downloads if need be, and works without the cache if it cannot be written
            return datasets.load("mnist", download=download, progress=progress)
        except OSError:
            pass
    _say("full MNIST is not cached here and could not be downloaded: training on the bundled "
         "mnist-sample (8,000 train + 2,000 test real digits) instead; to use the full set, put "
         f"the four MNIST files in {datasets.mnist_dir()} or pass --data", quiet)
    return datasets.load("mnist-sample")


def _pct(x: float | None) -> str:
    return "   -  " if x is None else f"{100 * x:6.2f}%"


# --- commands -----------------------------------------------------------------------------
class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an interruption so that training stops the same way as on Ctrl-C."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


def cmd_train(args: argparse.Namespace) -> int:
    import signal

    from . import recipes
    from .serialization import load_checkpoint, save_checkpoint
    from .training import TrainingInterrupted

    resumed: dict[str, Any] = {}
    if args.resume:
        net, optimizer, done, extra = load_checkpoint(args.resume)
        resumed = extra or {}
        if "recipe" not in resumed:
            raise UsageError(f"{args.resume} is a checkpoint without a training recipe: "
                             "it was not written by numpynn train --checkpoint")
    checkpoint = args.checkpoint or args.resume
    save_to = args.save or resumed.get("save")
    _check_targets(save_to, checkpoint, folder=args.plots)
    data_arg = args.data if args.data is not None else resumed.get("data")
    data = _load_data(data_arg, download=not args.no_download, progress=not args.no_progress,
                      quiet=False)
    _say(f"data: {data.describe()}")
    if args.resume:
        # a checkpoint from before validation splits trained on every image: keep doing so
        recipe = recipes.Recipe(**{"validation_split": 0.0, **resumed["recipe"]})
        if args.epochs:
            recipe.epochs = args.epochs
        if done >= recipe.epochs:
            raise UsageError(f"{args.resume} holds {done} of {recipe.epochs} epochs already: "
                             "ask for more with --epochs")
        _say(f"resuming from {args.resume} after epoch {done} of {recipe.epochs}")
    else:
        net = _build_model(args, data)
        recipe = recipes.default_recipe(data.n_train, args.model)
        for key in ("optimizer", "lr", "momentum", "schedule", "shift", "batch_size", "epochs",
                    "validation_split", "patience"):
            value = getattr(args, key)
            if value is not None:
                setattr(recipe, key, value)
        if args.optimizer == "sgd" and args.lr is None:
            recipe.lr = 0.1
        optimizer, done = recipe.make_optimizer(), 0
    state = {"recipe": recipe.as_dict(), "data": _data_reference(data_arg, data), "save": save_to}
    _say(f"network: {_describe_network(net)}")
    held_out = (f", validation {recipe.validation_split:g} of the training images"
                if recipe.validation_split else "")
    stopping = f", patience {recipe.patience}" if recipe.patience and recipe.validation_split else ""
    _say(f"recipe: {recipe.optimizer} lr {recipe.lr:g} ({recipe.schedule}), batch {recipe.batch_size}, "
         f"{recipe.epochs} epochs, shifts ±{recipe.shift} px{held_out}{stopping}")

    kept = [done]  # the epoch the checkpoint file holds

    def report(epoch: int, row: dict[str, Any]) -> None:
        _say(f"epoch {epoch:3d}/{recipe.epochs}  loss {row['loss']:.4f}  train {_pct(row['accuracy'])}  "
             f"val {_pct(row.get('val_accuracy'))}  {row['seconds']:5.2f} s")
        if checkpoint:
            from .errors import WriteError

            try:
                save_checkpoint(checkpoint, net, optimizer, epoch, extra=state)
            except WriteError as e:
                last = (f"{checkpoint} still holds epoch {kept[0]}: continue with numpynn train --resume "
                        f"{checkpoint}" if kept[0] else f"{checkpoint} was left as it was")
                raise RunFailed(f"{e}; training stopped after epoch {epoch}; {last}") from None
            kept[0] = epoch

    started = time.perf_counter()
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        net, history = recipes.train_classifier(
            data, net, recipe, progress=not args.no_progress, callback=report,
            optimizer=optimizer, initial_epoch=done,
        )
    except TrainingInterrupted as stop:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # finish the checkpoint whatever comes
        code = 143 if isinstance(stop.__context__, Terminated) else EXIT_INTERRUPTED
        why = "terminated" if code == 143 else "interrupted"
        if checkpoint:
            save_checkpoint(checkpoint, net, optimizer, stop.epochs_done, extra=state)
            _say(f"{why}: checkpoint after epoch {stop.epochs_done} of {recipe.epochs} saved to "
                 f"{checkpoint}; continue with: numpynn train --resume {checkpoint}")
        else:
            _say(f"{why} after epoch {stop.epochs_done}: nothing saved "
                 "(train with --checkpoint FILE to be able to resume)")
        return code
    finally:
        if signal.getsignal(signal.SIGTERM) in (_on_sigterm, signal.SIG_IGN):
            signal.signal(signal.SIGTERM, previous)
    seconds = time.perf_counter() - started
    net.metadata["seconds"] = round(seconds, 2)
    net.metadata["data"] = state["data"]
    _say(f"done in {seconds:.1f} s: test accuracy {_pct(net.metadata['test_accuracy']).strip()}, "
         f"loss {net.metadata['test_loss']:.4f}{_selection_note(net.metadata.get('selection'))}")
    if save_to:
        net.save(save_to)
        _say(f"model saved to {save_to}")
    if args.plots:
        from . import plots

        written = plots.write_training_plots(args.plots, net, history, data)
        _say(f"figures written to {args.plots}: {', '.join(written)}")
    if args.json:
        print(json.dumps({
            "data": data.name,
            "test_accuracy": net.metadata["test_accuracy"],
            "test_loss": net.metadata["test_loss"],
            "epochs": recipe.epochs,
            "seconds": round(seconds, 3),
            "recipe": recipe.as_dict(),
            "saved": save_to,
            "history": history,
        }))
    return EXIT_OK


def _build_model(args: argparse.Namespace, data: Any) -> Any:
    """The network ``--model`` names, with the options that apply to it."""
    from . import models

    if args.model == "cnn":
        given = [f"--{name}" for name in ("layers", "activation") if getattr(args, name) is not None]
        if given:
            raise UsageError(f"{' and '.join(given)} only apply to --model mlp; the cnn's layers are fixed "
                             "(see numpynn.models.convnet)")
        if (data.n_features, data.n_classes) != (784, 10):
            raise UsageError(f"the cnn reads 28x28 images of 10 classes, but {data.name} has "
                             f"{data.n_features} pixels and {data.n_classes} classes: use --model mlp")
        if args.loss != "cross_entropy":
            raise UsageError("the cnn ends in a softmax trained with cross_entropy")
        return models.convnet(args.seed, args.dtype, dropout=0.25 if args.dropout is None else args.dropout)
    layers = args.layers or [data.n_features, 128, 64, data.n_classes]
    return models.mlp(layers, args.activation or "sigmoid", args.loss, args.seed, args.dtype,
                      dropout=args.dropout or 0.0)


def _describe_network(net: Any) -> str:
    """'784 -> 128 -> 64 -> 10 (sigmoid hidden, softmax output, cross_entropy, float32), 109,386
    parameters' for a dense network; the layer types in order for any other."""
    from .layers import Dense

    if all(isinstance(layer, Dense) for layer in net.layers):
        shape = " -> ".join(map(str, net.sizes))
        kinds = f"{net.layers[0].activation.name} hidden, {net.layers[-1].activation.name} output"
    else:
        shape = " -> ".join([str(net.n_in)] + [_layer_word(layer) for layer in net.layers])
        kinds = "output " + net.layers[-1].activation.name if hasattr(net.layers[-1], "activation") else ""
    facts = ", ".join(f for f in (kinds, net.loss.name, str(net.dtype)) if f)
    return f"{shape} ({facts}), {net.n_params:,} parameters"


def _layer_word(layer: Any) -> str:
    from .layers import Conv2D, Dense, Dropout

    if isinstance(layer, Dense):
        return str(layer.n_out)
    if isinstance(layer, Dropout):
        return f"dropout {layer.p:g}"
    if isinstance(layer, Conv2D):
        (kh, kw), shape = layer.kernel_size, "x".join(map(str, layer.output_shape))
        return f"conv {kh}x{kw} {layer.activation.name} {shape}"
    if layer.name.endswith("Pool2D"):
        return f"{layer.name[:3].lower()}pool {'x'.join(map(str, layer.output_shape))}"
    return layer.name.lower()


def _selection_note(selection: Any) -> str:
    if not isinstance(selection, dict) or not selection.get("best_epoch"):
        return ""
    what = "kept" if selection.get("restored_best") else "best"
    stop = ", stopped early" if selection.get("stopped_early") else ""
    return f" ({what} epoch {selection['best_epoch']} by validation loss{stop})"


def _data_reference(data_arg: str | None, data: Any) -> str:
    """What to pass to --data to get the same data again (a folder as an absolute path)."""
    from .datasets import DATASET_NAMES

    if data.name in DATASET_NAMES:
        return data.name
    return str(Path(data_arg).resolve()) if data_arg else data.name


def cmd_sweep(args: argparse.Namespace) -> int:
    from . import sweep as sweeps

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
    from . import sweep as sweeps

    data = _load_data(args.data, download=not args.no_download,
                      progress=not (args.no_progress or args.json), quiet=args.json)
    settings = {"random": args.random, "seed": args.seed, "epochs": args.epochs,
                "validation_split": args.validation_split}
    trials, swept = sweeps.plan(data, grid, **settings)  # layers that do not fit the data: exit 2 too
    _check_targets(args.save, folder=args.out)
    engine = (f"Dask scheduler {args.scheduler}" if args.scheduler
              else "joblib, in this process" if (args.jobs or sweeps._cores()) == 1
              else f"joblib, {args.jobs or sweeps._cores()} processes")
    _say(f"data: {data.describe()}", args.json)
    what = ", ".join(swept) or "one setting"
    _say(f"sweep: {len(trials)} trial{'s' if len(trials) != 1 else ''} ({what}), each scored on the "
         f"{sweeps._validation_note(data, args.validation_split, args.seed)}; {engine}", args.json)

    def report(row: dict[str, Any], done: int, total: int) -> None:
        score = f"val {_pct(row['val_accuracy']).strip()}" if row["error"] is None else "diverged"
        _say(f"trial {done}/{total}  {_options(row, swept)}  {score}  {row['seconds']:.1f} s", args.json)

    result = sweeps.sweep(data, grid, **settings, jobs=args.jobs, scheduler=client,
                          out=args.out, on_trial=report)
    best = result.best
    if args.save and result.model is not None:
        result.model.save(args.save)
    if args.json:
        print(json.dumps({**result.as_dict(), "saved": args.save if result.model is not None else None}))
        return EXIT_OK if best is not None else EXIT_FAILED
    from ._tables import table

    rows = [[row["rank"], *(sweeps.format_value(row["options"].get(n)) for n in swept),
             _pct(row["val_accuracy"]).strip() if row["error"] is None else "diverged",
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
    if best is None:
        raise RunFailed("every trial diverged: try smaller learning rates")
    print(f"best: {_options(best, list(best['options']))}: validation accuracy "
          f"{_pct(best['val_accuracy']).strip()}, loss {best['val_loss']:.4f}")
    test = result.test or {}
    print(f"test set (evaluated once, for the best trial only): accuracy {_pct(test['accuracy']).strip()}, "
          f"loss {test['loss']:.4f} on {test['n']:,} images")
    if args.save:
        print(f"best model saved to {args.save}")
    return EXIT_OK


def _options(row: dict[str, Any], names: Sequence[str]) -> str:
    from .sweep import format_value

    return ", ".join(f"{n} {format_value(row['options'].get(n))}" for n in names) or "defaults"


def cmd_evaluate(args: argparse.Namespace) -> int:
    net, data = _model_and_data(args, quiet=args.json)
    scores = net.evaluate(data.x_test, data.y_test)
    matrix = net.confusion_matrix(data.x_test, data.y_test)
    if args.json:
        print(json.dumps({"data": data.name, "n": data.n_test, "accuracy": scores["accuracy"],
                          "loss": scores["loss"], "confusion_matrix": matrix.tolist()}))
        return EXIT_OK
    from ._tables import table

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


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from . import images, load

    net = load(args.model)
    if net.n_in != 784:
        raise UsageError(f"{args.model} takes {net.n_in} inputs, not 28x28 = 784 pixel images")
    rows = []
    for path in args.images:
        x = images.preprocess(path)
        probs = net.predict(x[None, :])[0]
        digit = int(np.argmax(probs))
        rows.append({"path": path, "digit": digit, "probability": float(probs[digit]),
                     "probabilities": [round(float(p), 6) for p in probs]})
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            print(f"{row['path']}: {row['digit']} ({100 * row['probability']:.1f}%)")
    return EXIT_OK


def _model_and_data(args: argparse.Namespace, quiet: bool) -> tuple[Any, Any]:
    """The saved model and the data set to judge it on (by default the one it was trained on)."""
    from . import load

    net = load(args.model)
    from .datasets import DATASET_NAMES

    name = args.data or net.metadata.get("data") or "mnist-sample"
    if args.data is None and name not in DATASET_NAMES and not Path(name).is_dir():
        raise UsageError(f"{args.model} was trained on {name}, which is not there now: "
                         "say which data to use with --data")
    data = _load_data(name, download=False, progress=False, quiet=quiet)
    if net.n_in != data.n_features:
        raise UsageError(f"{args.model} takes {net.n_in} inputs but {data.name} images have "
                         f"{data.n_features} pixels")
    return net, data


def cmd_plot(args: argparse.Namespace) -> int:
    from . import plots

    _check_targets(folder=args.out)
    net, data = _model_and_data(args, quiet=False)
    written = plots.write_model_plots(args.out, net, data)
    print(f"figures for {args.model} on {data.name} written to {args.out}: {', '.join(written)}")
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    from .serialization import describe

    info = describe(args.model)
    if args.json:
        print(json.dumps(info, default=str))
        return EXIT_OK
    print(_format_info(args.model, info))
    return EXIT_OK


def _format_info(path: str, info: dict[str, Any]) -> str:
    from ._tables import table

    arch = info.get("architecture", {})
    kind = "checkpoint" if info.get("kind") == "checkpoint" else "model"
    layers = table(
        ["layer", "type", "output", "activation", "parameters"],
        [[i, layer.get("type"), "x".join(map(str, layer.get("output_shape", []))),
          layer.get("activation", ""), f"{layer.get('params', 0):,}"]
         for i, layer in enumerate(info.get("layers", []))],
        right=(0, 4),
        footer=f"{info.get('n_params', 0):,} parameters, {arch.get('dtype')}, loss {arch.get('loss')}",
    )
    facts = []
    for key, value in (info.get("training") or {}).items():
        if key.startswith("_"):
            continue
        if isinstance(value, float):
            value = f"{100 * value:.2f}%" if "accuracy" in key else f"{value:.4g}"
        elif isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        facts.append([key, value])
    rows = info.get("layers", [])
    if all(row.get("type") == "Dense" for row in rows):
        shape = " -> ".join(map(str, info.get("sizes", [])))
    else:
        shape = f"input {'x'.join(map(str, info.get('input_shape', [])))}, {len(rows)} layers"
    lines = [f"{path}: numpynn {kind}, {shape} "
             f"({info.get('file_size', 0):,} bytes, numpynn {info.get('numpynn_version')})", "", layers]
    if facts:
        lines += ["", table(["training", ""], facts)]
    return "\n".join(lines)


def cmd_export(args: argparse.Namespace) -> int:
    from . import load
    from .export import onnx

    if Path(args.out).resolve() == Path(args.model).resolve():
        raise UsageError(f"{args.out} is the model file itself: write the ONNX file elsewhere")
    net = load(args.model)
    onnx.save(net, args.out)
    print(f"{args.model} exported to {args.out}: {onnx.describe(net)}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from .web import serve

    serve(args.model, host=args.host, port=args.port, open_browser=args.open,
          progress=not args.no_progress)
    return EXIT_OK


def cmd_xor(args: argparse.Namespace) -> int:
    from .xor import train_xor

    _check_targets(args.plot)
    result = train_xor(seed=args.seed, epochs=args.epochs, lr=args.lr)
    if args.plot:
        from . import plots

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


COMMANDS = {
    "train": cmd_train,
    "sweep": cmd_sweep,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "info": cmd_info,
    "plot": cmd_plot,
    "export": cmd_export,
    "serve": cmd_serve,
    "xor": cmd_xor,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, or a usage error already printed as one line
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    if args.version:
        from . import __version__

        print(f"numpynn {__version__}")
        return EXIT_OK
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    from .errors import DivergenceError, WriteError

    if os.environ.get("NUMPYNN_DEBUG"):  # show full tracebacks when debugging numpynn itself
        return COMMANDS[args.command](args)
    try:
        return COMMANDS[args.command](args)
    except (DivergenceError, RunFailed) as e:
        _say(f"numpynn {args.command}: error: {e}")
        return EXIT_FAILED
    except WriteError as e:  # a target that cannot be written at all: 2; a full disk on the way: 1
        _say(f"numpynn {args.command}: error: {e}")
        return EXIT_USAGE if e.bad_target else EXIT_FAILED
    except KeyboardInterrupt:
        _say(f"numpynn {args.command}: interrupted")
        return EXIT_INTERRUPTED
    except ImportError as e:
        _say(f"numpynn {args.command}: error: {e}")
        return EXIT_USAGE
    except BrokenPipeError:  # pragma: no cover - e.g. piped into head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (UsageError, ValueError, TypeError, OSError) as e:
        message = str(e) or type(e).__name__
        if isinstance(e, FileNotFoundError) and e.filename and str(e.filename) not in message:
            message = f"{e.filename}: {message}"
        _say(f"numpynn {args.command}: error: {message}")
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
