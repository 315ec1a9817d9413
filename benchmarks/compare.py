"""Training speed: numpynn against PyTorch (CPU), scikit-learn and a GEMM-only floor.

Every contender trains the same network, 784-128-64-10 with sigmoid hidden
layers and a softmax + cross-entropy output (or, with ``--model cnn``,
numpynn's digit convnet, against PyTorch only), in float32, on the same
60,000 x 784 uint8 images, with the same optimiser (Adam, lr 1e-3, or SGD,
lr 0.1, momentum 0.9). Epochs are interleaved: each round runs one epoch of
every contender in turn, in an order shuffled afresh each round (with a fixed
seed, so a run can be repeated), so a noisy machine slows them all alike and no
contender always follows the same neighbour. Round 0 is a warm-up and is not timed.

    python benchmarks/compare.py                      # batch 32, 64, 128, 256; Adam
    python benchmarks/compare.py --optimizer both --markdown results.md
    python benchmarks/compare.py --quick              # smoke test, well under a minute
    python benchmarks/compare.py --skip torch,sklearn # as if they were not installed
    python benchmarks/compare.py --model cnn --batch-sizes 64   # the convnet

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
SKIPPABLE = ("torch", "sklearn", "c", "floor", "shifts", "inference")


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


def default_blas_threads() -> int:
    """The BLAS thread count NumPy uses when nothing limits it."""
    for info in blas_info():
        if "numpy" in info.get("filepath", ""):
            return int(info["num_threads"])
    infos = blas_info()
    return int(infos[0]["num_threads"]) if infos else (os.cpu_count() or 1)


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
        net = initial_net(model)  # same initial weights as numpynn
        T = torch.nn
        if model == "cnn":
            self.model = T.Sequential(
                T.Unflatten(1, (1, 28, 28)),
                T.Conv2d(1, 16, 5), T.ReLU(), T.MaxPool2d(2),
                T.Conv2d(16, 32, 5), T.ReLU(), T.MaxPool2d(2),
                T.Flatten(), T.Linear(512, 128), T.ReLU(), T.Dropout(0.25), T.Linear(128, 10),
            )
        else:
            self.model = T.Sequential(T.Linear(784, 128), T.Sigmoid(), T.Linear(128, 64), T.Sigmoid(),
                                      T.Linear(64, 10))
        ours = [layer for layer in net.layers if layer.n_params]
        theirs = [layer for layer in self.model if isinstance(layer, (T.Linear, T.Conv2d))]
        with torch.no_grad():
            for layer, mine in zip(theirs, ours, strict=True):
                W = mine.W.T if isinstance(layer, T.Linear) else mine.W  # Linear keeps (out, in)
                layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(W)))
                layer.bias.copy_(torch.from_numpy(mine.b.copy()))
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


class GemmFloor(Contender):
    """Only the 8 matrix products of each training step, on preallocated float32
    buffers with ``np.matmul(..., out=)``: what any NumPy implementation must pay."""

    def __init__(self, n: int, batch: int, threads: int | None) -> None:
        self.name, self.n, self.batch, self.threads = "GEMM floor (8 matmuls/step)", n, batch, threads
        self.short = "GEMM floor"
        self.note = "x@W1, h1@W2, h2@W3, h2'd3, d3 W3', h1'd2, d2 W2', x'd1"
        rng = np.random.default_rng(SEED)
        f32 = np.float32

        def buf(*shape: int) -> np.ndarray:
            return rng.standard_normal(shape).astype(f32) * f32(0.1)

        i, h1, h2, o = SIZES
        B = batch
        self.W = [buf(i, h1), buf(h1, h2), buf(h2, o)]
        self.dW = [buf(i, h1), buf(h1, h2), buf(h2, o)]
        self.x = rng.random((B, i), dtype=f32)
        self.a = [buf(B, h1), buf(B, h2), buf(B, o)]  # z/a buffers of each layer
        self.d = [buf(B, h1), buf(B, h2), buf(B, o)]  # deltas δ1, δ2, δ3

    def epoch(self) -> float:
        mm = np.matmul
        W, dW, a, d = self.W, self.dW, self.a, self.d
        with blas_limits(self.threads):
            started = time.perf_counter()
            for start in range(0, self.n, self.batch):
                B = min(self.batch, self.n - start)
                x = self.x[:B]
                a1, a2, a3 = a[0][:B], a[1][:B], a[2][:B]
                d1, d2, d3 = d[0][:B], d[1][:B], d[2][:B]
                mm(x, W[0], out=a1)  # forward
                mm(a1, W[1], out=a2)
                mm(a2, W[2], out=a3)
                mm(a2.T, d3, out=dW[2])  # backward
                mm(d3, W[2].T, out=d2)
                mm(a1.T, d2, out=dW[1])
                mm(d2, W[1].T, out=d1)
                mm(x.T, d1, out=dW[0])
            return time.perf_counter() - started


# --- the run -----------------------------------------------------------------------------
@dataclass
class Row:
    name: str
    short: str
    threads: str
    times: list[float]
    accuracy: float | None
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def round_orders(n: int, rounds: int, seed: int = SEED) -> list[list[int]]:
    """The order the ``n`` contenders run in, round by round: a fresh shuffle each round
    from a fixed seed. (A rotation would keep the neighbours: each contender would
    always run right after the same one, inheriting its caches and clock state.)"""
    rng = np.random.default_rng(seed)
    return [[int(j) for j in rng.permutation(n)] for _ in range(rounds)]


def run_batch(data: Data, batch: int, optimizer: str, args: argparse.Namespace,
              libs: dict[str, Any]) -> list[Row]:
    default_threads = args.threads or (1 if batch <= 128 else None)
    shown = str(default_threads or default_blas_threads())
    makers: list[tuple[str, Callable[[], Contender]]] = []
    model = args.model
    if libs["c"]:
        makers.append(("numpynn", lambda: Numpynn(data, batch, optimizer, args.threads, "c",
                                                  "numpynn (C kernels)", model)))
        makers.append(("numpynn-np", lambda: Numpynn(data, batch, optimizer, args.threads, "numpy",
                                                     "numpynn (numpy kernels)", model)))
    else:
        makers.append(("numpynn", lambda: Numpynn(data, batch, optimizer, args.threads, "numpy",
                                                  "numpynn (numpy kernels)", model)))
    if libs["shifts"] and model == "mlp":
        kernels = "c" if libs["c"] else "numpy"
        makers.append(("numpynn-shifts", lambda: Numpynn(data, batch, optimizer, args.threads, kernels,
                                                         "numpynn, ±1 px shifts", model, shift=1)))
    if libs["torch"] is not None:
        torch = libs["torch"]
        makers.append(("torch", lambda: Torch(torch, data, batch, optimizer, args.threads, False, model)))
        makers.append(("torch-tuned", lambda: Torch(torch, data, batch, optimizer,
                                                    default_threads or default_blas_threads(), True,
                                                    model)))
    if model == "cnn":  # scikit-learn has no convnet; the floor below is the dense network's
        pass
    elif libs["sklearn"] is not None:
        makers.append(("sklearn", lambda: Sklearn(data, batch, optimizer, default_threads)))
    if libs["floor"] and model == "mlp":
        makers.append(("floor", lambda: GemmFloor(data.x.shape[0], batch, default_threads)))

    contenders = [make() for _, make in makers]
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
    rows = []
    for c, t in zip(contenders, times, strict=True):
        if isinstance(c, Torch) and not c.tuned:
            th = str(c.threads or c.default_threads)
        else:
            th = str(c.threads) if c.threads else shown
        rows.append(Row(c.name, c.short, th, t, c.accuracy(), c.note))
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
    thr = (f"{args.threads} for every contender (--threads)" if args.threads else
           "1 for batch <= 128 (numpynn's default), the libraries' defaults above that; "
           "PyTorch (default) keeps torch's own count")
    lines += [
        f"threads: {thr}",
        f"data: {data.description}",
        ("network: numpynn's digit convnet (below), float32; PyTorch starts from numpynn's initial weights"
         if args.model == "cnn" else
         "network: 784-128-64-10, sigmoid hidden, softmax + cross-entropy, float32; "
         "PyTorch starts from numpynn's initial weights, scikit-learn from its own"),
        f"timing: {args.epochs} timed epoch(s) per contender after 1 warm-up epoch, interleaved "
        "round by round; s/epoch is the median; accuracy is on the test set after all "
        f"{args.epochs + 1} epochs",
    ]
    return lines


def fmt_acc(a: float | None) -> str:
    return "-" if a is None else f"{100 * a:.2f}%"


def table(rows_by_batch: dict[int, list[Row]], n: int) -> tuple[list[str], list[list[str]]]:
    head = ["batch", "contender", "threads", "s/epoch", "min", "spread", "samples/s",
            "peer/numpynn", "vs floor", "test acc"]
    body = []
    for batch, rows in rows_by_batch.items():
        ref = rows[0].median  # numpynn's default configuration comes first
        floor = next((r.median for r in rows if r.name.startswith("GEMM floor")), None)
        for r in rows:
            med = r.median
            spread = (max(r.times) - min(r.times)) / med if len(r.times) > 1 else 0.0
            body.append([
                str(batch), r.name, r.threads, f"{med:.3f}", f"{min(r.times):.3f}",
                f"{100 * spread:.0f}%" if len(r.times) > 1 else "-",
                f"{n / med:,.0f}", f"{med / ref:.2f}",
                f"{med / floor:.2f}" if floor else "-", fmt_acc(r.accuracy),
            ])
    return head, body


def render_text(head: list[str], body: list[list[str]], left: frozenset[int] = frozenset({1})) -> str:
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    out = [line(head), "  ".join("-" * w for w in widths)]
    prev = None
    for row in body:
        if prev is not None and row[0] != prev:
            out.append("")
        out.append(line(row))
        prev = row[0]
    return "\n".join(out)


def render_markdown(head: list[str], body: list[list[str]],
                    left: frozenset[int] = frozenset({1})) -> str:
    align = [":---" if i in left else "---:" for i in range(len(head))]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def summary(rows_by_batch: dict[int, list[Row]]) -> tuple[list[str], list[list[str]]]:
    names = []
    for rows in rows_by_batch.values():
        for r in rows[1:]:
            if r.short not in names:
                names.append(r.short)
    head = ["batch", f"{next(iter(rows_by_batch.values()))[0].short} s/epoch",
            *[f"{n} / numpynn" for n in names]]
    body = []
    for batch, rows in rows_by_batch.items():
        by_name = {r.short: r.median for r in rows}
        ref = rows[0].median
        body.append([str(batch), f"{ref:.3f}",
                     *[f"{by_name[n] / ref:.2f}" if n in by_name else "-" for n in names]])
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
    p.add_argument("--threads", type=int, default=None,
                   help="BLAS / torch threads for every contender (default: 1 for batch <= 128)")
    p.add_argument("--model", choices=("mlp", "cnn"), default="mlp",
                   help="mlp: 784-128-64-10 against PyTorch, scikit-learn and the GEMM floor (default); "
                        "cnn: numpynn's digit convnet against the same network in PyTorch")
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
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be at least 1")
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
        "sklearn": _import("sklearn", skip),
        "floor": "floor" not in skip,
        "shifts": "shifts" not in skip and args.model == "mlp",
        "inference": "inference" not in skip and args.model == "mlp",
    }
    if libs["inference"] and _import("PIL", skip) is None:
        libs["inference"] = False
        notes.append("Pillow not installed: the /api/predict latency (inference) is left out")
    libs["c"] = "c" not in skip and "c" in _kernels.available()
    for key, label in (("torch", "PyTorch"), ("sklearn", "scikit-learn")):
        if libs[key] is None:
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
    if args.model == "cnn":
        notes.append("--model cnn: numpynn.models.convnet() (conv 5x5 16, pool, conv 5x5 32, pool, 128, "
                     "dropout 0.25, 10) against the same layers in PyTorch; no scikit-learn, no floor")
    elif libs["sklearn"] is not None:
        notes.append("scikit-learn gets the images pre-scaled to float32 (it cannot scale per batch); "
                      "the others read uint8 and scale each batch, inside the timed epoch")
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
        rows_by_batch: dict[int, list[Row]] = {}
        for batch in args.batches:
            print(f"  {titles[optimizer]}: batch {batch} ...", file=sys.stderr, flush=True)
            rows_by_batch[batch] = run_batch(data, batch, optimizer, args, libs)
        head, body = table(rows_by_batch, n)
        title = (f"{titles[optimizer]}: seconds per epoch of {n:,} rows "
                 f"(peer/numpynn > 1: numpynn is faster)")
        print(title)
        print(render_text(head, body))
        shead, sbody = summary(rows_by_batch)
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
