"""``numpynn explain``: backprop you can watch, for one image and one target class.

Reads IMAGE exactly as ``numpynn predict`` does (:func:`numpynn.images.preprocess`), runs
:func:`numpynn.explain.explain` (one forward and one backward pass in inference mode, then one
plain gradient step on a copy) and prints, per layer from the output down, its output shape,
‖∂C/∂output‖, ‖∇θ‖ of its parameters and their largest changes, then the probabilities
before and after the step. ``--json`` prints :meth:`~numpynn.explain.Explanation.as_json`;
``--out FIG.png`` draws :func:`numpynn.plots.explain_figure`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .common import EXIT_OK, UsageError, check_targets, count, positive_float, say

HELP = "one forward and backward pass on an image, layer by layer, and one gradient step"

#: Entries of ∇θ printed per layer (the largest |∇θ| first).
CHANGES_SHOWN = 3


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--label", metavar="K", type=count, default=None,
                   help="the target class K of the loss (default: the predicted class)")
    p.add_argument("--lr", metavar="R", type=positive_float, default=None,
                   help="the rate R of the step θ ← θ − R∇θ (default: the smallest of 0.1, 0.3, 1, 3, "
                        "10, 30, 100 that moves p(K) by at least 0.05)")
    p.add_argument("--out", metavar="FIG.png", default=None,
                   help="draw the passes as one figure (PNG; .svg or .pdf by suffix)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def run(args: argparse.Namespace) -> int:
    from .. import images, load
    from ..explain import check_classifier, explain

    check_targets(args.out)
    net = load(args.model)
    try:
        check_classifier(net)
    except (TypeError, ValueError) as e:
        raise UsageError(f"{args.model}: {e}") from None
    if net.n_in != 784:
        raise UsageError(f"{args.model} takes {net.n_in} inputs, not 28x28 = 784 pixel images")
    if args.label is not None and args.label >= net.n_out:
        raise UsageError(f"--label must be a class 0..{net.n_out - 1}, not {args.label}")
    x = images.preprocess(args.image)
    e = explain(net, x, label=args.label, lr=args.lr)
    if args.out:
        from .. import plots

        plots.write_explain_figure(e, args.out)
    if args.json:
        print(json.dumps(e.as_json()))
    else:
        print("\n".join(report(e, args.image)))
    if args.out:
        say(f"figure written to {args.out}")
    return EXIT_OK


# ----------------------------------------------------------------------------- the text


def report(e: Any, name: str = "the image") -> list[str]:
    """The lines ``numpynn explain`` prints for the :class:`~numpynn.explain.Explanation` ``e``."""
    p = e.probabilities
    lines = [f"{name}: predicted {e.prediction} (p = {p[e.prediction]:.4f}); target K = {e.label} "
             f"(p = {p[e.label]:.4f}); loss C = -ln p(K) = {e.loss:.4f}",
             "backward pass, from the output down (‖·‖: the root of the sum of squares; "
             f"Δ = -R·∇θ, the change a step at R = {e.lr:g} makes):",
             f"  {'layer':<28} {'output':<14} {'‖∂C/∂output‖':>13} {'‖∇θ‖':>11}"]
    for t in reversed(e.layers):
        kind = t.type + (f" {t.activation}" if t.activation else "")
        lines.append(f"  {t.index:>2} {kind:<25} {str(t.output_shape):<14} {t.output_grad_norm:>13.6g} "
                     f"{t.param_grad_norm:>11.6g}{_note(t)}")
        if t.top:
            shown = ", ".join(_change(c, t.index, e.lr) for c in t.top[:CHANGES_SHOWN])
            lines.append(f"     largest: {shown}")
    lines.append(f"  {'input':<28} {str(tuple(e.input.shape)):<14} {_norm(e.input_grad):>13.6g}"
                 f" {'':>11}  (‖∂C/∂x‖)")
    lines.append(f"one step θ ← θ − R∇θ (math.md §6) on a copy: {e.lr_rule}")
    lines.append(f"  {'class':<16} {'before':>8} {'after':>8} {'change':>9}")
    for k, (before, after) in enumerate(zip(e.probabilities, e.after_step, strict=True)):
        tags = [tag for tag, is_it in (("K", k == e.label), ("predicted", k == e.prediction)) if is_it]
        label = f"{k}" + (f" ({', '.join(tags)})" if tags else "")
        lines.append(f"  {label:<16} {before:>8.4f} {after:>8.4f} {after - before:>+9.4f}")
    return lines


def _note(t: Any) -> str:
    if t.passes:
        return "  (passes its input on)"
    if not t.n_params:
        return "  (no parameters)"
    return ""


def _change(c: Any, index: int, lr: float) -> str:
    """One entry of ∇θ: where, its gradient and the step's change, e.g. ``W[578,41] ∇ -0.0238 Δ +0.00238``."""
    top = f"layers.{index}"
    inner = c.path[len(top) + 1:] + "." if c.path.startswith(top + ".") else ""
    where = f"{inner}{c.param}[{','.join(str(i) for i in c.index)}]"
    return f"{where} ∇ {c.grad:+.4g} Δ {-lr * c.grad:+.4g}"


def _norm(a: Any) -> float:
    import numpy as np

    return float(np.linalg.norm(np.asarray(a, dtype=np.float64).ravel()))
