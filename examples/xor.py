"""XOR with the Python API: a 2-2-1 sigmoid network, squared error, plain gradient descent."""

import numpy as np

import numpynn as nn

x, y = nn.datasets.xor(np.float64)  # x (4, 2), y (4, 1)
net = nn.Network([nn.Dense(2, 2, "sigmoid"), nn.Dense(2, 1, "sigmoid")],
                 loss="squared_error", seed=0, dtype="float64")
print(nn.gradient_check(net, x, y))  # backprop agrees with finite differences

history = net.fit(x, y, epochs=1000, batch_size=4, optimizer=nn.SGD(lr=20.0),
                  shuffle=False, progress=False)
for row, out in zip(x, net.predict(x)[:, 0], strict=True):
    print(f"{row[0]:.0f} xor {row[1]:.0f} -> {out:.3f}")
print(f"loss {history['loss'][-1]:.5f}")

# The same with restarts out of local minima, as `numpynn xor` does:
result = nn.xor.train_xor(seed=0)
print(f"converged={result.converged} in {result.epochs} epochs, {result.restarts} restarts")
