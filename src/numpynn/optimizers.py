"""Optimisers: one ``step(params, grads)`` over flat parameter buffers.

The network keeps every layer's ``W`` and ``b`` as views into one flat vector
``θ`` (and their gradients in another, ``g``), so an optimiser updates all
parameters with a few whole-array operations. Each step is the same as
``torch.optim.SGD`` / ``torch.optim.Adam`` given the same arguments (tested).

Notation: θ parameters, g = ∇θ C, α learning rate, λ weight decay, t step.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from . import _kernels
from ._registry import Registry

Array = np.ndarray

#: The optimisers by name; each registers itself where it is defined.
OPTIMIZERS: Registry[type[Optimizer]] = Registry("optimizer")


class Optimizer(ABC):
    """Base class. ``lr`` may be changed between steps (schedules do so)."""

    #: The rate a recipe gives this optimiser when it is chosen without one; None: the model's
    #: recipe rate (an Adam rate, chosen on validation splits).
    recipe_lr: float | None = None

    def __init__(self, lr: float, weight_decay: float = 0.0) -> None:
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"learning rate must be a positive number, not {lr!r}")
        if not (math.isfinite(weight_decay) and weight_decay >= 0):
            raise ValueError(f"weight_decay must be zero or positive, not {weight_decay!r}")
        self.lr = float(lr)
        self.initial_lr = self.lr  # what learning-rate schedules scale
        self.weight_decay = float(weight_decay)
        self.t = 0  # steps taken

    @abstractmethod
    def step(self, params: Array, grads: Array) -> None:
        """Update ``params`` (flat, in place) from ``grads`` (flat, same shape).
        ``grads`` may be overwritten."""

    # --- state, for checkpoints -------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Hyper-parameters (``"config"``), step count and state arrays (``"arrays"``)."""
        arrays = {k: None if v is None else v.copy() for k, v in self._arrays().items()}
        return {"config": self.config(), "t": self.t, "arrays": arrays}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.t = int(state["t"])
        for name, value in state["arrays"].items():
            setattr(self, name, None if value is None else np.array(value))

    @abstractmethod
    def config(self) -> dict[str, Any]:
        ...

    def _arrays(self) -> dict[str, Array | None]:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"


