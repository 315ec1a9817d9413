"""The MNIST recipe and the networks the models module builds."""

import numpy as np
import pytest

from numpynn import datasets, models, recipes, training


def test_default_recipes_for_small_and_large_sets():
    small, large = recipes.default_recipe(8_000), recipes.default_recipe(60_000)
    assert (small.epochs, small.lr, small.shift, small.schedule) == (30, 5e-3, 1, "cosine")
    assert (large.epochs, large.lr, large.shift, large.schedule) == (30, 5e-3, 1, "cosine")
    assert recipes.default_recipe(60_000, "cnn").epochs == 6  # the convnet's still depends on the size
    assert small.validation_split == large.validation_split == 0.1


def test_mlp_picks_an_output_that_suits_the_loss():
    net = models.mlp()
    assert net.sizes == [784, 128, 64, 10]
    assert [layer.activation.name for layer in net.layers] == ["sigmoid", "sigmoid", "softmax"]
    assert models.mlp([4, 1], loss="cross_entropy").layers[-1].activation.name == "sigmoid"
    assert models.mlp([4, 3, 2], "tanh", "squared_error").layers[-1].activation.name == "tanh"
    with pytest.raises(ValueError):
        models.mlp([784])


def test_mlp_with_dropout_puts_one_after_each_hidden_layer():
    net = models.mlp([784, 32, 16, 10], dropout=0.25)
    assert [layer.name for layer in net.layers] == ["Dense", "Dropout", "Dense", "Dropout", "Dense"]
    assert all(layer.p == 0.25 for layer in net.layers if layer.name == "Dropout")
    assert net.n_params == models.mlp([784, 32, 16, 10]).n_params


def test_train_classifier_selects_on_validation_and_reports_the_test_set_once():
    data = datasets.load("mnist-sample")
    small = datasets.Dataset("tiny", data.x_train[:500], data.y_train[:500], data.x_test[:200],
                             data.y_test[:200])
    net, history = recipes.train_classifier(small, models.mlp([784, 16, 10]),
                                            recipes.Recipe(epochs=2, shift=0), progress=False)
    assert len(history["val_accuracy"]) == 2
    # the epochs were scored on 50 held-out training images, never on the test set
    assert net.metadata["selection"]["validation"].startswith("validation split 0.1 of the training data (50 rows")
    assert all(round(50 * a) == 50 * a for a in history["val_accuracy"])
    test = net.evaluate(small.x_test, small.y_test)
    assert net.metadata["dataset"] == "tiny" and net.metadata["test_accuracy"] == test["accuracy"]
    assert net.metadata["best_epoch"] == 1 + int(np.argmin(history["val_loss"]))
    assert net.metadata["recipe"]["epochs"] == 2
    with pytest.raises(ValueError, match="first layer size 784"):
        recipes.train_classifier(small, models.mlp([100, 10]), progress=False)
    with pytest.raises(ValueError, match="last layer size 10"):
        recipes.train_classifier(small, models.mlp([784, 5]), progress=False)
    assert np.isfinite(net.params).all()


def test_patience_stops_early_and_keeps_the_best_epoch():
    data = datasets.load("mnist-sample")
    small = datasets.Dataset("tiny", data.x_train[:400], data.y_train[:400], data.x_test[:100],
                             data.y_test[:100])
    # a rate high enough that the validation loss turns up within a few epochs on 360 images
    recipe = recipes.Recipe(epochs=40, lr=2e-2, schedule="constant", shift=0, patience=3)
    net, history = recipes.train_classifier(small, models.mlp([784, 64, 10]), recipe, progress=False)
    sel = net.metadata["selection"]
    assert sel["stopped_early"] and len(history["epoch"]) < 40
    best = 1 + int(np.argmin(history["val_loss"]))
    assert sel["best_epoch"] == best and len(history["epoch"]) == best + 3
    assert sel["restored_best"]
    # the weights kept are those of the best epoch: they give its validation loss again
    _, val_rows = training.split_indices(400, 0.1, seed=0)
    again = net.evaluate(small.x_train[val_rows], small.y_train[val_rows])
    assert again["loss"] == pytest.approx(history["val_loss"][best - 1], rel=1e-6)
    assert again["loss"] < history["val_loss"][-1]


