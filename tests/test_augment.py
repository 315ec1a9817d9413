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
