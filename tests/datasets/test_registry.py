"""The data-set registry: a set registered where it is defined, from any file and at any
time, is found by every reader (load, is_cached, the names, the CLI's help and its
saved models) at once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from numpynn import datasets
from numpynn.cli import build_parser, main
from numpynn.datasets import DATASET_NAMES, DATASETS, Dataset, register_dataset


@pytest.fixture(autouse=True)
def _registry_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sets registered by a test are gone after it."""
    monkeypatch.setattr(DATASETS, "_items", dict(DATASETS._items))
    monkeypatch.setattr(DATASETS, "_aliases", dict(DATASETS._aliases))


def tiny(name: str = "tiny", n_train: int = 40, n_test: int = 10) -> Dataset:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n_train + n_test, 64), dtype=np.uint8)
    y = rng.integers(0, 10, n_train + n_test)
    return Dataset(name, x[:n_train], y[:n_train], x[n_train:], y[n_train:], image_shape=(8, 8))


def test_the_built_in_sets_register_themselves() -> None:
    assert datasets.dataset_names()[:2] == ["mnist", "mnist-sample"]
    assert list(DATASET_NAMES) == datasets.dataset_names()


def test_a_set_registered_later_is_known_everywhere_at_once() -> None:
    @register_dataset("tiny")
    def load_tiny() -> Dataset:
        return tiny()

    assert load_tiny().name == "tiny"  # the decorator hands the function back
    assert datasets.dataset_names()[-1] == "tiny"
    assert "tiny" in DATASET_NAMES and DATASET_NAMES[-1] == "tiny" and len(DATASET_NAMES) == 3
    assert datasets.is_cached("tiny")  # nothing to download unless `cached` says otherwise
    data = datasets.load("tiny")
    assert data.name == "tiny" and data.n_train == 40 and data.image_shape == (8, 8)
    assert datasets.load(" Tiny ").n_test == 10  # read as every name is
    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert "mnist, mnist-sample, tiny, or a folder" in " ".join(help_text.split())


def test_a_script_that_imports_numpynn_first_can_load_its_set_by_name(tmp_path: Path) -> None:
    script = tmp_path / "my_data.py"
    script.write_text(
        "import json\n"
        "import numpy as np\n"
        "import numpynn as nn\n"
        "from numpynn.datasets import Dataset, register_dataset\n\n"
        "@register_dataset('noise')\n"
        "def noise():\n"
        "    x = np.zeros((12, 64), np.uint8)\n"
        "    y = np.arange(12) % 10\n"
        "    return Dataset('noise', x[:8], y[:8], x[8:], y[8:], image_shape=(8, 8))\n\n"
        "data = nn.datasets.load('noise')\n"
        "print(json.dumps([data.n_train, data.n_test, nn.datasets.is_cached('noise'),\n"
        "                  nn.datasets.dataset_names()]))\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path, check=True).stdout
    assert json.loads(out) == [8, 4, True, ["mnist", "mnist-sample", "noise"]]


def test_the_cli_records_a_registered_set_by_name_and_evaluates_on_it(tmp_path: Path, capsys) -> None:
    register_dataset("tiny", lambda: tiny(n_train=60, n_test=20))
    model = tmp_path / "tiny.safetensors"
    assert main(["train", "--data", "tiny", "--layers", "64,8,10", "--epochs", "1", "--shift", "0",
                 "--save", str(model), "--no-progress"]) == 0
    from numpynn import load

    assert load(model).metadata["data"] == "tiny"  # a name, not a path
    capsys.readouterr()
    assert main(["evaluate", str(model), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["n"] == 20


def test_download_and_progress_are_passed_to_loaders_that_take_them() -> None:
    seen: list[tuple[bool, bool]] = []

    def load_tiny(*, download: bool = True, progress: bool = True) -> Dataset:
        seen.append((download, progress))
        return tiny()

    def load_tiny_quietly(progress: bool) -> Dataset:
        seen.append((None, progress))
        return tiny()

    register_dataset("tiny", load_tiny)
    register_dataset("tiny-quiet", load_tiny_quietly)
    datasets.load("tiny", download=False, progress=False)
    datasets.load("tiny-quiet", download=False, progress=True)
    assert seen == [(False, False), (None, True)]


def test_is_cached_asks_the_set() -> None:
    there = [False]
    register_dataset("remote", tiny, cached=lambda: there[0])
    assert not datasets.is_cached("remote")
    there[0] = True
    assert datasets.is_cached("remote")


def test_registering_checks_the_name_and_the_loader() -> None:
    register_dataset("tiny", tiny)
    register_dataset("tiny", tiny)  # the same loader again is no change
    with pytest.raises(ValueError, match="'tiny' is already registered"):
        register_dataset("tiny", lambda: tiny())
    register_dataset("tiny", lambda: tiny("other"), replace=True)
    assert datasets.load("tiny").name == "other"
    for bad in ("", "Tiny", " tiny", "my data", "data/set", ".hidden", "~home"):
        with pytest.raises(ValueError, match="dataset name"):
            register_dataset(bad, tiny)
    with pytest.raises(TypeError, match="callable"):
        register_dataset("tiny-2", 42)  # type: ignore[call-overload]


def test_a_loader_must_return_a_dataset() -> None:
    register_dataset("arrays", lambda: (np.zeros((4, 64)), np.zeros(4)))
    with pytest.raises(TypeError, match="'arrays': its loader returned tuple, not a numpynn.datasets.Dataset"):
        datasets.load("arrays")


def test_unknown_names_list_the_registered_ones() -> None:
    register_dataset("tiny", tiny)
    with pytest.raises(ValueError, match="unknown dataset 'cifar': use mnist, mnist-sample, tiny$"):
        datasets.is_cached("cifar")
    with pytest.raises(ValueError, match="use mnist, mnist-sample, tiny or a folder"):
        datasets.load("cifar")