def test_the_default_recipe_keeps_the_best_epoch_and_says_so():
    """Without patience, the default still ends with the weights of the epoch of lowest
    validation loss: those are tested and saved, the metadata names that epoch as kept,
    and `numpynn train` prints "kept epoch N"."""
    from numpynn import cli

    data = datasets.load("mnist-sample")
    small = datasets.Dataset("tiny", data.x_train[:400], data.y_train[:400], data.x_test[:100],
                             data.y_test[:100])
    recipe = recipes.default_recipe(small.n_train)
    assert recipe.keep_best and recipe.patience is None
    # a high constant rate, so that the validation loss turns up before the last epoch
    recipe.epochs, recipe.lr, recipe.schedule, recipe.shift = 12, 2e-2, "constant", 0
    net, history = recipes.train_classifier(small, models.mlp([784, 64, 10]), recipe, progress=False)
    best = 1 + int(np.argmin(history["val_loss"]))
    assert best < 12 and len(history["epoch"]) == 12  # every epoch trained, an earlier one kept
    sel = net.metadata["selection"]
    assert sel["restored_best"] and not sel["stopped_early"] and sel["best_epoch"] == best
    assert net.metadata["best_epoch"] == net.metadata["kept_epoch"] == best
    assert net.metadata["recipe"]["keep_best"] is True
    _, val_rows = training.split_indices(400, 0.1, seed=0)
    again = net.evaluate(small.x_train[val_rows], small.y_train[val_rows])
    assert again["loss"] == pytest.approx(history["val_loss"][best - 1], rel=1e-6)
    # the test score in the metadata is that of the weights kept
    assert net.metadata["test_accuracy"] == net.evaluate(small.x_test, small.y_test)["accuracy"]
    assert cli._selection_note(sel) == f" (kept epoch {best} by validation loss)"


def test_keep_best_false_keeps_the_last_epoch():
    data = datasets.load("mnist-sample")
    small = datasets.Dataset("tiny", data.x_train[:400], data.y_train[:400], data.x_test[:100],
                             data.y_test[:100])
    recipe = recipes.Recipe(epochs=6, lr=2e-2, schedule="constant", shift=0, keep_best=False)
    net, history = recipes.train_classifier(small, models.mlp([784, 64, 10]), recipe, progress=False)
    assert not net.metadata["selection"]["restored_best"] and net.metadata["kept_epoch"] == 6
    _, val_rows = training.split_indices(400, 0.1, seed=0)
    again = net.evaluate(small.x_train[val_rows], small.y_train[val_rows])
    assert again["loss"] == pytest.approx(history["val_loss"][-1], rel=1e-6)
    # without a validation split nothing chooses: the last epoch's weights
    net, _ = recipes.train_classifier(small, models.mlp([784, 64, 10]),
                                      recipes.Recipe(epochs=2, shift=0, validation_split=0.0), progress=False)
    assert net.metadata["best_epoch"] is None and net.metadata["kept_epoch"] == 2