@OPTIMIZERS.register("sgd")
class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum (heavy ball or Nesterov).

    With λ > 0 first ``g ← g + λθ``. With momentum μ:
    ``v ← μv + (1 − dampening) g`` (``v ← g`` on the first step), then
    ``g ← g + μv`` (Nesterov) or ``g ← v``. Finally ``θ ← θ − α g``.
    """

    recipe_lr = 0.1  # plain gradient descent wants a far larger rate than Adam's

    def __init__(
        self,
        lr: float = 0.1,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        dampening: float = 0.0,
    ) -> None:
        super().__init__(lr, weight_decay)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), not {momentum!r}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.dampening = float(dampening)
        self.velocity: Array | None = None
        self._scratch: Array | None = None  # working memory, not state

    def step(self, params: Array, grads: Array) -> None:
        g = grads  # overwritten in place: no temporaries in the hot loop
        if self._scratch is None or self._scratch.shape != params.shape:
            self._scratch = np.empty_like(params)
        tmp = self._scratch
        if self.weight_decay:
            g += np.multiply(params, self.weight_decay, out=tmp)  # g ← g + λθ
        if self.momentum:
            if self.velocity is None or self.t == 0 or self.velocity.shape != g.shape:
                self.velocity = g.copy()  # v ← g on the first step
            else:
                v = self.velocity
                v *= self.momentum  # v ← μv + (1 − dampening) g
                v += np.multiply(g, 1.0 - self.dampening, out=tmp) if self.dampening else g
            if self.nesterov:
                g += np.multiply(self.velocity, self.momentum, out=tmp)  # g ← g + μv
            else:
                np.copyto(g, self.velocity)  # g ← v
        self.t += 1
        g *= self.lr  # θ ← θ − α g
        params -= g

    def config(self) -> dict[str, Any]:
        return {
            "name": "sgd",
            "lr": self.lr,
            "momentum": self.momentum,
            "nesterov": self.nesterov,
            "weight_decay": self.weight_decay,
            "dampening": self.dampening,
        }

    def _arrays(self) -> dict[str, Array | None]:
        return {"velocity": self.velocity}


@OPTIMIZERS.register("adam")
class Adam(Optimizer):
    """Adam (Kingma & Ba), with L2 weight decay added to the gradient as in
    ``torch.optim.Adam``; ``decoupled=True`` gives AdamW's decoupled decay.

    ``m ← β₁m + (1 − β₁)g``, ``v ← β₂v + (1 − β₂)g²``,
    ``θ ← θ − α · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)``.

    The fast kernel folds the bias corrections into two scalars,
    ``θ ← θ − α' m / (√v + ε')`` with ``α' = α √(1 − β₂ᵗ) / (1 − β₁ᵗ)`` and
    ``ε' = ε √(1 − β₂ᵗ)``: the same value, in one pass over memory.
    """

    def __init__(
        self,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled: bool = False,
    ) -> None:
        super().__init__(lr, weight_decay)
        b1, b2 = betas
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"Adam betas must be in [0, 1), not {betas!r}")
        if not eps > 0:
            raise ValueError(f"eps must be positive, not {eps!r}")
        self.betas = (float(b1), float(b2))
        self.eps = float(eps)
        self.decoupled = bool(decoupled)
        self.m: Array | None = None
        self.v: Array | None = None

    def step(self, params: Array, grads: Array) -> None:
        if self.m is None or self.v is None or self.m.shape != params.shape:
            self.m = np.zeros_like(params)  # new parameters: start the moments afresh
            self.v = np.zeros_like(params)
            self.t = 0
        b1, b2 = self.betas
        if self.weight_decay:
            if self.decoupled:
                params *= 1.0 - self.lr * self.weight_decay  # θ ← θ(1 − αλ)  (AdamW)
            else:
                grads += self.weight_decay * params  # g ← g + λθ
        self.t += 1
        bc1 = 1.0 - b1**self.t
        bc2 = 1.0 - b2**self.t
        _kernels.adam_update(
            params, grads, self.m, self.v, b1, b2,
            step=self.lr * math.sqrt(bc2) / bc1,  # α' = α √(1 − β₂ᵗ) / (1 − β₁ᵗ)
            eps=self.eps * math.sqrt(bc2),  # ε' = ε √(1 − β₂ᵗ)
        )

    def config(self) -> dict[str, Any]:
        return {
            "name": "adam",
            "lr": self.lr,
            "betas": list(self.betas),
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "decoupled": self.decoupled,
        }

    def _arrays(self) -> dict[str, Array | None]:
        return {"m": self.m, "v": self.v}


@OPTIMIZERS.register("adamw")
class AdamW(Adam):
    """AdamW (Loshchilov & Hutter): Adam with decoupled weight decay, ``torch.optim.AdamW``.

    ``θ ← θ(1 − αλ)`` first, then the Adam step on the undecayed gradient; the decay
    does not pass through the moments, so every weight shrinks at the same rate.
    """

    def __init__(
        self,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ) -> None:
        super().__init__(lr, betas, eps, weight_decay, decoupled=True)

    def config(self) -> dict[str, Any]:
        config = super().config()
        del config["decoupled"]
        return {**config, "name": "adamw"}



def from_config(config: dict[str, Any]) -> Optimizer:
    """Rebuild an optimiser from ``Optimizer.config()``."""
    config = dict(config)
    name = config.pop("name", "")
    if "betas" in config:
        config["betas"] = tuple(config["betas"])
    return OPTIMIZERS[str(name)](**config)


def get(optimizer: str | Optimizer | None, lr: float | None = None) -> Optimizer:
    """An optimiser from a name (``"adam"``, ``"sgd"``) or an instance; ``None`` is Adam."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    cls = OPTIMIZERS["adam" if optimizer is None else str(optimizer)]
    return cls() if lr is None else cls(lr=lr)
