"""Training speed: numpynn against PyTorch (CPU), scikit-learn and a GEMM-only floor.

Every contender trains the same network, 784-128-64-10 with sigmoid hidden
layers and a softmax + cross-entropy output (or, with ``--model cnn``,
numpynn's digit convnet, or with ``--model resnet`` its residual network with
batch norm, against PyTorch and the floor only), in float32, on the same
60,000 x 784 uint8 images, with the same optimiser (Adam, lr 1e-3, or SGD,
lr 0.1, momentum 0.9). Epochs are interleaved: each round runs one epoch of
every contender in turn, in an order shuffled afresh each round (with a fixed
seed, so a run can be repeated), so a noisy machine slows them all alike and no
contender always follows the same neighbour. Round 0 is a warm-up and is not timed.

Each thread count of ``--threads`` (default ``all``: os.cpu_count()) is a set of
rows: numpynn with ``fit(threads=N)``, PyTorch (tuned) with ``torch.set_num_threads(N)``,
scikit-learn and the GEMM floor with BLAS on N threads; PyTorch (default) keeps
torch's own count and is shown in every set. All sets of a batch size are
interleaved in the same rounds.

    python benchmarks/compare.py                      # batch 32, 64, 128, 256; Adam
    python benchmarks/compare.py --optimizer both --markdown results.md
    python benchmarks/compare.py --quick              # smoke test, well under a minute
    python benchmarks/compare.py --skip torch,sklearn # as if they were not installed
    python benchmarks/compare.py --model cnn --batch-sizes 64   # the convnet
    python benchmarks/compare.py --model resnet --batch-sizes 64 --threads 1,all --rows 12000

After the dense tables come the cost of the ±1 px shifts on the default sample recipe's
epoch (benchmarks/shifts.py) and inference speed (benchmarks/inference.py).

See docs/benchmarks.md for the method and how to read the numbers.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import numpynn as nn
from numpynn import _kernels, datasets

SIZES = (784, 128, 64, 10)
SEED = 0
N_ROWS = 60_000
SKIPPABLE = ("torch", "sklearn", "c", "numpy", "floor", "shifts", "inference")
MODELS = ("mlp", "cnn", "resnet")


# --- optional libraries ------------------------------------------------------------------
def _import(name: str, skip: set[str]) -> Any:
    """The module, or None when it is missing or skipped with ``--skip``."""
    if name in skip:
        return None
    try:
        return __import__(name)
    except ImportError:
        return None


def blas_limits(threads: int | None) -> Any:
    """A context limiting BLAS threads (threadpoolctl), or a no-op for None / no threadpoolctl."""
    import contextlib

    if threads is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")


def blas_info() -> list[dict[str, Any]]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [d for d in threadpool_info() if d.get("user_api") == "blas"]


# --- data --------------------------------------------------------------------------------
@dataclass
class Data:
    x: np.ndarray  # (n, 784) uint8
    y: np.ndarray  # (n,) int64
    x_test: np.ndarray
    y_test: np.ndarray
    description: str
    _xf: np.ndarray | None = field(default=None, repr=False)

    @property
    def x_float(self) -> np.ndarray:
        """The training images as float32 in [0, 1] (one copy, shared by the peers that need it)."""
        if self._xf is None:
            self._xf = np.multiply(self.x, np.float32(1 / 255), dtype=np.float32)
        return self._xf


def load_data(folder: str | None, rows: int) -> Data:
    """Full MNIST (``--data`` or the cache), else the bundled sample tiled to ``rows`` rows."""
    path = Path(folder) if folder else datasets.find_mnist(download=False)
    if path is not None:
        ds = datasets.load_folder(path)
        x, y = ds.x_train, ds.y_train
        what = f"full MNIST from {path}"
        if rows < x.shape[0]:
            x, y = x[:rows], y[:rows]
            what += f", first {rows:,} training rows"
        elif rows > x.shape[0]:
            idx = np.arange(rows) % x.shape[0]
            x, y = x[idx], y[idx]
            what += f", {x.shape[0]:,} training rows tiled to {rows:,}"
        return Data(np.ascontiguousarray(x), y, ds.x_test, ds.y_test,
                    f"{what}; test: {ds.x_test.shape[0]:,} MNIST test images")
    ds = datasets.load("mnist-sample")
    n0 = ds.x_train.shape[0]
    idx = np.arange(rows) % n0
    times = rows / n0
    what = (
        f"bundled mnist-sample: its {n0:,} training digits tiled {times:g}x to {rows:,} rows "
        "(full MNIST is not cached; pass --data FOLDER to use it)"
        if rows > n0
        else f"bundled mnist-sample: first {rows:,} of its {n0:,} training digits "
        "(full MNIST is not cached)"
    )
    return Data(np.ascontiguousarray(ds.x_train[idx]), ds.y_train[idx], ds.x_test, ds.y_test,
                f"{what}; test: the sample's {ds.x_test.shape[0]:,} held-out digits")


def initial_net(model: str = "mlp") -> nn.Network:
    """The network every numpynn contender starts from (and PyTorch copies)."""
    if model == "cnn":
        return nn.models.convnet(seed=SEED)
    if model == "resnet":
        return nn.models.resnet(seed=SEED, dtype="float32")
    return nn.Network(
        [nn.Dense(784, 128, "sigmoid"), nn.Dense(128, 64, "sigmoid"), nn.Dense(64, 10, "softmax")],
        loss="cross_entropy",
        seed=SEED,
        dtype="float32",
    )


# --- contenders --------------------------------------------------------------------------
class Contender:
    """One way of training the network: ``epoch()`` trains one pass over the data and
    returns its wall-clock seconds; ``accuracy()`` is the test accuracy (or None)."""

    name: str = "?"
    short: str = "?"  # column label in the summary
    threads: int | None = None  # None: the library's own default
    last: float = math.nan  # seconds of the latest epoch
    note: str = ""

    def epoch(self) -> float:
        raise NotImplementedError

    def accuracy(self) -> float | None:
        return None


class Numpynn(Contender):
    def __init__(self, data: Data, batch: int, optimizer: str, threads: int | None,
                 kernels: str, name: str, model: str = "mlp", shift: int = 0) -> None:
        self.name, self.data, self.batch, self.kernels = name, data, batch, kernels
        self.short = f"numpynn {kernels}" + (" shifts" if shift else "")
        self.threads = threads
        self.net = initial_net(model)
        self.opt = nn.Adam(lr=1e-3) if optimizer == "adam" else nn.SGD(lr=0.1, momentum=0.9)
        self.augment = nn.augment.random_shift(shift) if shift else None
        if shift:
            self.note = f"random shifts of ±{shift} px, the default sample recipe's augmentation"
        self.done = 0

    def epoch(self) -> float:
        _kernels.use(self.kernels)  # a global switch: set before every epoch
        started = time.perf_counter()
        self.net.fit(self.data.x, self.data.y, epochs=self.done + 1, initial_epoch=self.done,
                     batch_size=self.batch, optimizer=self.opt, progress=False, threads=self.threads,
                     augment=self.augment)
        seconds = time.perf_counter() - started
        self.done += 1
        return seconds

    def accuracy(self) -> float:
        return self.net.evaluate(self.data.x_test, self.data.y_test)["accuracy"]


def torch_twin(torch: Any, net: nn.Network) -> Any:
    """The same network in PyTorch, layer for layer, starting from ``net``'s weights:
    Conv2D -> Conv2d, BatchNorm2D -> BatchNorm2d (same momentum and eps), Dense -> Linear,
    Residual -> σ(F(x) + S(x)), GlobalAvgPool2D -> AdaptiveAvgPool2d(1) + Flatten, each
    followed by its activation; the output's softmax is left to ``F.cross_entropy``."""
    from numpynn import layers as L

    T = torch.nn
    acts = {"relu": T.ReLU, "sigmoid": T.Sigmoid, "tanh": T.Tanh, "identity": T.Identity,
            "leaky_relu": lambda: T.LeakyReLU(0.01)}

    class Residual(T.Module):
        def __init__(self, body: Any, shortcut: Any, act: Any) -> None:
            super().__init__()
            self.body, self.shortcut, self.act = body, shortcut, act

        def forward(self, x: Any) -> Any:
            return self.act(self.body(x) + (x if self.shortcut is None else self.shortcut(x)))

    def act(layer: Any, last: bool) -> list[Any]:
        name = layer.activation.name
        if name == "softmax" and last:
            return []  # F.cross_entropy takes the logits
        return [] if name == "identity" else [acts[name]()]

    def twin(layer: Any, last: bool) -> list[Any]:
        with torch.no_grad():
            if isinstance(layer, L.Reshape):
                return [T.Unflatten(1, layer.shape)]
            if isinstance(layer, L.Flatten):
                return [T.Flatten()]
            if isinstance(layer, L.Dropout):
                return [T.Dropout(layer.p)]
            if isinstance(layer, L.MaxPool2D):
                return [T.MaxPool2d(layer.kernel_size, layer.stride)]
            if isinstance(layer, L.GlobalAvgPool2D):
                return [T.AdaptiveAvgPool2d(1), T.Flatten()]
            if isinstance(layer, L.Residual):
                body = T.Sequential(*[m for child in layer.layers for m in twin(child, False)])
                short = None if layer.shortcut is None else T.Sequential(*twin(layer.shortcut, False))
                return [Residual(body, short, T.Sequential(*act(layer, False)))]
            W, b = (torch.from_numpy(np.ascontiguousarray(layer.params[k])) if k in layer.params else None
                    for k in ("W", "b"))
            if isinstance(layer, L.Conv2D):
                m = T.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                             layer.padding)
                m.weight.copy_(W)  # (O, C, kh, kw) in both
                m.bias.copy_(b)
            elif isinstance(layer, L.Dense):
                m = T.Linear(layer.n_in, layer.n_out)
                m.weight.copy_(W.T)  # Linear keeps (out, in)
                m.bias.copy_(b)
            elif isinstance(layer, L.BatchNorm2D):
                m = T.BatchNorm2d(layer.num_channels, eps=layer.eps, momentum=layer.momentum)
                m.weight.copy_(torch.from_numpy(layer.params["gamma"].copy()))
                m.bias.copy_(torch.from_numpy(layer.params["beta"].copy()))
            else:
                raise TypeError(f"compare.py has no PyTorch twin of {type(layer).__name__}")
            return [m, *act(layer, last)]

    last = len(net.layers) - 1
    return T.Sequential(*[m for i, layer in enumerate(net.layers) for m in twin(layer, i == last)])


