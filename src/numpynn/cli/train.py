"""``numpynn train``: train a digit classifier, checkpoint it, resume it, save it."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, NamedTuple

from .common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    RunFailed,
    UsageError,
    check_targets,
    choices,
    count,
    fraction,
    layer_sizes,
    load_data,
    non_negative_float,
    pct,
    positive_float,
    positive_int,
    say,
    shared_options,
)

HELP = "train a digit classifier (MNIST, the bundled sample, or IDX files)"


def arguments(p: argparse.ArgumentParser) -> None:
    """numpynn train's options; the model, loss, optimiser and schedule names come from their
    registries, and the model options' defaults from the models' entries."""
    from ..models import MODELS

    shared_options(p)
    p.add_argument("--model", default="mlp", choices=choices(MODELS),
                   help="; ".join(f"{name}: {model.description}" for name, model in MODELS.items())
                   + " (default mlp)")
    _model_options(p, MODELS)
    _recipe_options(p, MODELS)
    p.add_argument("--seed", type=int, default=0, help="initial weights and batch order (default 0)")
    p.add_argument("--threads", type=positive_int, metavar="N",
                   help="threads for numpynn's layers (default: every core; the result is the same bits "
                        "whatever N)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                   help="float32 (default, fast) or float64")
    p.add_argument("--save", metavar="FILE", help="write the trained model (safetensors)")
    p.add_argument("--checkpoint", metavar="FILE", help="write model and optimiser after every epoch")
    p.add_argument("--resume", metavar="FILE", help="continue from a checkpoint")
    p.add_argument("--plots", metavar="DIR", help="write learning curves and other figures as PNGs")


def _takers(models: Any, option: str) -> str:
    """'the mlp' or 'the mlp and the cnn': the models that take ``option``, for help texts."""
    return " and ".join(f"the {name}" for name, model in models.items() if option in model.options)


def _model_options(p: argparse.ArgumentParser, models: Any) -> None:
    """The options a model takes (numpynn.models.build checks which model takes which)."""
    from ..activations import ACTIVATIONS
    from ..losses import LOSSES

    p.add_argument("--layers", type=layer_sizes, default=None, metavar="SIZES",
                   help=f"layer sizes of {_takers(models, 'layers')}, inputs first (default "
                        "784,128,64,10: the data's inputs and classes around 128,64)")
    hidden = choices(ACTIVATIONS, "softmax")
    defaults = ", ".join(f"{model.options['activation']} for the {name}"
                         for name, model in models.items() if "activation" in model.options)
    p.add_argument("--activation", default=None, choices=hidden, metavar="NAME",
                   help=f"hidden activation of {_takers(models, 'activation')}: {', '.join(hidden)} "
                        f"(default {defaults})")
    defaults = ", ".join(f"{model.options['dropout']:g} for the {name}"
                         for name, model in models.items() if "dropout" in model.options)
    p.add_argument("--dropout", type=fraction, default=None, metavar="P",
                   help="dropout after each hidden dense layer, probability P of dropping a unit "
                        f"(default {defaults})")
    losses = choices(LOSSES)
    p.add_argument("--loss", default=None, choices=losses, metavar="NAME",
                   help=f"{' or '.join(losses)} (default cross_entropy)")


def _recipe_options(p: argparse.ArgumentParser, models: Any) -> None:
    """The options of the training recipe (numpynn.recipes.Recipe); unset: the model's recipe."""
    from ..optimizers import OPTIMIZERS
    from ..schedules import SCHEDULES

    p.add_argument("--optimizer", choices=choices(OPTIMIZERS), default=None, help="default adam")
    rates = ", ".join(f"the {name} {model.recipe(60_000)['lr']:g}" for name, model in models.items())
    own = ", ".join(f"{c.recipe_lr:g} for {n}" for n, c in OPTIMIZERS.items() if c.recipe_lr)
    p.add_argument("--lr", type=positive_float, help=f"learning rate (default: {rates}; {own})")
    p.add_argument("--momentum", type=fraction, metavar="M", help="SGD momentum (default 0.9)")
    p.add_argument("--schedule", choices=choices(SCHEDULES),
                   help="learning-rate schedule (default cosine)")
    p.add_argument("--warmup", type=count, metavar="E",
                   help="raise the rate linearly over the first E epochs (default 0: none)")
    p.add_argument("--clip-norm", type=positive_float, metavar="C",
                   help="rescale each step's gradient to a global norm of at most C (default: no clipping)")
    p.add_argument("--weight-decay", type=non_negative_float, metavar="L",
                   help="weight decay λ: added to the gradient (sgd, adam), or decoupled (adamw; its "
                        "default 0.01; the others' 0)")
    p.add_argument("--validation-split", type=fraction, metavar="F",
                   help="fraction of the training images held out to score each epoch (default 0.1; "
                        "0 for none); the test set is evaluated once, at the end")
    p.add_argument("--patience", type=positive_int, metavar="N",
                   help="stop after N epochs without a better validation loss and keep the best "
                        "epoch's weights (default: train every epoch)")
    p.add_argument("--shift", type=int, choices=[0, 1, 2],
                   help="random shifts of the training images, in pixels (default 1)")
    p.add_argument("--batch-size", type=positive_int, metavar="N", help="rows per step (default 64)")
    epochs = "; ".join(_epochs_note(name, model) for name, model in models.items())
    p.add_argument("--epochs", type=positive_int, metavar="N",
                   help=f"passes over the data (default: {epochs})")


