"""The layering README.md states ("imports only point down the list") holds, at any depth.

`.importlinter` at the repository root lists the floors; import-linter reads every import of
``src/numpynn`` (inside functions too) and fails on one that points up a floor, or that ties
two rooms of one floor, and so on any import circle between rooms. The second test plants an
upward import in a copy of the package to show the check bites.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / ".importlinter"
LINT = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))


def _lint(package_parent: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run([LINT, str(CONFIG), "--no-cache"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_every_import_points_down_the_floors(tmp_path):
    result = _lint(ROOT / "src", tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Contracts: 1 kept, 0 broken" in result.stdout or " kept, 0 broken" in result.stdout


@pytest.mark.parametrize("where, line", [
    # a layer that imports the training loop, at the top of its file
    ("layers/dropout.py", "from ..training import fit as _planted\n"),
    # the network importing the file format lazily, inside a function (the old shortcut)
    ("network.py", "def _planted():\n    from .serialization import save\n    return save\n"),
])
def test_an_upward_import_is_caught(where, line, tmp_path):
    copy = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "numpynn", copy / "numpynn",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd"))
    target = copy / "numpynn" / where
    target.write_text(target.read_text() + "\n\n" + line)
    result = _lint(copy, tmp_path)
    assert result.returncode != 0, result.stdout[-2000:]
    module = "numpynn." + where.removesuffix(".py").replace("/", ".")
    assert "is not allowed to import" in result.stdout
    assert f"- {module} -> " in result.stdout, result.stdout[-2000:]  # the chain names the planted line
