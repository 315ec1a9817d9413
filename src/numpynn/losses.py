"""Loss functions C and the output delta δ_L.

Shapes: ``z``, ``a``, ``y`` are (B, n), one row per sample; ``y`` holds target
rows (one-hot rows for classes). The loss reported is the **mean over the
mini-batch**, so every gradient here carries a factor 1/B:

- squared error  ``C = (1/B) Σ_x ½ Σ_j (y_j − a_j)²``, ``∂C/∂a = (a − y)/B``;
- cross-entropy  ``C = −(1/B) Σ_x Σ_j y_j log a_j`` with a softmax output, or the
  binary form ``−(1/B) Σ_x Σ_j [y_j log a_j + (1 − y_j) log(1 − a_j)]`` with a
  sigmoid output. Both are computed from ``z`` (log-softmax, softplus), never
  from ``log a``, so a saturated output gives a large finite loss, not ``inf``.

The output layer's delta ``δ_L = ∂C/∂z_L`` is ``∂C/∂a ⊙ σ'(z_L)`` in general
(with softmax's full Jacobian); for cross-entropy paired with its natural
output (softmax or sigmoid) the σ' cancels and ``δ_L = (a − y)/B``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TypeVar

import numpy as np

from ._registry import Registry
from .activations import Activation, Sigmoid, Softmax

Array = np.ndarray


#: The built-in losses by name; each registers itself where it is defined
#: (``mse`` is another name for ``squared_error``).
LOSSES: Registry[type[Loss]] = Registry("loss")
L = TypeVar("L", bound="type[Loss]")
_ALIASES = {"squared_error": ("mse",)}


def register_loss(cls: L) -> L:
    """Class decorator: register a :class:`Loss` subclass under its ``name``."""
    LOSSES.add(cls.name, cls, *_ALIASES.get(cls.name, ()))
    return cls


class Loss(ABC):
    """A loss: ``value`` (mean over the batch) and ``output_delta`` (δ_L)."""

    name: str = "loss"

    def check_output(self, activation: Activation) -> None:  # noqa: B027 - any output by default
        """Raise ``ValueError`` if this loss cannot follow ``activation``."""

    @abstractmethod
    def value(self, z: Array, a: Array, y: Array, activation: Activation) -> float:
        """Mean loss over the B rows. z, a, y: (B, n); ``activation`` is the output's σ."""
        ...

    @abstractmethod
    def grad_a(self, a: Array, y: Array) -> Array:
        """∂C/∂a, (B, n), including the 1/B of the mean."""
        ...

    def fuses_with(self, activation: Activation) -> bool:
        """True if δ_L = ∂C/∂z_L has a simpler, stabler form than ∂C/∂a ⊙ σ'(z_L) after this σ."""
        return False

    def output_delta(self, z: Array, a: Array, y: Array, activation: Activation) -> Array:
        """δ_L = ∂C/∂z_L, (B, n): ∇_a C ⊙ σ'(z_L) (or softmax's Jacobian)."""
        # δ_L = ∇_a C ⊙ σ'(z_L)
        return activation.delta(self.grad_a(a, y), z, a)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


@register_loss
class SquaredError(Loss):
    """C = ½ Σ_j (y_j − a_j)², averaged over the batch; ∂C/∂a = (a − y)/B."""

    name = "squared_error"

    def value(self, z: Array, a: Array, y: Array, activation: Activation) -> float:
        diff = a - y
        return float(0.5 * np.einsum("ij,ij->", diff, diff, dtype=np.float64) / a.shape[0])

    def grad_a(self, a: Array, y: Array) -> Array:
        g = np.subtract(a, y)
        g *= 1.0 / a.shape[0]
        return g


@register_loss
class CrossEntropy(Loss):
    """Cross-entropy after a softmax (categorical) or a sigmoid (binary) output.

    Softmax: C = −Σ_j y_j log a_j with log a = z − logsumexp(z).
    Sigmoid: C = Σ_j [y_j softplus(−z_j) + (1 − y_j) softplus(z_j)]
           = Σ_j [softplus(z_j) − y_j z_j], since −log σ(z) = softplus(−z).
    In both cases δ_L = (a − y)/B.
    """

    name = "cross_entropy"

    def check_output(self, activation: Activation) -> None:
        if not isinstance(activation, (Softmax, Sigmoid)):
            raise ValueError(
                f"cross_entropy needs a softmax or sigmoid output layer, not {activation.name}: "
                "change the last activation or use loss='squared_error'"
            )

    def value(self, z: Array, a: Array, y: Array, activation: Activation) -> float:
        z64 = z.astype(np.float64, copy=False)
        if isinstance(activation, Softmax):
            # log a = z − logsumexp(z), computed from z − max(z)
            shifted = z64 - z64.max(axis=1, keepdims=True)
            log_a = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            return float(-np.einsum("ij,ij->", y, log_a) / z.shape[0])
        # binary, sigmoid output: softplus(z) − y z, with softplus(z) = logaddexp(0, z)
        return float(np.sum(np.logaddexp(0.0, z64) - y * z64) / z.shape[0])

    def fuses_with(self, activation: Activation) -> bool:
        return isinstance(activation, (Softmax, Sigmoid))

    def output_delta(self, z: Array, a: Array, y: Array, activation: Activation) -> Array:
        # δ_L = (a − y)/B: σ' cancels against ∂C/∂a for softmax and sigmoid outputs
        delta = np.subtract(a, y)
        delta *= 1.0 / a.shape[0]
        return delta

    def grad_a(self, a: Array, y: Array) -> Array:
        raise TypeError("cross_entropy computes δ_L = (a − y)/B directly; use output_delta")




def get(loss: str | Loss) -> Loss:
    """A :class:`Loss` from its name (``"squared_error"``, ``"cross_entropy"``) or an instance."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str):
        return LOSSES[loss]()
    raise TypeError(f"loss must be a name or a Loss, not {type(loss).__name__}")
