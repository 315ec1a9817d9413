"""Train the classic 784-128-64-10 digit network on the bundled MNIST sample, save and reload it."""

import numpynn as nn

data = nn.datasets.load("mnist-sample")  # 8,000 train + 2,000 test real MNIST digits, uint8
net = nn.Network([
    nn.Dense(784, 128, activation="sigmoid"),
    nn.Dense(128, 64, activation="sigmoid"),
    nn.Dense(64, 10, activation="softmax"),
], loss="cross_entropy", seed=0)

# each epoch is scored on 10% of the training digits held out; the test set is used once, below
history = net.fit(data.x_train, data.y_train, epochs=30, batch_size=64,
                  optimizer=nn.Adam(lr=5e-3), schedule="cosine",
                  augment=nn.augment.random_shift(1), validation_split=0.1, progress=True)
print(f"validation accuracy {history['val_accuracy'][-1]:.2%} (800 held-out training digits)")
print(f"test accuracy {net.evaluate(data.x_test, data.y_test)['accuracy']:.2%}")

net.save("mnist.safetensors")
again = nn.load("mnist.safetensors")
print(again.evaluate(data.x_test, data.y_test))
