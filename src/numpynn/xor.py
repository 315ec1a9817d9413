"""The XOR gate: the first demonstration of a network learning what no single
layer can.

A 2-2-1 network, sigmoid everywhere, squared error, trained full-batch on the
four rows of the truth table with plain gradient descent. Whether this network
has true local minima is contested (Hamey 1995 finds no finite stationary point
that is a minimum; Sprinkhuizen-Kuyper and Boers find regions of non-strict
minima where hidden units saturate); what is observed here is that from about
one initialisation in five, gradient descent stalls on a flat, saturated region
without giving the right answers. :func:`train_xor` detects that (no
convergence within ``patience`` epochs) and restarts from a fresh
initialisation drawn from the same seed, and says so in its result.

This module is the XOR demonstration (the network, its training and restarts,
behind ``numpynn xor`` and the XOR plots); the truth table itself is data, and
lives in :func:`numpynn.datasets.xor` like every data set. :data:`X` and
:data:`Y` are that table in float64.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .datasets.xor import xor
from .layers import Dense
from .network import Network
from .optimizers import SGD
from .training import fit

X, Y = xor(np.float64)  # the truth table: X (4, 2), Y (4, 1)

__all__ = ["X", "Y", "XorResult", "train_xor", "xor_network"]


@dataclass
class XorResult:
    """What :func:`train_xor` did."""

    network: Network
    converged: bool
    epochs: int  # epochs of the final attempt
    total_epochs: int  # over all attempts
    restarts: int
    loss: float
    seconds: float
    outputs: list[list[float]] = field(default_factory=list)  # [x1, x2, target, output]

    def as_dict(self) -> dict[str, Any]:
        return {
            "converged": self.converged,
            "epochs": self.epochs,
            "total_epochs": self.total_epochs,
            "restarts": self.restarts,
            "loss": self.loss,
            "seconds": self.seconds,
            "outputs": self.outputs,
        }


def xor_network(seed: int | None = 0, dtype: str = "float64") -> Network:
    """The classic 2-2-1 all-sigmoid network with squared error."""
    return Network(
        [Dense(2, 2, activation="sigmoid"), Dense(2, 1, activation="sigmoid")],
        loss="squared_error",
        seed=seed,
        dtype=dtype,
    )


def _attempt_seed(seed: int, restarts: int) -> int:
    """The seed of the attempt after ``restarts`` restarts: ``seed`` itself first, then
    one drawn from the seed sequence ``[seed, restarts]``."""
    if restarts == 0:
        return seed
    return int(np.random.SeedSequence([seed, restarts]).generate_state(1)[0])


def _within(outputs: np.ndarray, tolerance: float) -> bool:
    """Every output ``(4,)`` within ``tolerance`` of its XOR target."""
    return bool(np.all(np.abs(outputs - Y[:, 0]) < tolerance))


def train_xor(
    seed: int = 0,
    epochs: int = 5000,
    lr: float = 20.0,
    tolerance: float = 0.1,
    patience: int = 1000,
    max_restarts: int = 20,
    check_every: int = 25,
) -> XorResult:
    """Train the 2-2-1 network on XOR until every output is within ``tolerance``
    of its target, for at most ``epochs`` epochs per attempt.

    An attempt that has not converged after ``patience`` epochs is taken to be
    stuck in a local minimum and restarted from a new initialisation; the
    ``k``-th restart uses the seed sequence ``[seed, k]``, so results are
    reproducible. Full-batch SGD with learning rate ``lr``.
    """
    started = time.perf_counter()
    total = 0
    restarts = 0
    while True:
        net = xor_network(_attempt_seed(seed, restarts))
        may_restart = restarts < max_restarts

        def check(epoch: int, logs: dict[str, Any], net: Network = net,
                  may_restart: bool = may_restart) -> bool:
            """Stop when converged, or when stuck long enough to restart."""
            if epoch % check_every:
                return False
            return _within(net.layers[-1].a[:, 0], tolerance) or (epoch >= patience and may_restart)

        history = fit(net, X, Y, epochs=epochs, batch_size=4, optimizer=SGD(lr=lr), progress=False,
                      shuffle=False, callback=check)
        ran = history["epoch"][-1]
        total += ran
        outputs = net.predict(X)[:, 0]
        converged = _within(outputs, tolerance)
        if converged or restarts >= max_restarts or ran >= epochs:
            break
        restarts += 1
    loss = net.evaluate(X, Y)["loss"]
    return XorResult(
        network=net,
        converged=converged,
        epochs=ran,
        total_epochs=total,
        restarts=restarts,
        loss=loss,
        seconds=time.perf_counter() - started,
        outputs=[
            [float(a), float(b), float(t), float(o)]
            for (a, b), t, o in zip(X, Y[:, 0], outputs, strict=True)
        ],
    )