class Torch(Contender):
    """PyTorch CPU. ``tuned``: fused optimiser, batches gathered from a uint8 tensor and
    scaled per step, an explicit thread count; otherwise the textbook loop on a
    pre-scaled float32 tensor with the default (foreach) optimiser and threads."""

    def __init__(self, torch: Any, data: Data, batch: int, optimizer: str, threads: int | None,
                 tuned: bool, model: str = "mlp") -> None:
        import torch.nn.functional as F

        self.torch, self.F, self.data, self.batch, self.tuned = torch, F, data, batch, tuned
        self.threads = threads
        self.name = "PyTorch (tuned)" if tuned else "PyTorch (default)"
        self.short = "torch tuned" if tuned else "torch default"
        self.model = torch_twin(torch, initial_net(model))  # same layers, same initial weights
        params = self.model.parameters()
        extra: dict[str, Any] = {"fused": True} if tuned else {}
        if optimizer == "adam":
            self.opt = torch.optim.Adam(params, lr=1e-3, **extra)
        else:
            self.opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, **extra)
        if tuned:
            self.x = torch.from_numpy(data.x)  # uint8, gathered and scaled per batch
            self.note = "fused optimiser, uint8 gather + .float().mul_(1/255) per batch"
        else:
            self.x = torch.from_numpy(data.x_float)
            self.note = "default (foreach) optimiser, pre-scaled float32 tensor"
        self.y = torch.from_numpy(data.y)
        self.gen = torch.Generator().manual_seed(SEED)
        self.default_threads = torch.get_num_threads()

    def epoch(self) -> float:
        torch, F, B = self.torch, self.F, self.batch
        torch.set_num_threads(self.threads or self.default_threads)
        model, opt, x, y, tuned = self.model, self.opt, self.x, self.y, self.tuned
        scale = 1.0 / 255.0
        n = x.shape[0]
        started = time.perf_counter()
        order = torch.randperm(n, generator=self.gen)
        for start in range(0, n, B):
            idx = order[start : start + B]
            if tuned:
                xb = x.index_select(0, idx).float().mul_(scale)
            else:
                xb = x[idx]
            model.train()
            loss = F.cross_entropy(model(xb), y[idx])
            if tuned:
                opt.zero_grad(set_to_none=True)
            else:
                opt.zero_grad()
            loss.backward()
            opt.step()
        seconds = time.perf_counter() - started
        torch.set_num_threads(self.default_threads)
        return seconds

    def accuracy(self) -> float:
        torch = self.torch
        self.model.eval()
        with torch.inference_mode():
            logits = self.model(torch.from_numpy(self.data.x_test).float().mul_(1 / 255))
            return float((logits.argmax(1).numpy() == self.data.y_test).mean())


