"""The package's names: fixed ones, and every registered class read from its registry live."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import numpynn as nn
from numpynn.activations import ACTIVATIONS
from numpynn.layers import LAYERS
from numpynn.losses import LOSSES
from numpynn.optimizers import OPTIMIZERS


def test_every_registered_class_is_a_name_of_the_package():
    for registry in (LAYERS, OPTIMIZERS, ACTIVATIONS, LOSSES):
        for _, cls in registry.items():
            assert getattr(nn, cls.__name__) is cls
            assert cls.__name__ in dir(nn) and cls.__name__ in nn.__all__


def test_a_layer_registered_in_a_script_is_nn_name_at_once():
    assert not hasattr(nn, "Doubler")

    @nn.register_layer
    class Doubler(nn.Layer):
        def forward(self, x, training=False):
            return 2 * x

        def backward(self, grad_y):
            return 2 * grad_y

    try:
        assert nn.Doubler is Doubler and "Doubler" in dir(nn)
    finally:
        del LAYERS._items["Doubler"]  # leave the registry as the other tests expect it
    assert not hasattr(nn, "Doubler")


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Densse'"):
        nn.Densse  # noqa: B018


def test_star_import_gives_the_public_names():
    namespace: dict[str, object] = {}
    exec("from numpynn import *", namespace)
    assert namespace["Dense"] is nn.Dense and namespace["AdamW"] is nn.AdamW
    assert namespace["Network"] is nn.Network and callable(namespace["load"])


def test_a_network_from_the_package_has_its_shortcuts_in_a_fresh_process(tmp_path):
    code = (
        "import numpynn as nn, numpy as np\n"
        "net = nn.Network([nn.Dense(2, 1, 'sigmoid')], loss='squared_error', seed=0)\n"
        "net.fit(np.zeros((4, 2)), np.zeros(4), epochs=1, batch_size=4, progress=False)\n"
        f"net.save({str(tmp_path / 'n.safetensors')!r})\n"
        f"print(nn.load({str(tmp_path / 'n.safetensors')!r}).n_params)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "3"


def test_a_network_made_without_the_package_root_still_has_its_shortcuts(tmp_path):
    """``from numpynn.models import mlp`` (or numpynn.network, or serialization.load) and then
    ``net.fit`` / ``net.save`` / ``net.to_onnx``: the rooms are imported on first use."""
    path = tmp_path / "n.safetensors"
    code = (
        "import sys\n"
        "from numpynn.network import Network\n"
        "from numpynn.layers import Dense\n"
        "assert 'numpynn.training' not in sys.modules and 'numpynn.serialization' not in sys.modules\n"
        "net = Network([Dense(2, 1, 'sigmoid')], loss='squared_error')\n"
        "net.fit([[0, 0], [1, 1]], [0, 1], epochs=1, batch_size=2, progress=False)\n"
        f"net.save({str(path)!r})\n"
        "from numpynn.serialization import load\n"
        f"print(load({str(path)!r}).n_params, 'numpynn.training' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["3", "True"]
    assert np  # numpy is what the snippets use
