"""The benchmarks still run: smoke tests, never timed (no assertion is about speed).

``benchmarks/compare.py --quick`` runs end to end and prints a whole table (then the
shifts' cost and inference, from shifts.py and inference.py), and its rounds run the
contenders in the seeded shuffled order; ``benchmarks/micro.py`` runs
each micro-benchmark once (``--benchmark-disable``), checks included.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from numpynn import _kernels

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_compare() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmarks_compare", BENCHMARKS / "compare.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def contenders(model: str = "mlp", threads: int | None = None) -> list[tuple[str, str]]:
    """(table name, short name) of each contender compare.py runs here for one thread count
    (default: all cores), in its order."""
    c = "c" in _kernels.available()
    at = f"@{threads or os.cpu_count()}"
    rows = []
    if c:
        rows.append(("numpynn (C kernels)", "numpynn c" + at))
    rows.append(("numpynn (numpy kernels)", "numpynn numpy" + at))
    if model == "mlp":
        rows.append(("numpynn, ±1 px shifts", f"numpynn {'c' if c else 'numpy'} shifts" + at))
    if importlib.util.find_spec("torch") is not None:
        rows += [("PyTorch (default)", "torch default"), ("PyTorch (tuned)", "torch tuned" + at)]
    if importlib.util.find_spec("sklearn") is not None and model == "mlp":
        rows.append(("scikit-learn MLP", "sklearn" + at))
    matmuls = {"mlp": 8, "cnn": 11, "resnet": 29}[model]
    rows.append((f"GEMM floor ({matmuls} matmuls/step)", "GEMM floor" + at))
    return rows


def table_rows(out: str, batch: int) -> list[list[str]]:
    """The cells of the main table's rows for ``batch``: batch, thread set, contender, ... (cells
    are two spaces or more apart; the summary's rows have a number where the contender is)."""
    return [re.split(r"\s{2,}", line.strip()) for line in out.splitlines()
            if re.match(rf"\s*{batch}\s+\d+  [A-Za-z]", line)]


@pytest.mark.parametrize("n, rounds", [(6, 4), (5, 4), (6, 11)])
def test_rounds_shuffle_the_order_with_a_fixed_seed(n, rounds):
    compare = load_compare()
    orders = compare.round_orders(n, rounds)
    assert len(orders) == rounds
    assert all(sorted(order) == list(range(n)) for order in orders), orders
    assert compare.round_orders(n, rounds) == orders  # the same every run
    # neighbours change: in a rotation each contender is always followed by the same one,
    # so at most n different (runs, runs next) pairs ever occur
    pairs = {(order[i], order[i + 1]) for order in orders for i in range(n - 1)}
    assert len(pairs) > n, orders


def test_numpynn_does_not_always_follow_the_same_contender():
    """The default run (6 contenders, a warm-up and 3 timed rounds): in the timed rounds
    numpynn (the first contender) runs after different ones, or first."""
    orders = load_compare().round_orders(6, 4)[1:]
    before = {order[order.index(0) - 1] if order.index(0) else None for order in orders}
    assert len(before) > 1, orders


