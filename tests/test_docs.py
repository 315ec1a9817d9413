"""Every Python block in docs/*.md runs, in order, one namespace per page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(p for p in DOCS.glob("*.md") if "```python" in p.read_text(encoding="utf-8"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_doc_code_runs(page, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)
    namespace: dict = {"__name__": f"docs.{page.stem}"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{page.name} block {i + 1}", "exec"), namespace)
    assert capsys.readouterr().out  # the walk-through prints what it computes


def test_doc_pictures_exist():
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text(encoding="utf-8")):
            if not target.startswith("http"):
                assert (page.parent / target).exists(), f"{page.name} shows missing {target}"


# ---------------------------------------------------------------------------------------------
# The figures the README and docs quote come from saved outputs (docs/results/): the README's
# commands as docs/make_figures.py --results runs them, and compare.py's Markdown. A re-run
# that changes a figure fails here until the text is updated.

ROOT = DOCS.parent
RESULTS = DOCS / "results"


def _text(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def _saved(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))


def _block(text: str, first_line: str) -> list[str]:
    """The lines of the code block of ``text`` that starts with ``first_line``."""
    start = text.index("```\n" + first_line + "\n") + 4
    return text[start:text.index("```", start)].splitlines()


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


@pytest.mark.parametrize("name", ["train", "train_cnn", "sweep", "xor"])
def test_readme_transcripts_are_the_saved_runs(name):
    saved = _saved(name)
    assert saved["commit"] and saved["date"] and saved["machine"]["logical_cpus"]
    shown = _block(_text("README.md"), "$ " + saved["command"])
    lines = [line for line in shown[1:] if line != "..."]
    assert lines, f"the README shows nothing of {name}"
    at = [saved["transcript"].index(line) for line in lines]  # each line is one the run printed
    assert at == sorted(at), f"the README's {name} transcript is out of order"
    assert at[-1] == len(saved["transcript"]) - 1, f"the README's {name} transcript stops early"


def test_the_default_recipe_figures_are_the_saved_run():
    train, cnn = _saved("train"), _saved("train_cnn")
    assert train["json"]["recipe"]["keep_best"] and train["json"]["recipe"]["patience"] is None
    readme, backprop, recipes_md, conv = (_text(p) for p in ("README.md", "docs/backprop.md",
                                                            "docs/recipes.md", "docs/conv.md"))
    for saved in (train, cnn):
        last = saved["transcript"][-2]
        kept = int(re.search(r"\(kept epoch (\d+) by validation loss\)", last).group(1))
        acc = _pct(saved["json"]["test_accuracy"])
        assert f"test accuracy {acc}" in last
        saved["kept"], saved["acc"] = kept, acc
    assert f"(`kept epoch {train['kept']}` above" in readme
    assert f"the kept weights reach {train['acc']}" in readme
    assert f"(the dense network: {train['acc']})" in readme
    assert f"tests at {train['acc']} (`docs/results/train.json`)" in backprop
    assert f"keeps epoch {train['kept']} and tests at {train['acc']}" in recipes_md
    assert f"(epoch {cnn['kept']} by validation loss) reach {cnn['acc']}" in readme
    assert f"keeps epoch {cnn['kept']} and tests at {cnn['acc']}" in conv
    assert "best epoch" not in readme.replace("the best epoch's", "")


def _newest_compare() -> tuple[str, str]:
    path = max(RESULTS.glob("compare-*.md"))
    return path.name, path.read_text(encoding="utf-8")


def _md_rows(text: str, header_start: str) -> list[list[str]]:
    start = text.index(header_start)
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_the_readme_speed_figures_are_the_saved_compare_run():
    name, saved = _newest_compare()
    readme = _text("README.md")
    assert f"docs/results/{name}" in readme
    full = _md_rows(saved, "| batch | contender |")
    summary = _md_rows(saved, "| batch | numpynn c s/epoch | numpynn numpy / numpynn | numpynn c shifts")
    for batch, s_epoch, numpy_k, shifts, torch_d, torch_t, sk, _floor_ratio in summary:
        ours = next(r for r in full if r[0] == batch and r[1].startswith("numpynn (C"))
        floor = next(r for r in full if r[0] == batch and r[1].startswith("GEMM floor"))
        row = (f"| {batch} | {s_epoch} s | {numpy_k}× | {shifts}× | {torch_d}× | {torch_t}× | {sk}× "
               f"| {floor[3]} s | {ours[8]} |")
        assert row in readme, f"the README's speed row for batch {batch} is not the saved run's: {row}"
    spreads = {(r[0], r[1]): int(r[5].rstrip("%")) for r in full}
    ours = [v for (b, who), v in spreads.items() if who.startswith("numpynn")]
    assert f"was 0-{max(ours)}% for every numpynn row" in readme
    # the shifts' cost, inference and the convnet, as saved
    shifts = re.search(r"epoch \(fit's seconds\) +(\S+) +(\S+) +\+(\d+)\.\d%", saved)
    assert f"takes {shifts.group(2)} s with them and {shifts.group(1)} s without (+{shifts.group(3)}%" in readme
    predict = re.search(r"BLAS threads \(the default\): median (\S+) ms.*?: ([\d,]+) images/s", saved)
    one = re.search(r"1 BLAS thread: median (\S+) ms", saved)
    assert f"10,000 images in {predict.group(1)} ms ({predict.group(2)} images/s; {one.group(1)} ms" in readme
    client = re.search(r"client: median (\S+) ms, 99th percentile (\S+) ms", saved)
    server = re.search(r"server: median (\S+) ms, 99th percentile (\S+) ms", saved)
    assert (f"median {float(client.group(1)):.1f} ms, 99th percentile {float(client.group(2)):.1f} ms"
            in readme)
    assert f"{float(server.group(1)):.1f} ms and {float(server.group(2)):.1f} ms of it inside" in readme
    cnn = _md_rows(saved, "| batch | numpynn c s/epoch | numpynn numpy / numpynn | torch default")[0]
    assert f"numpynn {float(cnn[1]):.1f} s an epoch, PyTorch default {cnn[3]}×" in readme
    assert f"tuned {cnn[4]}×" in readme


def test_the_xor_figures_are_the_saved_run():
    saved, readme = _saved("xor_seeds"), _text("README.md")
    assert saved["converged"] == saved["all_within_0.1"] == saved["seeds"] == 1000
    assert (f"{saved['seeds_restarted']} seeds needed a restart ({saved['restarts']} restarts in all, "
            f"at most {saved['most_restarts']})") in readme
    assert (f"{saved['seconds_median']:.3f} s at the median, {saved['seconds_p95']:.2f} s at the 95th "
            f"percentile and {saved['seconds_max']:.2f} s at worst") in readme
    for text in (readme, _text("docs/backprop.md")):
        assert "has local minima" not in text


def test_the_sweep_figures_are_the_saved_run():
    saved, readme = _saved("sweep"), _text("README.md")
    took = re.search(r"sweep took (\S+ s)$", saved["transcript"][-4]).group(1)
    test = re.search(r"accuracy (\S+%)", saved["transcript"][-1]).group(1)
    default = _pct(_saved("train")["json"]["test_accuracy"])
    assert f"hence its {took})" in readme
    side = "above" if float(test[:-1]) > float(default[:-1]) else "below" if test != default else "level with"
    assert f"the winner above tests at {test}, {side} the default recipe's {default}" in readme
