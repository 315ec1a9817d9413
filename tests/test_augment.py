"""random_shift moves each image by whole pixels within the bound, filling with zeros."""

import numpy as np
import pytest

from numpynn.augment import random_shift


def test_each_row_is_its_image_shifted_within_the_bound():
    rng = np.random.default_rng(0)
    images = rng.random((50, 28, 28)).astype(np.float32)
    out = random_shift(1)(images.reshape(50, -1), np.random.default_rng(1)).reshape(50, 28, 28)
    seen = set()
    for img, moved in zip(images, out, strict=True):
        matches = []
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                padded = np.zeros((30, 30), np.float32)
                padded[1:29, 1:29] = img
                expected = padded[1 - dy : 29 - dy, 1 - dx : 29 - dx]
                if np.array_equal(moved, expected):
                    matches.append((dy, dx))
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) == 9  # every shift occurs


def test_zero_shift_is_identity_and_bad_arguments_are_refused():
    x = np.arange(2 * 784, dtype=np.float32).reshape(2, 784)
    assert random_shift(0)(x, np.random.default_rng(0)) is x
    with pytest.raises(ValueError, match="max_shift"):
        random_shift(-1)
    with pytest.raises(ValueError, match="784"):
        random_shift(1)(np.zeros((2, 100), np.float32), np.random.default_rng(0))


def test_shifting_uint8_pixels_as_they_are_scaled_equals_scaling_then_shifting():
    rng = np.random.default_rng(3)
    for k in (1, 2):
        shift = random_shift(k)
        for n in (1, 7, 64, 1024):
            pixels = rng.integers(0, 256, size=(n, 784), dtype=np.uint8)
            floats = pixels * np.float32(1 / 255)
            out = np.empty((n, 784), np.float32)
            seed = int(rng.integers(2**31))
            fused = shift.scaled(pixels, 1 / 255, out, np.random.default_rng(seed))
            assert fused is out
            np.testing.assert_array_equal(fused, shift(floats, np.random.default_rng(seed)))


def test_training_with_shifts_is_the_same_on_the_fused_path_and_the_plain_one():
    """fit moves uint8 pixels while scaling them when the augmentation offers it; an
    augmentation without that method (here the same shift, wrapped) takes the float path."""
    import numpynn as nn

    data = nn.datasets.load("mnist-sample")
    x, y = data.x_train[:600], data.y_train[:600]
    shift = random_shift(1)

    def plain(rows, rng):  # no .scaled: scaled to floats first, then shifted
        return shift(rows, rng)

    nets = []
    for augment in (shift, plain):
        net = nn.models.mlp([784, 32, 10], seed=2)
        net.fit(x, y, epochs=2, batch_size=50, optimizer=nn.Adam(lr=3e-3), augment=augment, progress=False)
        nets.append(net)
    np.testing.assert_array_equal(nets[0].params, nets[1].params)
    unshifted = nn.models.mlp([784, 32, 10], seed=2)
    unshifted.fit(x, y, epochs=2, batch_size=50, optimizer=nn.Adam(lr=3e-3), progress=False)
    assert not np.array_equal(unshifted.params, nets[0].params)  # the shifts did happen


def test_the_shifts_are_the_documented_draws_of_the_seeded_generator():
    """Row i moves by (dy_i, dx_i), with dy then dx each drawn as rng.integers(-k, k + 1, size=B):
    a seed names the same shifts in every version, on both paths (floats, and uint8 as scaled)."""
    rng = np.random.default_rng(0)
    images = rng.random((40, 28, 28)).astype(np.float32)
    for k in (1, 2):
        draws = np.random.default_rng(7)
        dy, dx = draws.integers(-k, k + 1, size=40), draws.integers(-k, k + 1, size=40)
        padded = np.zeros((40, 28 + 2 * k, 28 + 2 * k), np.float32)
        padded[:, k : k + 28, k : k + 28] = images
        expected = np.stack([padded[i, k - dy[i] : k - dy[i] + 28, k - dx[i] : k - dx[i] + 28]
                             for i in range(40)])
        out = random_shift(k)(images.reshape(40, -1), np.random.default_rng(7)).reshape(40, 28, 28)
        np.testing.assert_array_equal(out, expected)
        pixels = (images * 255).astype(np.uint8)
        scaled = random_shift(k).scaled(pixels.reshape(40, -1), 1 / 255, np.empty((40, 784), np.float32),
                                        np.random.default_rng(7)).reshape(40, 28, 28)
        np.testing.assert_array_equal(scaled, np.stack([
            np.pad(pixels[i], k)[k - dy[i] : k - dy[i] + 28, k - dx[i] : k - dx[i] + 28] for i in range(40)
        ]) * np.float32(1 / 255))