def test_numpynn_train_prints_the_kept_epoch_the_saved_model_names(tmp_path):
    import subprocess
    import sys

    import numpynn as nn

    p = subprocess.run([sys.executable, "-m", "numpynn", "train", "--data", "mnist-sample", "--epochs", "4",
                        "--no-download", "--no-progress", "--save", "m.safetensors"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    meta = nn.load(str(tmp_path / "m.safetensors")).metadata
    assert meta["selection"]["restored_best"] and meta["kept_epoch"] == meta["best_epoch"]
    assert f"(kept epoch {meta['kept_epoch']} by validation loss)" in p.stderr
    assert "best epoch" not in p.stderr


# --- models as one entry each -----------------------------------------------------------------
def test_default_recipe_is_the_model_entry_s_recipe():
    for name, model in models.MODELS.items():
        for n in (8_000, 60_000):
            recipe = recipes.default_recipe(n, name)
            for key, value in model.recipe(n).items():
                assert getattr(recipe, key) == value


def test_choosing_sgd_without_a_rate_gives_it_0_1_and_a_given_rate_wins():
    base = recipes.default_recipe(8_000)
    assert base.with_options(optimizer="sgd").lr == 0.1
    assert base.with_options(optimizer="sgd", lr=0.03).lr == 0.03
    assert base.with_options(optimizer="adam").lr == base.lr
    assert base.with_options(epochs=None, batch_size=32).epochs == base.epochs
    with pytest.raises(ValueError, match="a recipe has no colour"):
        base.with_options(colour="red")


def test_a_model_refuses_options_it_does_not_take_and_data_it_cannot_read():
    with pytest.raises(ValueError, match=r"--layers only apply to --model mlp; the cnn takes"):
        models.build("cnn", 784, 10, layers=[784, 10])
    with pytest.raises(ValueError, match="the cnn reads 784 inputs of 10 classes, but the data has 2 and 2"):
        models.build("cnn", 2, 2)
    net = models.build("mlp", 20, 3, layers=None, dropout=0.5)
    assert [type(layer).__name__ for layer in net.layers] == ["Dense", "Dropout", "Dense", "Dropout", "Dense"]
    assert [net.layers[i].n_out for i in (0, 2, 4)] == [128, 64, 3] and net.n_in == 20


def test_a_new_model_is_one_entry():
    entry = models.Model("tiny", lambda n_features, n_classes, seed, dtype, width: models.mlp(
        [n_features, width, n_classes], seed=seed, dtype=dtype), recipe=lambda n: {"epochs": 3, "lr": 0.01},
        options={"width": 8})
    models.register_model(entry)
    try:
        assert models.build("tiny", 784, 10, width=16).sizes == [784, 16, 10]
        assert recipes.default_recipe(100, "tiny").epochs == 3
    finally:
        del models.MODELS._items["tiny"]


def test_the_resnet_entry_builds_a_residual_network_with_batch_norm_under_100k_parameters():
    net = models.build("resnet", 784, 10, seed=0)
    assert net.n_params < 100_000
    kinds = {type(layer).__name__ for _, layer in net.walk()}
    assert {"Residual", "BatchNorm2D", "GlobalAvgPool2D", "Conv2D"} <= kinds
    assert net.state.size > 0  # the running statistics
    with pytest.raises(ValueError, match="the resnet reads 784 inputs of 10 classes"):
        models.build("resnet", 64, 10)
    data = datasets.load("mnist-sample")
    import numpynn as nn

    check = nn.gradient_check(net.copy("float64"), data.x_train[:3], data.y_train[:3], max_params=150)
    assert check.ok, check


def test_an_optimiser_brings_its_own_recipe_rate_and_momentum():
    import numpynn as nn
    from numpynn.optimizers import OPTIMIZERS

    @OPTIMIZERS.register("heavy")
    class Heavy(nn.SGD):
        """SGD by another name, with a rate of its own for recipes."""

        recipe_lr = 0.05

        def config(self):
            return {**super().config(), "name": "heavy"}

    try:
        recipe = recipes.default_recipe(8_000).with_options(optimizer="heavy", momentum=0.5)
        assert recipe.lr == 0.05
        opt = recipe.make_optimizer()
        assert type(opt) is Heavy and opt.momentum == 0.5
        assert recipes.default_recipe(8_000).with_options(optimizer="adam").lr == recipes.default_recipe(8_000).lr
    finally:
        del OPTIMIZERS._items["heavy"]