def test_compare_quick_runs_and_prints_every_contender(tmp_path):
    done = subprocess.run([sys.executable, str(BENCHMARKS / "compare.py"), "--quick", "--verbose",
                           "--markdown", "results.md"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    out, err = done.stdout, done.stderr
    expected = contenders()

    # the table: one row per contender, batch 64, one set of all cores (the default), in order
    rows = table_rows(out, 64)
    assert [row[2] for row in rows] == [name for name, _ in expected], out
    accuracies = {}
    for row in rows:
        _, group, name, threads, median, fastest, spread, samples, relative, floor, accuracy = row
        assert int(group) == os.cpu_count()
        assert re.fullmatch(r"\d+( \(own\))?", threads) and int(threads.split()[0]) >= 1, row
        assert math.isfinite(float(median)) and float(median) > 0, row
        assert float(fastest) == float(median) and spread == "-", row  # --quick: one timed epoch
        assert int(samples.replace(",", "")) > 0 and float(relative) > 0 and float(floor) > 0, row
        if name.startswith("GEMM floor"):
            assert accuracy == "-"
        else:
            accuracies[name] = float(accuracy.rstrip("%")) / 100
    assert float(rows[0][8]) == 1.0 and float(rows[-1][9]) == 1.0  # numpynn and the floor: the references
    # two epochs over 6,000 digits: every real trainer is far above chance (10%)
    assert all(a > 0.7 for a in accuracies.values()), accuracies
    numpynn = [a for name, a in accuracies.items() if name.startswith("numpynn (")]
    assert len(numpynn) == len(_kernels.available()) and len(set(numpynn)) == 1, accuracies  # same bits

    # -v: the warm-up and the timed round, each contender once, in the seeded shuffled order
    orders = load_compare().round_orders(len(expected), 2)
    for label, order in zip(("warm-up", "round 1"), orders, strict=True):
        line = re.search(rf"batch 64 {label}: (.*)", err)
        assert line, err
        ran = [re.sub(r" \d+\.\d+$", "", item) for item in line.group(1).split(", ")]
        assert ran == [expected[j][1] for j in order], (label, ran)

    # then the shifts' cost on the sample recipe's epoch, and inference
    shifts = re.search(r"^epoch \(fit's seconds\) +(\S+) +(\S+) +([-+]\d+\.\d)%$", out, re.MULTILINE)
    assert shifts and float(shifts.group(1)) > 0 and float(shifts.group(2)) > 0, out
    assert re.search(r"^  1 BLAS thread: median \S+ ms, fastest \S+ ms: [\d,]+ images/s$", out, re.MULTILINE), out
    for side in ("client", "server"):
        assert re.search(rf"^  {side}: median \S+ ms, 99th percentile \S+ ms", out, re.MULTILINE), out
    assert "50 requests one after another" in out
    markdown = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert "numpynn (numpy kernels)" in markdown and "## Inference" in markdown


def test_compare_resnet_with_two_thread_counts(tmp_path):
    """--model resnet --threads 1,2 on 256 digits, batch 128 (two steps an epoch: a test, not a
    measurement): a set of rows per thread count, numpynn's
    resnet against PyTorch's and the convolutions' GEMM floor; numpynn's bits (its test
    accuracy) the same for both thread counts; the summary and the Markdown have every set."""
    pytest.importorskip("torch")
    done = subprocess.run([sys.executable, str(BENCHMARKS / "compare.py"), "--quick", "--model", "resnet",
                           "--threads", "1,2", "--rows", "256", "--batch-sizes", "128",
                           "--skip", "numpy", "--markdown", "results.md"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert re.search(r"^threads: sets of 1, 2 \(--threads 1,2; all = os.cpu_count\(\) = \d+\)", out, re.M), out
    assert re.search(r"^PyTorch: .*default \d+ intra-op threads$", out, re.M), out
    assert re.search(r"^machine: .*; \d+ logical CPUs", out, re.M) and "BLAS (NumPy" in out, out
    rows = table_rows(out, 128)
    for N in (1, 2):
        names = [row[2] for row in rows if row[1] == str(N)]
        expected = [name for name, _ in contenders("resnet", N) if name != "numpynn (numpy kernels)"]
        assert names == expected, out
    own = {row[3] for row in rows if row[2] == "PyTorch (default)"}
    assert len(own) == 1 and own.pop().endswith("(own)"), out  # one run, shown in both sets
    for row in rows:
        if row[2] != "PyTorch (default)":
            assert row[3] == row[1], row  # the set's thread count
        assert float(row[4]) > 0 and float(row[9]) > 0, row
    numpynn = {row[1]: row for row in rows if row[2].startswith("numpynn")}
    assert numpynn["1"][10] == numpynn["2"][10], out  # same bits whatever the thread count
    assert all(float(row[9]) == 1.0 for row in rows if row[2].startswith("GEMM floor")), out
    summary = [re.split(r"\s{2,}", line.strip()) for line in out.splitlines()
               if re.match(r"\s*128\s+[12]\s+[\d.]+\s+[\d.]+", line)]
    assert [row[1] for row in summary] == ["1", "2"], out
    assert "numpynn / floor" in out and "numpynn speed-up vs 1 thread" in out
    markdown = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert markdown.count("| 128 | 1 | ") >= 4 and markdown.count("| 128 | 2 | ") >= 4, markdown
    assert "numpynn.models.resnet" in markdown and "GEMM floor (29 matmuls/step)" in markdown


@pytest.mark.parametrize("bad", ["0", "1,x", ",", "-2"])
def test_compare_refuses_bad_thread_counts(bad):
    with pytest.raises(SystemExit):
        load_compare().parse_args(["--threads", bad])


def test_compare_thread_counts_all_and_duplicates():
    args = load_compare().parse_args(["--threads", "1,all,1"])
    assert args.thread_counts == list(dict.fromkeys([1, os.cpu_count()]))


def test_gemm_floor_has_the_convolutions_products():
    """The resnet's floor: per conv forward, ∇W and (but the first) ∂C/∂col, per dense the
    same: 9 convolutions (2 of them the shortcuts) and a dense layer, 3·10 − 1 products."""
    compare = load_compare()
    floor = compare.GemmFloor(compare.initial_net("resnet"), 100, 64, 1)
    forward, backward = floor.steps[0]
    assert len(forward) == 10 and len(backward) == 19
    A, B, out = forward[0]  # the stem: [col 1] (64·28·28, 3·3·1 + 1) @ [Wm; b]
    assert A.shape == (64 * 28 * 28, 10) and B.shape == (10, 16) and out.shape == (64 * 28 * 28, 16)
    A, B, out = floor.steps[-1][0][0]  # the last step: 100 − 64 = 36 samples
    assert A.shape == (36 * 28 * 28, 10)
    assert [p[2].shape for p in backward[:2]] == [(64, 10), (64, 64)]  # the dense layer first


def test_micro_benchmarks_run(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--benchmark-disable", str(BENCHMARKS / "micro.py")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed in .*", summary), done.stdout


def test_web_load_runs(tmp_path):
    """A short run of the web page's load benchmark: every request answered, every answer right."""
    pytest.importorskip("PIL")
    done = subprocess.run([sys.executable, str(BENCHMARKS / "web_load.py"), "--clients", "3", "--seconds", "2"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "failures 0, wrong answers 0" in done.stdout
    assert "latency: median" in done.stdout and "server memory (RSS)" in done.stdout
