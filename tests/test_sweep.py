"""Sweeps: the same trials on joblib and on a Dask cluster, a killed sweep resumed, bad grids."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import numpynn as nn
from numpynn import cli, datasets
from numpynn import sweep as sweeps

MEASURED = ("trial", "options", "config", "val_accuracy", "val_loss", "best_epoch", "epochs", "history",
            "error", "key")


def _slice(n_train: int, n_test: int = 200) -> datasets.Dataset:
    data = datasets.load("mnist-sample")
    return datasets.Dataset("slice", data.x_train[:n_train], data.y_train[:n_train],
                            data.x_test[:n_test], data.y_test[:n_test])


def _write_idx(data: datasets.Dataset, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    datasets.write_idx(folder / "train-images-idx3-ubyte.gz", data.x_train.reshape(-1, 28, 28))
    datasets.write_idx(folder / "train-labels-idx1-ubyte.gz", data.y_train.astype(np.uint8))
    datasets.write_idx(folder / "t10k-images-idx3-ubyte.gz", data.x_test.reshape(-1, 28, 28))
    datasets.write_idx(folder / "t10k-labels-idx1-ubyte.gz", data.y_test.astype(np.uint8))
    return folder


def _measured(table: list[dict]) -> list[dict]:
    """A table without the times, which differ from run to run."""
    return [{k: row[k] for k in MEASURED} for row in table]


def test_joblib_and_a_local_dask_cluster_give_the_same_results_per_trial(tmp_path):
    from dask.distributed import LocalCluster

    data = _slice(600)
    grid = {"lr": [3e-3, 1e-2], "shift": [0, 1], "dropout": [0.0, 0.2], "layers": [[784, 16, 10]]}
    on_joblib = sweeps.sweep(data, grid, epochs=2, seed=3, jobs=2, out=tmp_path / "joblib")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        on_dask = sweeps.sweep(data, grid, epochs=2, seed=3, scheduler=cluster.scheduler_address,
                           out=tmp_path / "dask")
    assert len(on_joblib.table) == 8 and on_joblib.ran == on_dask.ran == 8
    by_key = {row["key"]: row for row in on_dask.table}
    for row in on_joblib.table:  # every trial, number for number
        twin = by_key[row["key"]]
        assert {k: row[k] for k in MEASURED} == {k: twin[k] for k in MEASURED}
    assert len({row["val_loss"] for row in on_joblib.table}) == 8  # the trials did differ
    assert on_joblib.test == on_dask.test
    np.testing.assert_array_equal(on_joblib.model.params, on_dask.model.params)


def _sweep_command(data_dir: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "numpynn", "sweep", "--data", str(data_dir), "--grid", "lr=3e-3,1e-2",
            "batch_size=32,64,128", "layers=784,64,10", "--epochs", "5", "--jobs", "1", "--out", str(out),
            *extra]


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_killed_sweep_rerun_skips_finished_trials_and_matches_an_uninterrupted_run(tmp_path):
    data_dir = _write_idx(_slice(3000), tmp_path / "data")
    out = tmp_path / "killed"
    results = out / sweeps.RESULTS
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # held by the test-only hook once 2 trials are written: killed there, however slow the machine
    proc = subprocess.Popen(_sweep_command(data_dir, out), env={**env, sweeps.HOLD: "2"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 600
        while len(_lines(results)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()  # held, not finished or failed
        os.kill(proc.pid, signal.SIGKILL)  # partway: no chance to clean up
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    before = _lines(results)
    assert len(before) == 2, f"the sweep was killed after {len(before)} of 6 trials"

    rerun = subprocess.run(_sweep_command(data_dir, out, "--json", "--save", str(tmp_path / "a.safetensors")),
                           env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    resumed = json.loads(rerun.stdout)
    assert (resumed["reused"], resumed["ran"]) == (len(before), 6 - len(before))
    after = _lines(results)
    assert after[: len(before)] == before and len(after) == 6  # finished trials were not repeated
    assert len({json.loads(line)["key"] for line in after}) == 6

    whole = subprocess.run(_sweep_command(data_dir, tmp_path / "whole", "--json", "--save",
                                          str(tmp_path / "b.safetensors")),
                           env=env, capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr
    uninterrupted = json.loads(whole.stdout)
    assert (uninterrupted["reused"], uninterrupted["ran"]) == (0, 6)
    assert _measured(resumed["table"]) == _measured(uninterrupted["table"])
    assert resumed["test"] == uninterrupted["test"] and resumed["best"]["key"] == uninterrupted["best"]["key"]
    np.testing.assert_array_equal(nn.load(str(tmp_path / "a.safetensors")).params,
                                  nn.load(str(tmp_path / "b.safetensors")).params)


BAD_GRIDS = {
    "unknown option": (["--grid", "learning=1e-3"], "unknown option 'learning'"),
    "bad number": (["--grid", "lr=1e-3,fast"], "bad value for lr"),
    "negative rate": (["--grid", "lr=-1e-3"], "bad value for lr"),
    "fractional batch": (["--grid", "batch_size=32,1.5"], "bad value for batch_size"),
    "unknown optimiser": (["--grid", "optimizer=adam,adagrad"], "bad value for optimizer"),
    "bad layers": (["--grid", "layers=784,64,10:784,x,10"], "bad value for layers"),
    "layers that do not fit the data": (["--grid", "layers=100,10"], "must start with 784"),
    "no values": (["--grid", "lr="], "lr= has no values"),
    "no option": (["--grid", "=1e-3"], "expected NAME=VALUE"),
    "empty grid": (["--grid"], "expected at least one argument"),
    "no grid": ([], "--grid"),
    "twice": (["--grid", "lr=1e-3", "lr=3e-3"], "appears twice"),
    "epochs twice": (["--grid", "epochs=5,10", "--epochs", "3"], "give it once"),
    "seed": (["--grid", "seed=0,1"], "seed cannot be swept"),
    "not for the cnn": (["--grid", "model=cnn", "activation=tanh,relu"], "applies only to model mlp"),
    "too many trials": (["--grid", "lr=" + ",".join(f"{i}e-4" for i in range(1, 23)),
                         "batch_size=" + ",".join(str(i) for i in range(1, 23)),
                         "epochs=" + ",".join(str(i) for i in range(1, 23))], "10,648 trials"),
    "no validation split": (["--grid", "lr=1e-3", "--validation-split", "0"], "must be in (0, 1)"),
}


@pytest.mark.parametrize("case", list(BAD_GRIDS))
def test_a_bad_grid_is_one_line_and_exit_2_before_anything_runs(case, tmp_path, capsys, monkeypatch):
    argv, says = BAD_GRIDS[case]
    ran = []
    monkeypatch.setattr(sweeps.engines, "run_trial", lambda *a: ran.append(a))
    out = tmp_path / "out"
    code = cli.main(["sweep", "--data", "mnist-sample", "--out", str(out), *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and says in err, err
    assert not ran and not out.exists()


def test_a_bad_grid_from_python_is_a_grid_error_before_anything_runs(monkeypatch):
    monkeypatch.setattr(sweeps, "run_trial", lambda *a: pytest.fail("a trial ran"))
    data = _slice(100)
    for grid in ({}, {"lr": []}, {"lr": [0]}, {"model": ["cnn"], "layers": [[784, 10]]},
                 {"lr": list(np.geomspace(1e-4, 1e-1, 101)), "epochs": list(range(1, 101))}):
        with pytest.raises(sweeps.GridError):
            sweeps.sweep(data, grid)
    assert sweeps.plan(data, {"lr": list(np.geomspace(1e-4, 1e-1, 101)), "epochs": list(range(1, 101))},
                       random=5, seed=1)[0] == sweeps.plan(
        data, {"lr": list(np.geomspace(1e-4, 1e-1, 101)), "epochs": list(range(1, 101))}, random=5, seed=1)[0]


def test_without_the_extra_a_sweep_says_how_to_install_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "joblib", None)
    code = cli.main(["sweep", "--data", "mnist-sample", "--grid", "lr=1e-3", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'numpynn[sweep]'" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(ImportError, match=r"numpynn\[sweep\]"):
        sweeps.sweep(_slice(100), {"lr": [1e-3]})


def test_sweep_from_python_returns_the_table_as_plain_data(tmp_path):
    data = _slice(400)
    grid = {"lr": [1e-2, 3e-3], "model": ["mlp"], "layers": [[784, 8, 10], [784, 16, 10]]}
    result = sweeps.sweep(data, grid, epochs=2, jobs=1, out=tmp_path / "s")
    assert result.swept == ["lr", "layers"] and [row["rank"] for row in result.table] == [1, 2, 3, 4]
    accuracies = [row["val_accuracy"] for row in result.table]
    assert accuracies == sorted(accuracies, reverse=True)
    assert json.loads(json.dumps(result.as_dict()))["table"] == result.table  # plain data
    assert result.test["n"] == 200 and result.model.metadata["test_accuracy"] == result.test["accuracy"]
    assert result.model.metadata["val_accuracy"] == result.best["val_accuracy"]
    assert result.figure is None and not (tmp_path / "s" / sweeps.FIGURE).exists()  # the sweep draws nothing
    assert nn.plots.write_sweep_figure(result) == result.figure == str(tmp_path / "s" / sweeps.FIGURE)
    assert Path(result.figure).stat().st_size > 10_000
    assert len(_lines(tmp_path / "s" / sweeps.RESULTS)) == 4
    assert nn.sweep.sweep is sweeps.sweep and "lr" in nn.sweep.OPTIONS


def test_the_sweep_command_prints_the_table_best_first(tmp_path, capsys):
    data_dir = _write_idx(_slice(500), tmp_path / "data")
    code = cli.main(["sweep", "--data", str(data_dir), "--grid", "lr=3e-3,1e-2", "layers=784,16,10",
                     "--epochs", "2", "--jobs", "1", "--out", str(tmp_path / "o"),
                     "--save", str(tmp_path / "best.safetensors")])
    out = capsys.readouterr().out
    assert code == 0
    assert "2 trials on data, best first" in out and "test set (evaluated once, for the best trial only)" in out
    table = [line.split() for line in out.splitlines() if line.strip()[:2] in ("1 ", "2 ") and "%" in line]
    assert [row[0] for row in table] == ["1", "2"]
    assert float(table[0][2].rstrip("%")) >= float(table[1][2].rstrip("%"))
    assert nn.load(str(tmp_path / "best.safetensors")).metadata["dataset"] == "data"
    figure = tmp_path / "o" / sweeps.FIGURE
    assert f"figure: {figure}" in out and figure.stat().st_size > 10_000  # the command draws the table


def _nothing_listens() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"  # closed again: nothing listens there


def test_a_scheduler_where_nothing_listens_is_one_line_within_seconds_and_leaves_nothing(tmp_path, capsys,
                                                                                         monkeypatch):
    ran = []
    monkeypatch.setattr(sweeps.engines, "run_trial", lambda *a: ran.append(a))
    address = _nothing_listens()
    out = tmp_path / "deep" / "out"
    started = time.perf_counter()
    code = cli.main(["sweep", "--data", "mnist-sample", "--grid", "lr=1e-3", "--epochs", "1",
                     "--scheduler", address, "--out", str(out)])
    seconds = time.perf_counter() - started
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"cannot reach the Dask scheduler at {address}" in err, err
    assert seconds < 10, f"{seconds:.1f} s to say that nothing listens at {address}"
    assert not (tmp_path / "deep").exists() and not ran  # no --out folder left behind, nothing run
    with pytest.raises(ConnectionError, match="cannot reach the Dask scheduler"):
        sweeps.sweep(_slice(100), {"lr": [1e-3]}, epochs=1, scheduler=address, out=out)
    assert not (tmp_path / "deep").exists()


def _subcommands() -> dict:
    parser = cli.build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices


def test_sweep_takes_the_options_it_shares_with_train(tmp_path, capsys):
    commands = _subcommands()
    for command in ("train", "sweep"):
        flags = {flag for action in commands[command]._actions for flag in action.option_strings}
        assert set(cli.SHARED_OPTIONS) <= flags, (command, set(cli.SHARED_OPTIONS) - flags)
    data_dir = _write_idx(_slice(300), tmp_path / "data")
    code = cli.main(["sweep", "--data", str(data_dir), "--grid", "lr=1e-2", "layers=784,8,10", "--epochs", "1",
                     "--jobs", "1", "--out", str(tmp_path / "o"), "--no-progress", "--no-download", "--json"])
    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["ran"] == 1


def test_which_options_apply_comes_from_the_model_entries_and_sgd_gets_its_own_rate():
    data = _slice(200)
    grid = {"model": ["mlp", "cnn"], "layers": [[784, 16, 10]], "dropout": [0.1], "optimizer": ["sgd"]}
    trials, swept = sweeps.plan(data, grid, epochs=1)
    mlp, cnn = (t["config"] for t in trials)
    assert swept == ["model"] and (mlp["model"], cnn["model"]) == ("mlp", "cnn")
    assert set(cnn) - set(mlp) == set() and "layers" not in cnn  # the cnn's entry takes no layers
    assert {k for k in nn.models.MODELS["cnn"].options} <= set(cnn) and cnn["dropout"] == 0.1
    assert trials[1]["options"]["layers"] is None and trials[0]["options"]["layers"] == [784, 16, 10]
    assert mlp["lr"] == cnn["lr"] == nn.SGD.recipe_lr  # sgd without a rate: its own
    given = sweeps.plan(data, {"optimizer": ["sgd"], "lr": [0.02]}, epochs=1)[0][0]["config"]
    assert given["lr"] == 0.02
    with pytest.raises(sweeps.GridError, match="cross_entropy"):  # the cnn's entry refuses it, at plan
        sweeps.plan(data, {"model": ["cnn"], "loss": ["squared_error"]})
    with pytest.raises(sweeps.GridError, match="reads 784 inputs"):
        sweeps.plan(datasets.Dataset("small", np.zeros((20, 4)), np.arange(20) % 2, np.zeros((4, 4)),
                                     np.arange(4) % 2, image_shape=(2, 2)), {"model": ["cnn"]})


def test_a_cnn_trial_trains_as_the_entry_builds_it(tmp_path):
    data = _slice(120, n_test=40)
    result = sweeps.sweep(data, {"model": ["cnn"], "schedule": ["constant"]}, epochs=1, jobs=1)
    assert result.best["config"]["model"] == "cnn" and result.best["error"] is None
    assert [type(layer).__name__ for layer in result.model.layers] == [
        type(layer).__name__ for layer in nn.models.build("cnn", 784, 10, seed=0).layers]


def test_trials_at_once_never_ask_for_more_threads_than_cores(monkeypatch):
    monkeypatch.setattr(sweeps.engines, "cores", lambda: 16)
    assert [sweeps.engines.threads_per_trial(j) for j in (1, 2, 3, 16, 40)] == [16, 8, 5, 1, 1]
    seen = []
    monkeypatch.setattr(sweeps.engines, "run_trial", lambda trial, data, threads: seen.append(threads) or ({}, None))
    list(sweeps.engines.joblib_engine([{"key": "a"}, {"key": "b"}], None, jobs=1))
    assert seen == [16, 16]  # one job in this process: all the cores for each trial in turn
