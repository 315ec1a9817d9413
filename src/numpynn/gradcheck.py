"""Finite-difference gradient checks, for tests and for learners' own networks.

For each parameter θ_i the central difference

    ∂C/∂θ_i ≈ (C(θ + ε e_i) − C(θ − ε e_i)) / 2ε

is compared with the backprop gradient from :meth:`Network.gradients`, in
float64, by the relative error ``|g_num − g_bp| / max(|g_num| + |g_bp|, floor)``.
The floor keeps the central difference's own rounding from being mistaken for a bug:
C(θ ± ε e_i) are each rounded at about ε_mach |C|, so g_num carries an error of about
ε_mach |C| / ε (2e-10 for C ≈ 1 and ε = 1e-6) whatever the component's size. The floor
is the larger of 1e-4 of the largest gradient component and 10⁶ ε_mach |C| / ε, so that
an error at that rounding level counts 1e-6 and one ten times larger reaches the 1e-5
line. Backprop that is right gives errors near 1e-7 or below; a wrong line gives
errors near 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .network import Network


@dataclass
class GradCheckResult:
    """The outcome of :func:`gradient_check`."""

    max_rel_error: float
    checked: int  # how many parameters were perturbed
    worst: str  # where the largest error is, e.g. "layers.1.W[3, 0]"

    @property
    def ok(self) -> bool:
        return self.max_rel_error < 1e-5

    def __str__(self) -> str:
        verdict = "OK" if self.ok else "MISMATCH"
        return (f"gradient check {verdict}: max relative error {self.max_rel_error:.2e} "
                f"over {self.checked} parameters (worst at {self.worst})")


def gradient_check(
    net: Network,
    x: Any,
    y: Any,
    eps: float = 1e-6,
    max_params: int | None = 2000,
    seed: int = 0,
) -> GradCheckResult:
    """Compare backprop's gradients with central differences, in float64.

    The network is copied to float64 first, so it is never changed. It works
    for any layers, built in or your own; the gradient is that of a training
    step (dropout on, with the same masks, drawn from ``seed``, for every
    evaluation). With more than ``max_params`` parameters a random subset of
    that size is checked (``None`` checks every one).

    >>> import numpynn as nn
    >>> net = nn.Network([nn.Dense(2, 3, "tanh"), nn.Dense(3, 1, "sigmoid")], "squared_error")
    >>> x, y = nn.datasets.xor()
    >>> nn.gradient_check(net, x, y).ok
    True
    """
    net64 = net.copy("float64")
    x64 = np.asarray(x)
    x64 = net64.as_float(x64) if x64.dtype == np.uint8 else x64.astype(np.float64)

    def cost() -> float:
        net64.reseed(0, seed)  # the same dropout masks for every evaluation
        return net64.gradients(x64, y)[0]

    c0 = cost()
    analytic = net64.grads.copy()  # ∇θ by backprop, in θ's flat order
    theta = net64.params
    n = theta.size
    if n == 0:
        return GradCheckResult(0.0, 0, "no parameters")
    rng = np.random.default_rng(seed)
    indices = np.arange(n) if max_params is None or n <= max_params else rng.choice(
        n, size=max_params, replace=False)
    # Errors are relative to each component, with a floor (module docstring): 1e-4 of the
    # largest gradient, or 10⁶ times the central difference's rounding, ε_mach |C| / ε, which
    # would swamp components far smaller than the rest (e.g. 4e-8 next to 1) without any bug.
    rounding = np.finfo(np.float64).eps * abs(c0) / eps
    floor = max(1e-4 * float(np.max(np.abs(analytic))), 1e6 * rounding, 1e-12)
    worst_err, worst_i = 0.0, int(indices[0])
    for i in indices:
        original = theta[i]
        theta[i] = original + eps
        c_plus = cost()
        theta[i] = original - eps
        c_minus = cost()
        theta[i] = original
        numeric = (c_plus - c_minus) / (2 * eps)
        err = abs(numeric - analytic[i]) / max(abs(numeric) + abs(analytic[i]), floor)
        if err > worst_err:
            worst_err, worst_i = err, int(i)
    return GradCheckResult(worst_err, len(indices), _name_of(net64, worst_i))


def _name_of(net: Network, i: int) -> str:
    """'{path}.{name}[index]' for flat parameter index i, e.g. 'layers.1.W[3, 0]' or
    'layers.2.layers.0.W[1, 0, 2, 2]' inside a block."""
    for path, layer in net.walk():
        for spec in layer.specs:
            size = math.prod(spec.shape)
            if i < size:
                where = ", ".join(str(int(k)) for k in np.unravel_index(i, spec.shape))
                return f"{path}.{spec.name}[{where}]"
            i -= size
    return "?"
