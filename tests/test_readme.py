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


def _extras() -> tuple[list[str], dict[str, list[str]]]:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return project["dependencies"], project["optional-dependencies"]


def _closure(extra: str, extras: dict[str, list[str]]) -> set[str]:
    """The package names an extra brings in, following numpynn[...] references."""
    names: set[str] = set()
    for requirement in extras[extra]:
        name = re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower()
        if name == "numpynn":
            for inner in re.search(r"\[(.*)\]", requirement).group(1).split(","):
                names |= _closure(inner.strip(), extras)
        else:
            names.add(name)
    return names


def test_the_users_install_brings_no_test_or_development_tools():
    """`pip install -e ".[all]"` (the README's first command) installs what a user runs:
    BLAS thread limits, images, plots, the web page, ONNX; the tools live in `dev` only."""
    assert 'pip install -e ".[all]"' in README and 'pip install -e ".[dev]"' in README
    dependencies, extras = _extras()
    users = _closure("all", extras)
    assert {"threadpoolctl", "pillow", "matplotlib", "onnx", "onnxruntime"} <= users
    tools = {"pytest", "hypothesis", "ruff", "pytest-benchmark", "pytest-xdist", "scikit-learn", "selenium"}
    assert not users & tools
    assert tools | users <= _closure("dev", extras)  # the tests need every user extra too
    names = {re.split(r"[<>=!~; ]", d, maxsplit=1)[0].lower() for d in dependencies}
    assert "tqdm" not in names and "rich" in names  # one library draws on the terminal


def test_only_rich_draws_on_the_terminal():
    for path in (ROOT / "src").rglob("*.py"):
        assert not re.search(r"^\s*(import|from)\s+tqdm", path.read_text(encoding="utf-8"), flags=re.M), path
