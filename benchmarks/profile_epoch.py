"""Where an epoch of training goes: per layer, forward and backward, against its GEMM floor.

Trains compare.py's dense network (784-128-64-10, sigmoid, softmax + cross-entropy,
float32, Adam 1e-3), numpynn's convnet (``--model convnet``: models.convnet, float32) or
its residual network (``--model resnet``: models.resnet, float32) on ``--rows`` uint8
rows (the bundled sample tiled), one warm-up epoch and then ``--epochs`` timed ones, each
a call of ``fit(threads=…)`` as compare.py makes it, and prints each epoch's seconds and,
with ``--layers``, a table: every layer's forward and backward seconds per epoch (the
rest is the loss, the optimiser and the batches' gathering; the layers inside a block are
listed under it, indented, and the block's own row counts them too), and the *GEMM
floor*: the same matrix products alone (forward, ∇W and ∂C/∂x of every Dense and Conv2D,
at this batch size) with BLAS on ``--threads`` cores, times the steps of an epoch. Under
a sampling profiler this shows the split between BLAS, NumPy's ufuncs, the C kernels and
Python itself:

    perf record -F 4000 -o perf.data python benchmarks/profile_epoch.py --epochs 8
    perf report -i perf.data --sort dso          # by library; --sort dso,sym for functions

``--cprofile`` prints Python's own profile of the timed epochs instead (top functions by
their own time; the ufuncs' time is counted in the function that calls them).

    python benchmarks/profile_epoch.py --model convnet --batch 256 --threads 2 --layers
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

import numpynn as nn
from numpynn import _kernels, datasets, models


def build(model: str) -> Any:
    if model == "convnet":
        return models.convnet(seed=0, dtype="float32")
    if model == "resnet":
        return models.resnet(seed=0, dtype="float32")
    return nn.Network([nn.Dense(784, 128, "sigmoid"), nn.Dense(128, 64, "sigmoid"),
                       nn.Dense(64, 10, "softmax")], loss="cross_entropy", seed=0, dtype="float32")


def timed_layers(net: Any) -> dict[str, list[float]]:
    """Wrap every layer's forward, backward and backward_delta in timers (instance attributes,
    so the network's and the blocks' calls go through them), at every depth of the tree;
    returns name -> [forward, backward], a nested layer's name indented under its block."""
    seconds: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    inside: set[str] = set()  # layers being timed now: backward's own call of backward_delta counts once
    for path, layer in net.walk():
        label = ".".join(part for part in path.split(".")[1:] if part != "layers")  # "3.0", "3.shortcut"
        name = f"{'  ' * label.count('.')}{label} {layer.name}"
        for method, slot in (("forward", 0), ("backward", 1), ("backward_delta", 1)):
            inner = getattr(layer, method, None)
            if inner is None:
                continue

            def wrapper(*args: Any, _inner: Any = inner, _name: str = name, _slot: int = slot,
                        **kwargs: Any) -> Any:
                if _name in inside:
                    return _inner(*args, **kwargs)
                inside.add(_name)
                started = time.perf_counter()
                try:
                    return _inner(*args, **kwargs)
                finally:
                    seconds[_name][_slot] += time.perf_counter() - started
                    inside.discard(_name)

            setattr(layer, method, wrapper)
        seconds[name]  # every layer gets a row, in order
    return seconds