def _epochs_note(name: str, model: Any) -> str:
    small, large = model.recipe(8_000)["epochs"], model.recipe(60_000)["epochs"]
    return f"the {name} {small}" + ("" if small == large else f", {large} on full MNIST")


#: The recipe fields numpynn train's options set (each option is the field's name).
RECIPE_OPTIONS = ("optimizer", "lr", "momentum", "schedule", "warmup", "clip_norm", "weight_decay",
                  "shift", "batch_size", "epochs", "validation_split", "patience")


class _Run(NamedTuple):
    """What a training run needs: the network, its optimiser and recipe, where it starts, and what
    the checkpoint file records besides the weights (``state``)."""

    net: Any
    optimizer: Any
    recipe: Any
    done: int
    data: Any
    state: dict[str, Any]
    checkpoint: str | None
    kept: list[int]  # [the epoch the checkpoint file holds]


def run(args: argparse.Namespace) -> int:
    """Train (or resume), report each epoch, then save, draw and report as asked."""
    from .. import recipes
    from ..training import TrainingInterrupted

    if args.threads:
        from .. import _parallel

        _parallel.set_threads(args.threads)
    session = _prepare(args)
    say(f"network: {describe_network(session.net)}")
    say(recipe_line(session.recipe, session.optimizer))
    started = time.perf_counter()
    with _sigterm_as_interrupt():
        try:
            net, history = recipes.train_classifier(
                session.data, session.net, session.recipe, progress=not args.no_progress,
                callback=_reporter(session), optimizer=session.optimizer, initial_epoch=session.done,
            )
        except TrainingInterrupted as stop:
            return _interrupted(session, stop)
    seconds = time.perf_counter() - started
    net.metadata["seconds"] = round(seconds, 2)
    net.metadata["data"] = session.state["data"]
    say(f"done in {seconds:.1f} s: test accuracy {pct(net.metadata['test_accuracy']).strip()}, "
        f"loss {net.metadata['test_loss']:.4f}{selection_note(net.metadata.get('selection'))}")
    save_to = session.state["save"]
    if save_to:
        net.save(save_to)
        say(f"model saved to {save_to}")
    if args.plots:
        from .. import plots

        written = plots.write_training_plots(args.plots, net, history, session.data)
        say(f"figures written to {args.plots}: {', '.join(written)}")
    if args.json:
        print(json.dumps({
            "data": session.data.name,
            "test_accuracy": net.metadata["test_accuracy"],
            "test_loss": net.metadata["test_loss"],
            "epochs": session.recipe.epochs,
            "seconds": round(seconds, 3),
            "recipe": session.recipe.as_dict(),
            "saved": save_to,
            "history": history,
        }))
    return EXIT_OK


