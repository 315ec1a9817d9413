"""A user-defined activation from a function and its derivative (the classic addLayer(n, fn, dfn))."""

import numpy as np

import numpynn as nn


def softsign(z):
    return z / (1 + np.abs(z))


def softsign_derivative(z):
    return 1 / (1 + np.abs(z)) ** 2


act = nn.Custom(softsign, softsign_derivative, name="softsign")
net = nn.Network([nn.Dense(2, 4, act), nn.Dense(4, 1, "sigmoid")],
                 loss="cross_entropy", seed=1, dtype="float64")
x, y = nn.datasets.xor(np.float64)
print(nn.gradient_check(net, x, y))  # your derivative is checked against finite differences
net.fit(x, y, epochs=500, batch_size=4, optimizer=nn.Adam(lr=0.05), progress=False)
print(np.round(net.predict(x)[:, 0], 3))
