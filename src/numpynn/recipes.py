"""The MNIST recipe: how to train the classic 784-128-64-10 network.

Used by ``numpynn train``, the examples and the web page alike, so a Python
user gets exactly what the CLI does with two calls::

    data = numpynn.datasets.load("mnist-sample")
    net, history = numpynn.recipes.train_classifier(data)

Model selection is honest: the epochs are scored on a validation split carved
from the training images, the weights of the epoch with the lowest validation
loss are the ones kept (``keep_best``), and the test set is evaluated once, at
the end, on those weights.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from . import augment as augmentations
from . import models
from .datasets import Dataset
from .network import Network
from .optimizers import OPTIMIZERS, SGD, Optimizer
from .training import fit


@dataclass
class Recipe:
    """How to train: optimiser, learning rate and its schedule, batches, augmentation.

    ``shift`` moves each training image by up to that many pixels (0 = off).
    ``validation_split`` is the fraction of the training images held out to
    score each epoch (0 = none). ``keep_best`` (the default) puts back, after
    the last epoch, the weights of the epoch with the lowest validation loss:
    those are the weights tested, saved and reported as the kept epoch
    (``metadata["selection"]["restored_best"]``); False keeps the last epoch's.
    ``patience`` stops training after that many epochs without a better
    validation loss, and always keeps the best epoch's weights. Without a
    validation split there is nothing to choose by, and the last epoch's
    weights are kept. ``warmup`` raises the rate linearly over that many first
    epochs; ``clip_norm`` caps the global norm of each step's gradient;
    ``weight_decay`` (None: the optimiser's default) is λ.
    """

    epochs: int = 30
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 5e-3
    momentum: float = 0.9
    schedule: str = "cosine"
    shift: int = 1
    validation_split: float = 0.1
    patience: int | None = None
    keep_best: bool = True
    warmup: int = 0
    clip_norm: float | None = None
    weight_decay: float | None = None
    notes: list[str] = field(default_factory=list)

    def with_options(self, **given: Any) -> Recipe:
        """This recipe with the fields in ``given`` set (``None`` values are not given). Choosing
        an optimiser without a rate gives it its ``recipe_lr`` where it has one (SGD: 0.1), not
        the Adam rate of the recipe."""
        given = {k: v for k, v in given.items() if v is not None}
        unknown = sorted(set(given) - set(self.as_dict()))
        if unknown:
            raise ValueError(f"a recipe has no {', '.join(unknown)}")
        changed = Recipe(**{**asdict(self), **given})
        preferred = OPTIMIZERS[changed.optimizer].recipe_lr
        if "optimizer" in given and "lr" not in given and preferred is not None:
            changed.lr = preferred
        return changed

    def make_optimizer(self) -> Optimizer:
        """The optimiser this recipe names, at its rate (and weight decay, when given; else the
        optimiser's own default: none for SGD and Adam, 0.01 for AdamW)."""
        cls = OPTIMIZERS[self.optimizer]
        decay = {} if self.weight_decay is None else {"weight_decay": self.weight_decay}
        if cls is SGD:  # the recipe's SGD: heavy-ball momentum with Nesterov's look-ahead
            return SGD(lr=self.lr, momentum=self.momentum, nesterov=self.momentum > 0, **decay)
        if "momentum" in inspect.signature(cls).parameters:  # any other optimiser that has one
            decay["momentum"] = self.momentum
        return cls(lr=self.lr, **decay)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("notes")
        return d


def default_recipe(n_train: int, model: str = "mlp") -> Recipe:
    """The default recipe for a training set of ``n_train`` images and a ``model``
    of :data:`numpynn.models.MODELS`: the recipe its entry gives for that size.

    Both keep the weights of the epoch with the lowest loss on the 10%
    validation split (``keep_best``), and train every epoch (no ``patience``).

    Why each model's recipe is what it is: its entry in :mod:`numpynn.models`.
    """
    return Recipe(**models.MODELS[model].recipe(n_train))


def train_classifier(
    data: Dataset,
    net: Network | None = None,
    recipe: Recipe | None = None,
    *,
    progress: bool = True,
    callback: Callable[[int, dict[str, Any]], Any] | None = None,
    optimizer: Optimizer | None = None,
    initial_epoch: int = 0,
    test: bool = True,
) -> tuple[Network, dict[str, list[Any]]]:
    """Train ``net`` (default: :func:`numpynn.models.mlp`) on ``data`` with
    ``recipe`` (default: :func:`default_recipe`), scoring every epoch on the
    recipe's validation split of the training images and, with ``keep_best``
    (the default), ending with the weights of the epoch of lowest validation
    loss; then evaluating the test split once, on the weights kept
    (``test=False``: not at all, as for the trials of a sweep). Returns the
    network, whose ``metadata`` records the training facts (``best_epoch``, the
    epoch of lowest validation loss; ``kept_epoch``, the epoch whose weights it
    ends with; ``selection``, which data chose and whether the weights were
    restored), and the history."""
    net = models.mlp() if net is None else net
    if net.n_in != data.n_features:
        raise ValueError(
            f"the network takes {net.n_in} inputs but {data.name} images have {data.n_features} pixels: "
            f"make the first layer size {data.n_features}"
        )
    if net.n_out != data.n_classes:
        raise ValueError(
            f"the network has {net.n_out} outputs but {data.name} has {data.n_classes} classes: "
            f"make the last layer size {data.n_classes}"
        )
    recipe = default_recipe(data.n_train) if recipe is None else recipe
    opt = recipe.make_optimizer() if optimizer is None else optimizer
    shift = augmentations.random_shift(recipe.shift, data.image_shape) if recipe.shift else None
    patience = recipe.patience if recipe.validation_split else None
    keep_best = bool(recipe.validation_split) and (recipe.keep_best or patience is not None)
    history = fit(
        net,
        data.x_train, data.y_train,
        epochs=recipe.epochs,
        batch_size=recipe.batch_size,
        optimizer=opt,
        validation_split=recipe.validation_split,
        early_stopping=patience,
        restore_best=keep_best,
        progress=progress,
        schedule=recipe.schedule,
        warmup=recipe.warmup,
        clip_norm=recipe.clip_norm,
        augment=shift,
        initial_epoch=initial_epoch,
        callback=callback,
    )
    facts: dict[str, Any] = {"dataset": data.name, "n_train": data.n_train, "n_test": data.n_test,
                             "recipe": recipe.as_dict()}
    if test:
        scores = net.evaluate(data.x_test, data.y_test)  # the final report: once, after training
        facts.update({"test_accuracy": scores["accuracy"], "test_loss": scores["loss"]})
    selection = net.metadata.get("selection") or {}
    facts["best_epoch"] = selection.get("best_epoch")
    # the epoch whose weights the network ends with (and was tested and is saved with)
    facts["kept_epoch"] = (selection["best_epoch"] if selection.get("restored_best")
                           else net.metadata.get("epochs_trained"))
    net.metadata.update(facts)
    return net, history