def _prepare(args: argparse.Namespace) -> _Run:
    """Everything before the first epoch: the targets checked, the data loaded, and the network,
    optimiser and recipe built (or read back from the checkpoint ``--resume`` names)."""
    from .. import recipes
    from ..serialization import load_checkpoint

    resumed: dict[str, Any] = {}
    if args.resume:
        net, optimizer, done, extra = load_checkpoint(args.resume)
        resumed = extra or {}
        if "recipe" not in resumed:
            raise UsageError(f"{args.resume} is a checkpoint without a training recipe: "
                             "it was not written by numpynn train --checkpoint")
    checkpoint = args.checkpoint or args.resume
    save_to = args.save or resumed.get("save")
    check_targets(save_to, checkpoint, folder=args.plots)
    data_arg = args.data if args.data is not None else resumed.get("data")
    data = load_data(data_arg, download=not args.no_download, progress=not args.no_progress,
                     quiet=False)
    say(f"data: {data.describe()}")
    if args.resume:
        # a checkpoint from before validation splits trained on every image: keep doing so
        recipe = recipes.Recipe(**{"validation_split": 0.0, **resumed["recipe"]})
        recipe = recipe.with_options(epochs=args.epochs)
        if done >= recipe.epochs:
            raise UsageError(f"{args.resume} holds {done} of {recipe.epochs} epochs already: "
                             "ask for more with --epochs")
        say(f"resuming from {args.resume} after epoch {done} of {recipe.epochs}")
    else:
        net = _build_model(args, data)
        recipe = recipes.default_recipe(data.n_train, args.model).with_options(
            **{key: getattr(args, key) for key in RECIPE_OPTIONS})
        optimizer, done = recipe.make_optimizer(), 0
    state = {"recipe": recipe.as_dict(), "data": _data_reference(data_arg, data), "save": save_to}
    return _Run(net, optimizer, recipe, done, data, state, checkpoint, kept=[done])


def _build_model(args: argparse.Namespace, data: Any) -> Any:
    """The network ``--model`` names, with the model options given (numpynn.models.build says,
    in one line, which options a model does not take and which data it cannot read)."""
    from .. import models

    names = {option for _, model in models.MODELS.items() for option in model.options}
    given = {name: getattr(args, name, None) for name in names}
    try:
        return models.build(args.model, data.n_features, data.n_classes, args.seed, args.dtype, **given)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _data_reference(data_arg: str | None, data: Any) -> str:
    """What to pass to --data to get the same data again (a folder as an absolute path)."""
    from ..datasets import dataset_names

    if data.name in dataset_names():
        return data.name
    return str(Path(data_arg).resolve()) if data_arg else data.name


def _reporter(session: _Run) -> Any:
    """The callback after each epoch: its line, then the checkpoint (when asked for)."""
    from ..serialization import save_checkpoint

    recipe, checkpoint, kept = session.recipe, session.checkpoint, session.kept

    def report(epoch: int, row: dict[str, Any]) -> None:
        say(f"epoch {epoch:3d}/{recipe.epochs}  loss {row['loss']:.4f}  train {pct(row['accuracy'])}  "
            f"val {pct(row.get('val_accuracy'))}  {row['seconds']:5.2f} s")
        if checkpoint:
            from ..errors import WriteError

            try:
                save_checkpoint(checkpoint, session.net, session.optimizer, epoch, extra=session.state)
            except WriteError as e:
                last = (f"{checkpoint} still holds epoch {kept[0]}: continue with numpynn train --resume "
                        f"{checkpoint}" if kept[0] else f"{checkpoint} was left as it was")
                raise RunFailed(f"{e}; training stopped after epoch {epoch}; {last}") from None
            kept[0] = epoch

    return report


