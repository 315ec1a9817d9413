"""Hyper-parameter sweeps: many trainings, scored on a validation split, run by joblib or Dask.

::

    import numpynn as nn

    data = nn.datasets.load("mnist-sample")
    result = nn.sweep.sweep(data, {"lr": [1e-3, 3e-3, 1e-2], "batch_size": [32, 64]}, epochs=10)
    result.table[0]          # the best trial: {"options": {...}, "val_accuracy": ..., ...}
    result.test              # the test set, evaluated once, for the best trial only
    nn.plots.save_figure(nn.plots.sweep_results(result.table, result.swept), "sweep.png")

Every trial trains on the training split of ``data`` and is scored on the same
seeded validation split of the training images (:func:`numpynn.training.split_indices`),
so trials compare on equal terms; the test set is never seen by a trial. The
trials run in parallel processes on this machine with joblib (``jobs``), or on
a Dask cluster (``scheduler="tcp://HOST:PORT"``): each trial is one call of
:func:`run_trial`, which depends only on its options, the seed and the data,
and uses one BLAS thread, so both engines give the same numbers.

With ``out``, each finished trial is one line of ``out/results.jsonl`` (the file
is rewritten atomically after each) and the best model so far is kept in
``out/best.safetensors``; a sweep that was killed, run again with the same ``out``,
skips the trials already there. :func:`numpynn.plots.write_sweep_figure` draws a
finished sweep into ``out/sweep.png``.

The rooms: :mod:`.options` (what a grid can sweep), :mod:`.planning` (the grid
checked, the trials and their configs), :mod:`.trial` (one trial trained and
scored), :mod:`.engines` (joblib, Dask), :mod:`.running` (the sweep: trials
recorded, resumed, the best one tested).

joblib and dask.distributed are optional: ``pip install 'numpynn[sweep]'``.

For tests only: with ``NUMPYNN_SWEEP_HOLD=N`` in the environment, a sweep that has
finished (and written) N trials in this run waits there until it is killed, so that
a test can kill it at a known point rather than racing the clock.
"""

from __future__ import annotations

from .engines import CONNECT_TIMEOUT, MISSING, check_jobs, connect, cores, require
from .options import DEFAULT_MODEL, OPTIONS, GridError, Option, format_value, models_taking
from .planning import MAX_TRIALS, check, check_grid, grid_size, parse_grid, plan, trial_config
from .running import BEST, FIGURE, HOLD, RESULTS, SweepResult, sweep, validation_note
from .trial import build_network, rank, run_trial, trial_recipe

__all__ = [
    "BEST",
    "CONNECT_TIMEOUT",
    "DEFAULT_MODEL",
    "FIGURE",
    "HOLD",
    "MAX_TRIALS",
    "MISSING",
    "OPTIONS",
    "RESULTS",
    "GridError",
    "Option",
    "SweepResult",
    "build_network",
    "check",
    "check_grid",
    "check_jobs",
    "connect",
    "cores",
    "format_value",
    "grid_size",
    "models_taking",
    "parse_grid",
    "plan",
    "rank",
    "require",
    "run_trial",
    "sweep",
    "trial_config",
    "trial_recipe",
    "validation_note",
]
