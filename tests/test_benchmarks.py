"""The benchmarks still run: smoke tests, never timed (no assertion is about speed).

``benchmarks/compare.py --quick`` runs end to end and prints a whole table (then the
shifts' cost and inference, from shifts.py and inference.py), and its rounds run the
contenders in the seeded shuffled order; ``benchmarks/micro.py`` runs
each micro-benchmark once (``--benchmark-disable``), checks included.
"""

from __future__ import annotations

import importlib.util
import math
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


def contenders() -> list[tuple[str, str]]:
    """(table name, short name) of each contender compare.py runs here, in its order."""
    rows = []
    if "c" in _kernels.available():
        rows.append(("numpynn (C kernels)", "numpynn c"))
    rows.append(("numpynn (numpy kernels)", "numpynn numpy"))
    rows.append(("numpynn, ±1 px shifts", f"numpynn {'c' if 'c' in _kernels.available() else 'numpy'} shifts"))
    if importlib.util.find_spec("torch") is not None:
        rows += [("PyTorch (default)", "torch default"), ("PyTorch (tuned)", "torch tuned")]
    if importlib.util.find_spec("sklearn") is not None:
        rows.append(("scikit-learn MLP", "sklearn"))
    rows.append(("GEMM floor (8 matmuls/step)", "GEMM floor"))
    return rows


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

    # the table: one row per contender, batch 64, in the contenders' order
    rows = [line.split("  ") for line in out.splitlines() if re.match(r"\s+64  \S", line)]
    rows = [[cell.strip() for cell in row if cell.strip()] for row in rows]
    assert [row[1] for row in rows] == [name for name, _ in expected], out
    accuracies = {}
    for row in rows:
        _, name, threads, median, fastest, spread, samples, relative, floor, accuracy = row
        assert int(threads) >= 1
        assert math.isfinite(float(median)) and float(median) > 0, row
        assert float(fastest) == float(median) and spread == "-", row  # --quick: one timed epoch
        assert int(samples.replace(",", "")) > 0 and float(relative) > 0 and float(floor) > 0, row
        if name.startswith("GEMM floor"):
            assert accuracy == "-"
        else:
            accuracies[name] = float(accuracy.rstrip("%")) / 100
    assert float(rows[0][7]) == 1.0 and float(rows[-1][8]) == 1.0  # numpynn and the floor: the references
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
