"""Your own layer: its forward pass and its chain rule side by side, in a dozen lines.

Scale multiplies each feature by a learnable factor. Registered, it trains like any
built-in layer, passes the finite-difference check, and saves and loads by name.
"""

import tempfile
from pathlib import Path

import numpy as np

import numpynn as nn


@nn.register_layer  # makes the type loadable from a model file
class Scale(nn.Layer):
    """y = x ⊙ s, one learnable scale per feature."""

    def __init__(self, init=1.0):
        super().__init__()
        self.init = init

    def build(self, input_shape):  # input_shape excludes the batch axis, e.g. (64,)
        self.add_param("s", input_shape, init=lambda rng, shape: np.full(shape, self.init))
        return input_shape  # the output shape

    def forward(self, x, training=False):
        self.x = x  # keep what backward needs
        return x * self.params["s"]

    def backward(self, grad_y):  # ∂C/∂y (B, ...) -> ∂C/∂x; fills self.grads
        self.grads["s"][...] = (grad_y * self.x).sum(axis=0)  # ∇s = Σ_rows ∂C/∂y ⊙ x
        return grad_y * self.params["s"]  # ∂C/∂x = ∂C/∂y ⊙ s

    def config(self):
        return {"init": self.init}  # constructor arguments; from_config(cfg) = cls(**cfg)


data = nn.datasets.load("mnist-sample")
net = nn.Network([nn.Dense(784, 64, "tanh"), Scale(0.5), nn.Dense(64, 10, "softmax")], seed=0)

print(nn.gradient_check(net, data.x_train[:4], data.y_train[:4]))  # backprop vs finite differences
net.fit(data.x_train, data.y_train, epochs=5, optimizer=nn.Adam(lr=3e-3), validation_split=0.1,
        progress=False)
print(f"test accuracy {net.evaluate(data.x_test, data.y_test)['accuracy']:.2%}")
print(f"learned scales: {np.round(net.layers[1].params['s'][:5], 3)} ...")

with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "scaled.safetensors"
    net.save(path)
    again = nn.load(path)  # rebuilt from ("Scale", {"init": 0.5}) and the tensor layers.1.s
    same = np.array_equal(again.predict(data.x_test), net.predict(data.x_test))
    print(f"saved and loaded: {type(again.layers[1]).__name__}, identical predictions: {same}")
