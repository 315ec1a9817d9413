"""Figures: learning curves, confusion matrices, mistakes, weights, XOR surfaces and sweeps.

Every function returns a :class:`matplotlib.figure.Figure` built directly (not
through ``pyplot``), so nothing touches pyplot's global state: figures work
headless, in scripts and in Jupyter (where a returned figure is shown), and
are garbage-collected like any other object. Save one with
:func:`save_figure` (atomic PNG) or ``fig.savefig(...)``.

matplotlib is optional (``pip install 'numpynn[plots]'``) and is imported
only when a figure is made; ``import numpynn.plots`` alone does not load it
(:func:`available` says whether it can be).

The rooms, one per family of figure: :mod:`.curves` (training curves),
:mod:`.views` (a classifier's confusion matrix, mistakes, weights, feature maps),
:mod:`.xor`, :mod:`.sweep`; :mod:`.writing` writes a run's figures to a folder, and
:mod:`.canvas` is what they share (matplotlib, the style, :func:`save_figure`).

>>> from numpynn import plots                                  # doctest: +SKIP
>>> net, history = numpynn.recipes.train_classifier(data)      # doctest: +SKIP
>>> plots.save_figure(plots.learning_curves(history), "curves.png")  # doctest: +SKIP
>>> plots.write_training_plots("figures", net, history, data)  # doctest: +SKIP
['learning_curves.png', 'confusion_matrix.png', 'misclassified.png', 'first_layer_weights.png']
"""

from __future__ import annotations

from .canvas import MISSING, TEST_COLOR, TRAIN_COLOR, available, save_figure
from .curves import learning_curves
from .explain import explain_figure, write_explain_figure
from .sweep import sweep_results, write_sweep_figure
from .views import confusion_matrix, conv_filters, feature_maps, first_layer_weights, misclassified
from .writing import (
    CONFUSION_MATRIX,
    CONV_FILTERS,
    FEATURE_MAPS,
    FIRST_LAYER_WEIGHTS,
    LEARNING_CURVES,
    MISCLASSIFIED,
    write_model_plots,
    write_training_plots,
)
from .xor import CLASS0_COLOR, CLASS1_COLOR, HIDDEN_COLORS, XOR_RANGE, xor_snapshots, xor_surface

__all__ = [
    "CLASS0_COLOR",
    "CLASS1_COLOR",
    "CONFUSION_MATRIX",
    "CONV_FILTERS",
    "FEATURE_MAPS",
    "FIRST_LAYER_WEIGHTS",
    "HIDDEN_COLORS",
    "LEARNING_CURVES",
    "MISCLASSIFIED",
    "MISSING",
    "TEST_COLOR",
    "TRAIN_COLOR",
    "XOR_RANGE",
    "available",
    "confusion_matrix",
    "conv_filters",
    "explain_figure",
    "feature_maps",
    "first_layer_weights",
    "learning_curves",
    "misclassified",
    "save_figure",
    "sweep_results",
    "write_explain_figure",
    "write_model_plots",
    "write_sweep_figure",
    "write_training_plots",
    "xor_snapshots",
    "xor_surface",
]
