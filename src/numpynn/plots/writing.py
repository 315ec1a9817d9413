"""The figures of a training run written to a folder, under fixed names."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .._io import make_folder
from ..layers import Conv2D, Dense
from .canvas import save_figure
from .curves import learning_curves
from .views import confusion_matrix, conv_filters, feature_maps, first_layer_weights, misclassified

if TYPE_CHECKING:  # pragma: no cover
    from ..datasets import Dataset
    from ..network import Network

#: The files :func:`write_training_plots` / :func:`write_model_plots` may write.
LEARNING_CURVES = "learning_curves.png"
CONFUSION_MATRIX = "confusion_matrix.png"
MISCLASSIFIED = "misclassified.png"
FIRST_LAYER_WEIGHTS = "first_layer_weights.png"
CONV_FILTERS = "conv_filters.png"
FEATURE_MAPS = "feature_maps.png"


def write_model_plots(out_dir: str | os.PathLike[str], net: Network, data: Dataset) -> list[str]:
    """The figures of a trained classifier on ``data``'s test split, written to
    ``out_dir`` (created if needed): ``confusion_matrix.png``,
    ``misclassified.png`` and, when the first layer reads the images'
    pixels, ``first_layer_weights.png``; for a convnet ``conv_filters.png`` and
    ``feature_maps.png`` (of the first test image). Returns the file names written."""
    out = make_folder(out_dir)
    what = f"{data.name} test set"
    written = []
    save_figure(confusion_matrix(net.confusion_matrix(data.x_test, data.y_test),
                                 title=f"Confusion matrix, {what}"), out / CONFUSION_MATRIX)
    written.append(CONFUSION_MATRIX)
    save_figure(misclassified(net, data.x_test, data.y_test, image_shape=data.image_shape,
                              title=f"Misclassified, {what}"), out / MISCLASSIFIED)
    written.append(MISCLASSIFIED)
    rows, cols = data.image_shape
    first = net.layers[0]
    if isinstance(first, Dense) and first.n_in == rows * cols:  # it reads pixels: its weights are images
        save_figure(first_layer_weights(net, image_shape=data.image_shape), out / FIRST_LAYER_WEIGHTS)
        written.append(FIRST_LAYER_WEIGHTS)
    if any(isinstance(layer, Conv2D) for layer in net.layers):  # a convnet: its filters, its maps
        save_figure(conv_filters(net), out / CONV_FILTERS)
        digit = data.x_test[0]
        save_figure(feature_maps(net, digit, title=f"Feature maps of a test {data.y_test[0]}"),
                    out / FEATURE_MAPS)
        written += [CONV_FILTERS, FEATURE_MAPS]
    return written


def write_training_plots(
    out_dir: str | os.PathLike[str], net: Network, history: Mapping[str, Sequence[float]],
    data: Dataset,
) -> list[str]:
    """Everything :func:`write_model_plots` writes, after ``learning_curves.png``
    from the training ``history``. Returns the file names written."""
    out = make_folder(out_dir)
    # the history's val_* columns are the validation split of the training data, not the test set
    save_figure(learning_curves(history, val_label="validation"), out / LEARNING_CURVES)
    return [LEARNING_CURVES, *write_model_plots(out, net, data)]