class Sklearn(Contender):
    def __init__(self, data: Data, batch: int, optimizer: str, threads: int | None) -> None:
        from sklearn.neural_network import MLPClassifier

        self.name, self.data, self.threads = "scikit-learn MLP", data, threads
        self.short = "sklearn"
        self.note = "partial_fit per epoch on pre-scaled float32; alpha=0"
        common: dict[str, Any] = dict(
            hidden_layer_sizes=(128, 64), activation="logistic", batch_size=batch, alpha=0.0,
            shuffle=True, n_iter_no_change=10**9,
            # an instance, not an int: partial_fit re-seeds from an int every call,
            # which would visit the rows in the same order every epoch
            random_state=np.random.RandomState(SEED),
        )
        if optimizer == "adam":
            self.clf = MLPClassifier(solver="adam", learning_rate_init=1e-3, **common)
        else:
            self.clf = MLPClassifier(solver="sgd", learning_rate_init=0.1, momentum=0.9,
                                     nesterovs_momentum=False, learning_rate="constant", **common)
        self.x_test = np.multiply(data.x_test, np.float32(1 / 255), dtype=np.float32)
        self.started = False

    def epoch(self) -> float:
        x = self.data.x_float  # built outside the timed region
        with warnings.catch_warnings(), blas_limits(self.threads):
            warnings.simplefilter("ignore")
            started = time.perf_counter()
            if self.started:
                self.clf.partial_fit(x, self.data.y)
            else:
                self.clf.partial_fit(x, self.data.y, classes=np.arange(10))
                self.started = True
            return time.perf_counter() - started

    def accuracy(self) -> float:
        with blas_limits(self.threads):
            return float(self.clf.score(self.x_test, self.data.y_test))


