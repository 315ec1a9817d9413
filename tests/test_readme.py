"""The README's promises: its code runs, and CI runs its test command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index, tmp_path, monkeypatch):
    code = BLOCKS[index]
    monkeypatch.chdir(tmp_path)
    if "torch" in code:
        pytest.importorskip("torch")
    if "model.safetensors" in code:  # the block loads a saved model: make one
        import numpynn as nn
        from numpynn.models import mlp

        mlp(seed=0).save("model.safetensors")
        assert nn.load("model.safetensors").sizes == [784, 128, 64, 10]
    exec(compile(code, f"README.md block {index}", "exec"), {"__name__": "__readme__"})


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = [line for line in ci.splitlines() if "pytest" in line and not line.startswith("#")]
    assert command, ".ci/run has no pytest line"
    assert command[-1].strip() in README, "the README's test command and .ci/run's have drifted"
