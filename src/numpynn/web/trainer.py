"""The page's training: "watch it learn" in a background thread, and the default web model.

Both use one short recipe (:data:`WEB_RECIPE_EPOCHS` epochs of the MNIST
recipe, :mod:`numpynn.recipes`): every epoch is scored on the recipe's
validation split of the training images; the test set is evaluated once, at
the end. The ten test digits that "watch it learn" shows are only shown.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from .._checks import one_line
from ..metrics import PIXEL_SCALE, classes
from ..network import Network
from ._json import ApiError, num
from ._log import log_failure, say
from .api import App, check_network, describe

__all__ = ["N_TEST_DIGITS", "WEB_RECIPE_EPOCHS", "Trainer", "default_model_path", "load_or_train_default",
           "web_recipe"]

#: Epochs of the default model and of "watch it learn" (about 96% on the sample).
WEB_RECIPE_EPOCHS = 10
#: The test digits shown while a network learns: the first of each class.
N_TEST_DIGITS = 10


def web_recipe() -> Any:
    """The recipe of the default web model and of "watch it learn" (a 10% validation split)."""
    from ..recipes import Recipe

    return Recipe(epochs=WEB_RECIPE_EPOCHS, lr=5e-3, schedule="cosine", shift=1,
                  notes=["numpynn serve: short recipe, about 96% on the bundled sample"])


class Trainer:
    """One "watch it learn" job at a time, in a background thread.

    ``start()`` trains a fresh network (``layers``, ``recipe``) on the data
    (default: the bundled MNIST sample), recording each epoch's history row
    (validation scores from the recipe's split) and the current predictions
    for a few fixed test digits; when it ends ``app`` switches to the new
    network (``app.set_network``). ``stop()`` asks the job to stop after the
    current epoch (used at shutdown and by tests); a stopped job's network is
    not adopted.
    """

    def __init__(
        self,
        app: App,
        data: Any = None,
        layers: tuple[int, ...] | None = None,
        recipe: Any = None,
        n_digits: int = N_TEST_DIGITS,
    ) -> None:
        from ..models import DEFAULT_LAYERS

        self.app = app
        self._data = data
        self.layers = tuple(layers) if layers is not None else DEFAULT_LAYERS
        self.recipe = recipe if recipe is not None else web_recipe()
        self.n_digits = n_digits
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._runs = 0
        self._state = "idle"
        self._error: str | None = None
        self._history: dict[str, list[Any]] = {}
        self._predictions: list[dict[str, Any]] = []
        self._predictions_epoch = 0
        self._digits_x: np.ndarray | None = None
        self._digits_y: list[int] = []
        self._started = 0.0
        self._finished = 0.0

    @property
    def state(self) -> str:
        return self._state

    def data(self) -> Any:
        """The training data, loaded on first use."""
        if self._data is None:
            from .. import datasets

            self._data = datasets.load("mnist-sample", download=False, progress=False)
        return self._data

    def _pick_digits(self, data: Any) -> None:
        y = np.asarray(data.y_test)
        picks = []
        for label in range(int(y.max()) + 1):
            hits = np.flatnonzero(y == label)
            if hits.size:
                picks.append(int(hits[0]))
            if len(picks) == self.n_digits:
                break
        self._digits_x = np.asarray(data.x_test[picks])
        self._digits_y = [int(v) for v in y[picks]]

    def start(self) -> dict[str, Any]:
        """Start a job; raises ApiError(409) if one is running. Returns the status (with pixels)."""
        with self._lock:
            if self._state == "running":
                raise ApiError(409, "a training job is already running: wait for it to finish")
            self._state = "running"  # taken now, so a second request gets 409 at once
        try:
            data = self.data()
            if self._digits_x is None:
                self._pick_digits(data)
        except Exception as e:
            with self._lock:
                self._state, self._error = "failed", f"could not load the training data: {one_line(e)}"
            raise ApiError(500, self._error) from None
        with self._lock:
            self._stop.clear()
            self._error = None
            self._history = {k: [] for k in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy",
                                             "seconds")}
            self._predictions, self._predictions_epoch = [], 0
            self._started, self._finished = time.time(), 0.0
            self._runs += 1
            self._thread = threading.Thread(target=self._run, args=(data, self._runs),
                                            name="numpynn-web-train", daemon=True)
            self._thread.start()
        return self.status(pixels=True)

    def stop(self, timeout: float | None = 10.0) -> None:
        """Ask the running job (if any) to stop after its current epoch, and wait for it."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the job to end; True if none is running any more."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self._state != "running"

    def _record_predictions(self, net: Network, epoch: int) -> None:
        assert self._digits_x is not None
        probs = net.predict(self._digits_x)
        preds = [{"digit": int(c), "probability": num(p.max(), 4)}
                 for c, p in zip(classes(probs), probs, strict=True)]
        with self._lock:
            self._predictions, self._predictions_epoch = preds, epoch

    def _run(self, data: Any, run: int) -> None:
        from .. import recipes
        from ..models import mlp

        try:
            net = mlp(self.layers, seed=run - 1)
            check_network(net)
            self._record_predictions(net, 0)  # what an untrained network says

            def on_epoch(epoch: int, row: dict[str, Any]) -> bool:
                with self._lock:
                    for key in self._history:
                        value = row.get(key)
                        self._history[key].append(int(value) if key == "epoch" else num(value))
                self._record_predictions(net, epoch)
                return self._stop.is_set()

            net, _ = recipes.train_classifier(data, net, self.recipe, progress=False, callback=on_epoch)
            if self._stop.is_set():
                state = "stopped"
            else:
                self.app.set_network(net, "trained in the page (watch it learn)")
                state = "done"
        except Exception as e:  # reported in the status (and one line in the log), never raised
            log_failure("the training job failed", e)
            with self._lock:
                self._error = one_line(e) or type(e).__name__
            state = "failed"
        with self._lock:
            self._state = state
            self._finished = time.time()

    def status(self, pixels: bool = False) -> dict[str, Any]:
        with self._lock:
            history = {k: list(v) for k, v in self._history.items()}
            out: dict[str, Any] = {
                "state": self._state,
                "epoch": len(history.get("epoch", [])),
                "epochs": int(self.recipe.epochs),
                "layers": list(self.layers),
                "history": history,
                "digits": {"labels": list(self._digits_y)},
                "predictions": list(self._predictions),
                "predictions_epoch": self._predictions_epoch,
                "seconds": num((self._finished or time.time()) - self._started, 4) if self._started else 0.0,
                "error": self._error,
                "model_generation": self.app.generation,
            }
            if pixels and self._digits_x is not None:
                x = self._digits_x
                if x.dtype != np.uint8:
                    x = np.rint(np.clip(x, 0.0, 1.0) / PIXEL_SCALE).astype(np.uint8)
                out["digits"]["pixels"] = x.astype(int).tolist()
        return out


# ----------------------------------------------------------------------------- the default model


def default_model_path() -> Path:
    """Where ``numpynn serve`` keeps its model: ``$NUMPYNN_DATA/web-model.safetensors``
    if that is set, else ``platformdirs.user_cache_dir("numpynn")/web-model.safetensors``."""
    from ..datasets.mnist import cache_dir

    return cache_dir() / "web-model.safetensors"


def load_or_train_default(progress: bool = True, path: Path | None = None) -> tuple[Network, str]:
    """The cached web model, trained on the bundled sample first if missing (once)."""
    from .. import datasets
    from ..errors import InvalidFileError
    from ..models import mlp
    from ..recipes import train_classifier
    from ..serialization import load

    path = default_model_path() if path is None else Path(path)
    if path.is_file():
        try:
            net = load(path)
            check_network(net)
            return net, f"{path} ({describe(net, accuracy=True)})"
        except (InvalidFileError, OSError, ValueError) as e:
            say(f"numpynn serve: warning: the cached model is unusable ({one_line(e)}); training a new one")
    recipe = web_recipe()
    data = datasets.load("mnist-sample", download=False, progress=False)
    net = mlp()
    say(f"numpynn serve: no model given and none cached: training {describe(net)} "
         f"on the bundled {data.n_train:,} MNIST digits ({recipe.epochs} epochs, once)")

    def on_epoch(epoch: int, row: dict[str, Any]) -> None:
        if progress:
            val = row.get("val_accuracy")
            say(f"  epoch {epoch:>2}/{recipe.epochs}  loss {row['loss']:.4f}"
                 + (f"  validation accuracy {100 * val:.1f}%" if val is not None else ""))

    net, _ = train_classifier(data, net, recipe, progress=progress, callback=on_epoch)
    acc = net.metadata.get("test_accuracy")
    if progress and isinstance(acc, float):
        say(f"  test accuracy {100 * acc:.1f}% (the test set, once, after training)")
    from .._io import make_folder
    from ..errors import WriteError
    from ..serialization import save

    try:
        make_folder(path.parent)
        save(net, str(path))
        say(f"numpynn serve: model saved to {path}")
    except WriteError as e:  # the page works without the cache: it trains again next time
        say(f"numpynn serve: warning: {one_line(e)}; serving the model without caching it "
             "(set NUMPYNN_DATA to a writable folder)")
    return net, f"{path} ({describe(net, accuracy=True)})"