Product = tuple[np.ndarray, np.ndarray, np.ndarray]  # (A, B, out): out = A @ B


class GemmFloor(Contender):
    """Only the matrix products of each training step, on preallocated float32 buffers
    with ``np.matmul(..., out=)`` and BLAS on the set's thread count: what any NumPy
    implementation must pay. Per weight layer, with the batch's shapes (the whole batch
    in one product each, not numpynn's shards):

    - Conv2D (im2col): forward [col 1] (B·Ho·Wo, K+1) @ [Wm; b] (K+1, O); ∇W [col 1]ᵀ @ δ;
      ∂C/∂col δ (B·Ho·Wo, O) @ Wmᵀ (O, K), K = kh·kw·C;
    - Dense: forward x (B, n_in) @ W; ∇W xᵀ @ δ; ∂C/∂x δ @ Wᵀ;

    ∂C/∂input only where the layer needs it (not for the first weight layer). Forward in
    layer order, then backward in reverse, as a step runs them."""

    def __init__(self, net: nn.Network, n: int, batch: int, threads: int | None) -> None:
        self.n, self.batch, self.threads = n, batch, threads
        rng = np.random.default_rng(SEED)
        f32 = np.float32

        def buf(*shape: int) -> np.ndarray:
            return (rng.random(shape, dtype=f32) - f32(0.5)) * f32(0.2)

        self.layers: list[tuple[int, Any]] = []  # (rows per sample, (samples -> products))
        for _, layer in nn.layers.walk(net.layers):
            if isinstance(layer, nn.Conv2D):
                O, Ho, Wo = layer.output_shape
                kh, kw = layer.kernel_size
                K, per = kh * kw * layer.in_channels, Ho * Wo
                bufs = (buf(batch * per, K + 1), buf(K + 1, O), buf(batch * per, O), buf(batch * per, O),
                        buf(K + 1, O), buf(O, K), buf(batch * per, K) if layer.needs_input_grad else None)
            elif isinstance(layer, nn.Dense):
                per, i, o = 1, layer.n_in, layer.n_out
                W = buf(i, o)
                bufs = (buf(batch, i), W, buf(batch, o), buf(batch, o), buf(i, o), W.T,
                        buf(batch, i) if layer.needs_input_grad else None)
            else:
                continue
            self.layers.append((per, bufs))
        full = self.products(batch)
        self.steps = [full] * (n // batch) + ([self.products(n % batch)] if n % batch else [])
        count = len(full[0]) + len(full[1])
        self.name = f"GEMM floor ({count} matmuls/step)"
        self.short = "GEMM floor"
        self.note = ("the weight layers' matrix products alone (im2col for convolutions: forward, ∇W, "
                     "∂C/∂col), whole-batch, BLAS on the set's threads")

    def products(self, samples: int) -> tuple[list[Product], list[Product]]:
        """The forward products in layer order and the backward ones in reverse, for a
        step of ``samples`` samples."""
        forward: list[Product] = []
        backward: list[Product] = []
        for per, (col, Wb, z, d, gW, Wt, gx) in self.layers:
            r = samples * per
            forward.append((col[:r], Wb, z[:r]))
            back = [(col[:r].T, d[:r], gW)]  # ∇W = [col 1]ᵀ δ (∇b its last row)
            if gx is not None:
                back.append((d[:r], Wt, gx[:r]))  # ∂C/∂col = δ Wmᵀ
            backward[:0] = back
        return forward, backward

    def epoch(self) -> float:
        mm = np.matmul
        with blas_limits(self.threads):
            started = time.perf_counter()
            for forward, backward in self.steps:
                for A, B, out in forward:
                    mm(A, B, out=out)
                for A, B, out in backward:
                    mm(A, B, out=out)
            return time.perf_counter() - started


# --- the run -----------------------------------------------------------------------------
@dataclass
class Row:
    name: str
    short: str
    threads: str  # the thread count this row's figures used
    times: list[float]
    accuracy: float | None
    note: str = ""
    group: int = 0  # the thread count of its set (--threads)

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def round_orders(n: int, rounds: int, seed: int = SEED) -> list[list[int]]:
    """The order the ``n`` contenders run in, round by round: a fresh shuffle each round
    from a fixed seed. (A rotation would keep the neighbours: each contender would
    always run right after the same one, inheriting its caches and clock state.)"""
    rng = np.random.default_rng(seed)
    return [[int(j) for j in rng.permutation(n)] for _ in range(rounds)]


def contender_makers(data: Data, batch: int, optimizer: str, args: argparse.Namespace,
                     libs: dict[str, Any]) -> dict[int, list[tuple[str, Callable[[], Contender]]]]:
    """Per thread count of ``--threads``: (key, maker) of its contenders in table order.
    PyTorch (default) runs with torch's own count: one contender, listed in every set."""
    model = args.model
    rows = data.x.shape[0]
    kernels = ["c", "numpy"] if libs["c"] else ["numpy"]
    if libs["c"] and "numpy" in args.skip_set:
        kernels = ["c"]
    names = {"c": "numpynn (C kernels)", "numpy": "numpynn (numpy kernels)"}
    torch = libs["torch"]
    sets: dict[int, list[tuple[str, Callable[[], Contender]]]] = {}
    for N in args.thread_counts:
        makers: list[tuple[str, Callable[[], Contender]]] = []
        for k in kernels:
            makers.append((f"numpynn {k}@{N}",
                           lambda k=k, N=N: Numpynn(data, batch, optimizer, N, k, names[k], model)))
        if libs["shifts"] and model == "mlp":
            k = kernels[0]
            makers.append((f"numpynn shifts@{N}", lambda k=k, N=N: Numpynn(
                data, batch, optimizer, N, k, "numpynn, ±1 px shifts", model, shift=1)))
        if torch is not None:
            makers += [("torch default", lambda: Torch(torch, data, batch, optimizer, None, False, model)),
                       (f"torch tuned@{N}", lambda N=N: Torch(torch, data, batch, optimizer, N, True, model))]
        if libs["sklearn"] is not None and model == "mlp":  # scikit-learn has no convnet
            makers.append((f"sklearn@{N}", lambda N=N: Sklearn(data, batch, optimizer, N)))
        if libs["floor"]:
            makers.append((f"floor@{N}", lambda N=N: GemmFloor(initial_net(model), rows, batch, N)))
        sets[N] = makers
    return sets


def run_batch(data: Data, batch: int, optimizer: str, args: argparse.Namespace,
              libs: dict[str, Any]) -> dict[int, list[Row]]:
    """Every contender of every thread count, interleaved in the same rounds; the rows of
    each thread count's set, in table order."""
    sets = contender_makers(data, batch, optimizer, args, libs)
    made: dict[str, Contender] = {}
    for N, makers in sets.items():
        for key, make in makers:
            if key not in made:
                made[key] = make()
                if key.endswith(f"@{N}"):
                    made[key].short += f"@{N}"
    contenders = list(made.values())
    times: list[list[float]] = [[] for _ in contenders]
    rounds = args.epochs + 1  # round 0 is the warm-up
    for r, order in enumerate(round_orders(len(contenders), rounds)):
        for j in order:
            seconds = contenders[j].epoch()
            contenders[j].last = seconds
            if r > 0:
                times[j].append(seconds)
        if args.verbose:  # in the order they ran
            label = "warm-up" if r == 0 else f"round {r}"
            line = ", ".join(f"{contenders[j].short} {contenders[j].last:.3f}" for j in order)
            print(f"    batch {batch} {label}: {line}", file=sys.stderr, flush=True)
    accuracy = {key: c.accuracy() for key, c in made.items()}
    timed = dict(zip(made, times, strict=True))
    rows: dict[int, list[Row]] = {}
    for N, makers in sets.items():
        rows[N] = []
        for key, _ in makers:
            c = made[key]
            th = f"{c.default_threads} (own)" if isinstance(c, Torch) and c.threads is None else str(N)
            rows[N].append(Row(c.name, c.short, th, timed[key], accuracy[key], c.note, N))
    return rows


def machine_header(args: argparse.Namespace, libs: dict[str, Any], data: Data) -> list[str]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    load = ""
    if hasattr(os, "getloadavg"):
        load = ", load average {:.2f} {:.2f} {:.2f} at start".format(*os.getloadavg())
    versions = [f"Python {platform.python_version()}", f"numpy {np.__version__}",
                f"numpynn {nn.__version__}"]
    for key, label in (("torch", "torch"), ("sklearn", "scikit-learn")):
        mod = libs[key]
        if key == "sklearn" and args.model != "mlp":
            continue  # not used: it has no convnet
        versions.append(f"{label} {mod.__version__}" if mod is not None else f"{label} -")
    versions.append(f"numpynn kernels: {'C' if libs['c'] else 'NumPy only'}")
    try:
        import threadpoolctl

        versions.append(f"threadpoolctl {threadpoolctl.__version__}")
    except ImportError:
        versions.append("threadpoolctl - (thread limits are not applied)")
    blas = "; ".join(
        f"{b.get('internal_api')} {b.get('version')} ({b.get('architecture', '?')}, "
        f"{b.get('num_threads')} threads, {Path(b.get('filepath', '')).name})"
        for b in blas_info()
    ) or "unknown (threadpoolctl missing)"
    lines = [
        f"machine: {cpu}; {os.cpu_count()} logical CPUs, {usable} usable{load}",
        f"system: {platform.system()} {platform.release()} ({platform.machine()})",
        "versions: " + ", ".join(versions),
        f"BLAS (NumPy, scikit-learn): {blas}",
    ]
    if libs["torch"] is not None:
        torch = libs["torch"]
        lines.append(
            f"PyTorch: MKL {'yes' if torch.backends.mkl.is_available() else 'no'}, oneDNN "
            f"{'yes' if torch.backends.mkldnn.is_available() else 'no'}, default "
            f"{torch.get_num_threads()} intra-op threads"
        )
    counts = ", ".join(map(str, args.thread_counts))
    torch_own = "torch's own count, above" if libs["torch"] is not None else "torch's own count"
    networks = {
        "mlp": "784-128-64-10, sigmoid hidden, softmax + cross-entropy, float32; "
               "PyTorch starts from numpynn's initial weights, scikit-learn from its own",
        "cnn": "numpynn's digit convnet (numpynn.models.convnet: conv 5x5 16, pool, conv 5x5 32, pool, "
               "128, dropout 0.25, 10), float32; PyTorch starts from numpynn's initial weights",
        "resnet": "numpynn.models.resnet (stem conv 3x3 16 + batch norm + max-pool, three residual "
                  "stages of conv 3x3 + batch norm, 16/32/64 channels, 1x1 stride-2 shortcuts, global "
                  "average pool, dense 10), float32; PyTorch: the same Conv2d/BatchNorm2d (momentum 0.1, "
                  "eps 1e-5)/residual adds/AdaptiveAvgPool2d(1)/Linear, from numpynn's initial weights",
    }
    lines += [
        f"threads: sets of {counts} (--threads {args.threads}; all = os.cpu_count() = {os.cpu_count()}): "
        "numpynn fit(threads=N) with BLAS on one thread, PyTorch (tuned) torch.set_num_threads(N), "
        f"scikit-learn and the GEMM floor BLAS on N threads; PyTorch (default) keeps {torch_own}",
        f"data: {data.description}",
        f"network: {networks[args.model]}",
        f"timing: {args.epochs} timed epoch(s) per contender after 1 warm-up epoch, interleaved "
        "round by round; s/epoch is the median; accuracy is on the test set after all "
        f"{args.epochs + 1} epochs",
    ]
    return lines


def fmt_acc(a: float | None) -> str:
    return "-" if a is None else f"{100 * a:.2f}%"


Sets = dict[tuple[int, int], list[Row]]  # (batch, thread count) -> its rows, numpynn first


def table(sets: Sets, n: int) -> tuple[list[str], list[list[str]]]:
    head = ["batch", "threads", "contender", "ran on", "s/epoch", "min", "spread", "samples/s",
            "peer/numpynn", "vs floor", "test acc"]
    body = []
    for (batch, N), rows in sets.items():
        ref = rows[0].median  # numpynn's default configuration comes first
        floor = next((r.median for r in rows if r.name.startswith("GEMM floor")), None)
        for r in rows:
            med = r.median
            spread = (max(r.times) - min(r.times)) / med if len(r.times) > 1 else 0.0
            body.append([
                str(batch), str(N), r.name, r.threads, f"{med:.3f}", f"{min(r.times):.3f}",
                f"{100 * spread:.0f}%" if len(r.times) > 1 else "-",
                f"{n / med:,.0f}", f"{med / ref:.2f}",
                f"{med / floor:.2f}" if floor else "-", fmt_acc(r.accuracy),
            ])
    return head, body


def render_text(head: list[str], body: list[list[str]], left: frozenset[int] = frozenset({2}),
                group: int = 2) -> str:
    """Aligned columns; a blank line wherever the first ``group`` cells change."""
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    out = [line(head), "  ".join("-" * w for w in widths)]
    prev = None
    for row in body:
        if prev is not None and row[:group] != prev:
            out.append("")
        out.append(line(row))
        prev = row[:group]
    return "\n".join(out)


def render_markdown(head: list[str], body: list[list[str]],
                    left: frozenset[int] = frozenset({2})) -> str:
    align = [":---" if i in left else "---:" for i in range(len(head))]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def summary(sets: Sets) -> tuple[list[str], list[list[str]]]:
    """One row per batch and thread count: numpynn's s/epoch, each peer's time over it,
    numpynn over the floor, and numpynn's speed-up over its own 1-thread run."""
    names = []
    for rows in sets.values():
        for r in rows[1:]:
            if r.short.split("@")[0] not in names and not r.name.startswith("GEMM floor"):
                names.append(r.short.split("@")[0])
    first = next(iter(sets.values()))[0]
    floors = any(r.name.startswith("GEMM floor") for rows in sets.values() for r in rows)
    ones = {batch: rows[0].median for (batch, N), rows in sets.items() if N == 1}
    scaling = bool(ones) and any(N != 1 for _, N in sets)
    head = ["batch", "threads", f"{first.short.split('@')[0]} s/epoch", *[f"{n} / numpynn" for n in names]]
    head += ["numpynn / floor"] * floors + ["numpynn speed-up vs 1 thread"] * scaling
    body = []
    for (batch, N), rows in sets.items():
        by_name = {r.short.split("@")[0]: r.median for r in rows}
        ref = rows[0].median
        floor = next((r.median for r in rows if r.name.startswith("GEMM floor")), None)
        cells = [str(batch), str(N), f"{ref:.3f}",
                 *[f"{by_name[n] / ref:.2f}" if n in by_name else "-" for n in names]]
        if floors:
            cells.append(f"{ref / floor:.2f}" if floor else "-")
        if scaling:
            cells.append(f"{ones[batch] / ref:.2f}" if batch in ones else "-")
        body.append(cells)
    return head, body


def _sibling(name: str) -> Any:
    """Another script of benchmarks/, as a module."""
    import importlib.util

    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shifts_section(args: argparse.Namespace) -> list[str]:
    """benchmarks/shifts.py: the default sample recipe's epoch with and without ±1 px shifts."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rounds = "3" if args.quick else "40"
        _sibling("shifts").main(["--rounds", rounds, "--kernels", _kernels.backend_name()])
    return out.getvalue().rstrip("\n").splitlines()


def inference_section(args: argparse.Namespace) -> list[str]:
    """benchmarks/inference.py: Network.predict on 10,000 images, /api/predict latency."""
    inference = _sibling("inference")
    net, data = inference.trained_network()
    return inference.report(net, data, requests=50 if args.quick else 1000, repeats=2 if args.quick else 20)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-sizes", default="32,64,128,256",
                   help="comma-separated batch sizes (default 32,64,128,256)")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs per contender (default 3)")
    p.add_argument("--optimizer", choices=("adam", "sgd", "both"), default="adam",
                   help="adam (lr 1e-3), sgd (lr 0.1, momentum 0.9) or both (default adam)")
    p.add_argument("--threads", default="all",
                   help="comma-separated thread counts, each a set of rows, 'all' = os.cpu_count() "
                        "(default all): numpynn fit(threads=N), torch.set_num_threads(N) for PyTorch "
                        "(tuned), BLAS threads for scikit-learn and the floor; e.g. 1,all")
    p.add_argument("--model", choices=MODELS, default="mlp",
                   help="mlp: 784-128-64-10 against PyTorch, scikit-learn and the GEMM floor (default); "
                        "cnn: numpynn's digit convnet, resnet: its residual network with batch norm, "
                        "each against the same network in PyTorch and the convolutions' GEMM floor")
    p.add_argument("--data", default=None, help="a folder with the four MNIST IDX files")
    p.add_argument("--rows", type=int, default=None, help=f"training rows (default {N_ROWS:,})")
    p.add_argument("--skip", default="", help=f"comma-separated, any of: {', '.join(SKIPPABLE)}")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 6,000 rows, batch 64, 1 timed epoch")
    p.add_argument("--markdown", metavar="FILE", help="also write the results as Markdown")
    p.add_argument("-v", "--verbose", action="store_true", help="print each round's times")
    args = p.parse_args(argv)
    if args.quick:
        args.rows = args.rows or 6_000
        args.epochs = 1
        if args.batch_sizes == p.get_default("batch_sizes"):
            args.batch_sizes = "64"
    args.rows = args.rows or N_ROWS
    try:
        args.batches = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    except ValueError:
        p.error(f"--batch-sizes must be whole numbers separated by commas, not {args.batch_sizes!r}")
    if not args.batches or min(args.batches) < 1:
        p.error("--batch-sizes needs at least one positive batch size")
    if args.epochs < 1:
        p.error("--epochs must be at least 1")
    args.thread_counts = []
    for item in args.threads.split(","):
        item = item.strip().lower()
        if not item:
            continue
        try:
            N = (os.cpu_count() or 1) if item == "all" else int(item)
        except ValueError:
            p.error(f"--threads takes whole numbers or 'all' separated by commas, not {args.threads!r}")
        if N < 1:
            p.error("--threads: every thread count must be at least 1")
        if N not in args.thread_counts:
            args.thread_counts.append(N)
    if not args.thread_counts:
        p.error("--threads needs at least one thread count")
    args.skip_set = {s.strip().lower() for s in args.skip.split(",") if s.strip()}
    unknown = args.skip_set - set(SKIPPABLE)
    if unknown:
        p.error(f"--skip: unknown {', '.join(sorted(unknown))}; use {', '.join(SKIPPABLE)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    skip = args.skip_set
    notes: list[str] = []
    libs: dict[str, Any] = {
        "torch": _import("torch", skip),
        "sklearn": _import("sklearn", skip) if args.model == "mlp" else None,  # no convnets
        "floor": "floor" not in skip,
        "shifts": "shifts" not in skip and args.model == "mlp",
        "inference": "inference" not in skip and args.model == "mlp",
    }
    if libs["inference"] and _import("PIL", skip) is None:
        libs["inference"] = False
        notes.append("Pillow not installed: the /api/predict latency (inference) is left out")
    libs["c"] = "c" not in skip and "c" in _kernels.available()
    for key, label in (("torch", "PyTorch"), ("sklearn", "scikit-learn")):
        if libs[key] is None and (key == "torch" or args.model == "mlp"):
            why = "skipped (--skip)" if key in skip else "not installed"
            notes.append(f"{label} {why}: its rows are left out")
    if not libs["c"]:
        why = "skipped (--skip)" if "c" in skip else "not built (no C compiler at install time)"
        notes.append(f"the C kernels {why}: numpynn runs with its numpy kernels only")
    if not libs["floor"]:
        notes.append("GEMM floor skipped (--skip)")
    if libs["shifts"]:
        notes.append("numpynn, ±1 px shifts: numpynn's first row with the default sample recipe's random "
                     "shifts (uint8 images moved as they are scaled); its peer/numpynn is their cost")
    if args.model != "mlp":
        notes.append(f"--model {args.model}: no scikit-learn (it has no convnet), no shifts or inference "
                     "sections; the GEMM floor is the convolutions' im2col products and the dense layers'")
    elif libs["sklearn"] is not None:
        notes.append("scikit-learn gets the images pre-scaled to float32 (it cannot scale per batch); "
                      "the others read uint8 and scale each batch, inside the timed epoch")
    if libs["c"] and "numpy" in skip:
        notes.append("numpynn's numpy kernels skipped (--skip numpy): only its C kernels run")
    if libs["torch"] is not None:
        notes.append("PyTorch (default) reads a pre-scaled float32 tensor; torch.compile is not used")

    data = load_data(args.data, args.rows)
    header = machine_header(args, libs, data)
    print("\n".join(header))
    for note in notes:
        print(f"note: {note}")
    print(flush=True)

    optimizers = ["adam", "sgd"] if args.optimizer == "both" else [args.optimizer]
    titles = {"adam": "Adam, lr 1e-3", "sgd": "SGD, lr 0.1, momentum 0.9"}
    md = ["# numpynn training speed", "", *[f"- {h}" for h in header],
          *[f"- note: {n}" for n in notes], ""]
    n = data.x.shape[0]
    wall = time.perf_counter()
    for optimizer in optimizers:
        sets: Sets = {}
        for batch in args.batches:
            print(f"  {titles[optimizer]}: batch {batch} ...", file=sys.stderr, flush=True)
            for N, rows in run_batch(data, batch, optimizer, args, libs).items():
                sets[batch, N] = rows
        head, body = table(sets, n)
        title = (f"{titles[optimizer]}: {args.model}, seconds per epoch of {n:,} rows "
                 f"(peer/numpynn > 1: numpynn is faster; threads: the set, ran on: what the row used)")
        print(title)
        print(render_text(head, body))
        shead, sbody = summary(sets)
        print()
        print(render_text(shead, sbody, frozenset()))
        print(flush=True)
        md += [f"## {title}", "", render_markdown(head, body), "", "Summary:", "",
               render_markdown(shead, sbody, frozenset()), ""]
    _kernels.use("c" if libs["c"] else "numpy")  # the sections run what a user's training runs
    for key, title, section in (("shifts", "Shifts: the default sample recipe's epoch", shifts_section),
                                ("inference", "Inference", inference_section)):
        if libs[key]:
            print(f"  {title} ...", file=sys.stderr, flush=True)
            lines = section(args)
            print(f"{title}\n" + "\n".join(lines) + "\n", flush=True)
            md += [f"## {title}", "", "```", *lines, "```", ""]
    print(f"total {time.perf_counter() - wall:.1f} s", file=sys.stderr)
    if args.markdown:
        Path(args.markdown).write_text("\n".join(md) + "\n", encoding="utf-8")
        print(f"wrote {args.markdown}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