def gemm_floor(net: Any, batch: int, threads: int, steps: int) -> float:
    """Seconds of an epoch's matrix products alone: each Dense's x W, xᵀ δ, δ Wᵀ and each
    Conv2D's [col 1] [Wm; b], [col 1]ᵀ δ and δ Wmᵀ (∂C/∂x only where a layer below has
    parameters), whole batches with BLAS on ``threads`` threads (the best of 5 repeats of
    one step's products, times ``steps``)."""
    rng = np.random.default_rng(0)
    products = []
    below = 0
    for _, layer in net.walk():
        needs_dx = below > 0
        below += layer.n_params
        if isinstance(layer, nn.Dense):
            x = rng.random((batch, layer.n_in), np.float32)
            w = rng.random((layer.n_in, layer.n_out), np.float32)
            d = rng.random((batch, layer.n_out), np.float32)
            products += [(x, w), (x.T, d)] + ([(d, w.T)] if needs_dx else [])
        elif isinstance(layer, nn.Conv2D):
            C = layer.in_channels
            O, Ho, Wo = layer.output_shape
            kh, kw = layer.kernel_size
            rows, K = batch * Ho * Wo, kh * kw * C + 1
            col = rng.random((rows, K), np.float32)
            w = rng.random((K, O), np.float32)
            d = rng.random((rows, O), np.float32)
            products += [(col, w), (col.T, d)] + ([(d, w[:-1].T)] if needs_dx else [])
    outs = [np.empty((a.shape[0], b.shape[1]), np.float32) for a, b in products]
    from threadpoolctl import threadpool_limits

    best = math.inf
    with threadpool_limits(limits=threads, user_api="blas"):
        for _ in range(5):
            started = time.perf_counter()
            for (a, b), out in zip(products, outs, strict=True):
                np.matmul(a, b, out=out)
            best = min(best, time.perf_counter() - started)
    return best * steps


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=("mlp", "convnet", "resnet"), default="mlp")
    p.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--threads", type=int, default=None, help="fit(threads=…) (default: fit's default)")
    p.add_argument("--rows", type=int, default=60_000, help="rows per epoch (default 60,000)")
    p.add_argument("--epochs", type=int, default=5, help="timed epochs (default 5)")
    p.add_argument("--kernels", choices=("auto", "c", "numpy"), default="auto")
    p.add_argument("--layers", action="store_true", help="time every layer and print the table")
    p.add_argument("--cprofile", action="store_true", help="print cProfile's top functions")
    args = p.parse_args(argv)
    _kernels.use(args.kernels)
    sample = datasets.load("mnist-sample")
    rows = np.arange(args.rows) % sample.x_train.shape[0]
    x, y = np.ascontiguousarray(sample.x_train[rows]), sample.y_train[rows]
    net = build(args.model)
    opt = nn.Adam(lr=1e-3)

    def epoch(e: int) -> float:
        started = time.perf_counter()
        net.fit(x, y, epochs=e + 1, initial_epoch=e, batch_size=args.batch, optimizer=opt, progress=False,
                threads=args.threads)
        return time.perf_counter() - started

    epoch(0)  # warm-up
    seconds_by_layer = timed_layers(net) if args.layers else None
    profile = None
    if args.cprofile:
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
    seconds = [epoch(e) for e in range(1, args.epochs + 1)]
    if profile is not None:
        import pstats

        profile.disable()
        pstats.Stats(profile, stream=sys.stdout).sort_stats("tottime").print_stats(20)
    threads = args.threads if args.threads is not None else "default"
    print(f"{args.model}, batch {args.batch}, threads {threads}, {_kernels.backend_name()} kernels: "
          f"seconds per epoch of {args.rows:,} rows " + " ".join(f"{s:.3f}" for s in seconds)
          + f" (median {np.median(seconds):.3f}, best {min(seconds):.3f})")
    if seconds_by_layer is not None:
        n = len(seconds)
        total = float(np.sum(seconds)) / n
        print(f"{'layer':<24}{'forward':>9}{'backward':>10}")
        inside = 0.0
        for name, (fwd, bwd) in seconds_by_layer.items():
            print(f"{name:<24}{fwd / n:9.3f}{bwd / n:10.3f}")
            if not name.startswith(" "):  # a block's row already counts its layers
                inside += (fwd + bwd) / n
        print(f"{'rest':<24}{total - inside:19.3f}   (loss, optimiser, batches)")
        cores = args.threads or __import__("os").cpu_count() or 1
        floor = gemm_floor(net, args.batch, cores, math.ceil(args.rows / args.batch))
        print(f"epoch {total:.3f} s; GEMM floor on {cores} core(s) {floor:.3f} s; "
              f"ratio {total / floor:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