# --- what the run says --------------------------------------------------------------------
def recipe_line(recipe: Any, optimizer: Any) -> str:
    """'recipe: adam lr 0.005 (cosine), batch 64, 30 epochs, shifts ±1 px, validation 0.1 of the
    training images', with warm-up, clipping, weight decay and patience when set."""
    held_out = (f", validation {recipe.validation_split:g} of the training images"
                if recipe.validation_split else "")
    stopping = f", patience {recipe.patience}" if recipe.patience and recipe.validation_split else ""
    aids = "".join([
        f", warm-up {recipe.warmup} epoch{'s' if recipe.warmup != 1 else ''}" if recipe.warmup else "",
        f", gradient norm clipped at {recipe.clip_norm:g}" if recipe.clip_norm is not None else "",
        f", weight decay {optimizer.weight_decay:g}" + (" (decoupled)" if _decoupled(optimizer) else "")
        if optimizer.weight_decay else "",
    ])
    return (f"recipe: {recipe.optimizer} lr {recipe.lr:g} ({recipe.schedule}), batch {recipe.batch_size}, "
            f"{recipe.epochs} epochs, shifts ±{recipe.shift} px{aids}{held_out}{stopping}")


def _decoupled(optimizer: Any) -> bool:
    return bool(getattr(optimizer, "decoupled", False))


def describe_network(net: Any) -> str:
    """'784 -> 128 -> 64 -> 10 (sigmoid hidden, softmax output, cross_entropy, float32), 109,386
    parameters' for a dense network; the layer types in order for any other."""
    from ..layers import Dense

    if all(isinstance(layer, Dense) for layer in net.layers):
        shape = " -> ".join(map(str, net.sizes))
        kinds = f"{net.layers[0].activation.name} hidden, {net.layers[-1].activation.name} output"
    else:
        shape = " -> ".join([str(net.n_in)] + [_layer_word(layer) for layer in net.layers])
        kinds = "output " + net.layers[-1].activation.name if hasattr(net.layers[-1], "activation") else ""
    facts = ", ".join(f for f in (kinds, net.loss.name, str(net.dtype)) if f)
    return f"{shape} ({facts}), {net.n_params:,} parameters"


def _layer_word(layer: Any) -> str:
    from ..layers import Conv2D, Dense, Dropout

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


def selection_note(selection: Any) -> str:
    """' (kept epoch 7 by validation loss, stopped early)', or '' when nothing was chosen."""
    if not isinstance(selection, dict) or not selection.get("best_epoch"):
        return ""
    what = "kept" if selection.get("restored_best") else "best"
    stop = ", stopped early" if selection.get("stopped_early") else ""
    return f" ({what} epoch {selection['best_epoch']} by validation loss{stop})"


# --- Ctrl-C and SIGTERM -------------------------------------------------------------------
class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an interruption so that training stops the same way as on Ctrl-C."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


class _sigterm_as_interrupt:  # noqa: N801 - used as a context manager, like a function
    """While inside: SIGTERM interrupts training as Ctrl-C does; the old handler comes back after."""

    def __enter__(self) -> None:
        import signal

        self.previous = signal.signal(signal.SIGTERM, _on_sigterm)

    def __exit__(self, *exc: object) -> None:
        import signal

        if signal.getsignal(signal.SIGTERM) in (_on_sigterm, signal.SIG_IGN):
            signal.signal(signal.SIGTERM, self.previous)


def _interrupted(session: _Run, stop: Any) -> int:
    """Ctrl-C (exit 130) or SIGTERM (143) during training: save the checkpoint, say how to go on."""
    import signal

    from ..serialization import save_checkpoint

    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # finish the checkpoint whatever comes
    code = 143 if isinstance(stop.__context__, Terminated) else EXIT_INTERRUPTED
    why = "terminated" if code == 143 else "interrupted"
    checkpoint = session.checkpoint
    if checkpoint:
        save_checkpoint(checkpoint, session.net, session.optimizer, stop.epochs_done, extra=session.state)
        say(f"{why}: checkpoint after epoch {stop.epochs_done} of {session.recipe.epochs} saved to "
            f"{checkpoint}; continue with: numpynn train --resume {checkpoint}")
    else:
        say(f"{why} after epoch {stop.epochs_done}: nothing saved "
            "(train with --checkpoint FILE to be able to resume)")
    return code
