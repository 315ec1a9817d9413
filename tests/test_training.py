"""The MNIST recipe and the network it builds."""

import numpy as np
import pytest

from numpynn import datasets, training


def test_default_recipe_depends_on_the_size_of_the_data():
    small, large = training.default_recipe(8_000), training.default_recipe(60_000)
    assert (small.epochs, small.lr, small.shift, small.schedule) == (30, 5e-3, 1, "cosine")
    assert (large.epochs, large.lr, large.shift, large.schedule) == (15, 1e-3, 0, "cosine")


def test_build_network_picks_an_output_that_suits_the_loss():
    net = training.build_network()
    assert net.sizes == [784, 128, 64, 10]
    assert [layer.activation.name for layer in net.layers] == ["sigmoid", "sigmoid", "softmax"]
    assert training.build_network([4, 1], loss="cross_entropy").layers[-1].activation.name == "sigmoid"
    assert training.build_network([4, 3, 2], "tanh", "squared_error").layers[-1].activation.name == "tanh"
    with pytest.raises(ValueError):
        training.build_network([784])


def test_train_classifier_records_what_it_did_and_refuses_mismatched_sizes():
    data = datasets.load("mnist-sample")
    small = datasets.Dataset("tiny", data.x_train[:500], data.y_train[:500], data.x_test[:200],
                             data.y_test[:200])
    net, history = training.train_classifier(small, training.build_network([784, 16, 10]),
                                             training.Recipe(epochs=2, shift=0), progress=False)
    assert len(history["val_accuracy"]) == 2
    assert net.metadata["dataset"] == "tiny" and net.metadata["test_accuracy"] == history["val_accuracy"][-1]
    assert net.metadata["recipe"]["epochs"] == 2
    with pytest.raises(ValueError, match="first layer size 784"):
        training.train_classifier(small, training.build_network([100, 10]), progress=False)
    with pytest.raises(ValueError, match="last layer size 10"):
        training.train_classifier(small, training.build_network([784, 5]), progress=False)
    assert np.isfinite(net.params).all()
