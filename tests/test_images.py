"""Tests for numpynn.images: a user's picture of a digit -> a 28x28 MNIST input."""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

PIL = pytest.importorskip("PIL")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402
from PIL import Image  # noqa: E402

from numpynn import images  # noqa: E402
from numpynn.errors import InvalidFileError  # noqa: E402
from numpynn.images import load_image, preprocess, save_png, to_image, to_mnist  # noqa: E402

MNIST_GZ = Path(__file__).resolve().parents[1] / "src/numpynn/datasets/data/images-idx3-ubyte.gz"
N_DIGITS = 40


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """The first few real MNIST digits, uint8 (n, 28, 28), read straight from the IDX file."""
    with gzip.open(MNIST_GZ, "rb") as f:
        header = f.read(16)
        magic, n, rows, cols = struct.unpack(">IIII", header)
        assert (magic, rows, cols) == (0x00000803, 28, 28)
        data = f.read(N_DIGITS * 28 * 28)
    return np.frombuffer(data, dtype=np.uint8).reshape(N_DIGITS, 28, 28)


def com(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64).reshape(28, 28)
    rows, cols = np.indices(a.shape)
    return np.array([(a * rows).sum(), (a * cols).sum()]) / a.sum()


def bbox_long_side(a: np.ndarray) -> int:
    a = np.asarray(a).reshape(28, 28) > 0
    r = np.flatnonzero(a.any(axis=1))
    c = np.flatnonzero(a.any(axis=0))
    return int(max(r[-1] - r[0] + 1, c[-1] - c[0] + 1))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def render(digit: np.ndarray, *, ink: int = 0, paper: int = 255) -> Image.Image:
    """An MNIST digit drawn big and off-centre on a 300x200 sheet: like a photo of paper."""
    d = digit.astype(np.float64) / 255.0
    pic = np.rint(paper + (ink - paper) * d).astype(np.uint8)
    big = Image.fromarray(pic).resize((150, 150), Image.Resampling.BICUBIC)
    sheet = Image.new("L", (300, 200), paper)
    sheet.paste(big, (20, 35))
    return sheet


def check_mnist_like(x: np.ndarray) -> None:
    assert x.shape == (784,)
    assert x.dtype == np.float32
    assert np.all(np.isfinite(x))
    assert x.min() >= 0.0 and x.max() <= 1.0


def one_line_naming(err: pytest.ExceptionInfo, path: Path) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    assert str(path) in msg
    return msg


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG file that declares a huge 1-bit image (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------- (a) MNIST in


def test_real_mnist_digit_passes_through_nearly_unchanged(digits):
    for digit in digits:
        x = preprocess(digit)
        check_mnist_like(x)
        original = digit.astype(np.float32) / 255.0
        assert np.abs(x - original.ravel()).mean() < 0.05
        assert np.abs(com(x) - com(original)).max() <= 1.0


def test_mnist_as_float_and_flat_vector_and_to_mnist_agree(digits):
    digit = digits[0]
    as_uint8 = preprocess(digit)
    np.testing.assert_allclose(preprocess(digit / 255.0), as_uint8, atol=1e-6)
    np.testing.assert_allclose(preprocess(digit.reshape(-1)), as_uint8, atol=1e-6)
    np.testing.assert_allclose(to_mnist(digit.astype(np.float32) / 255), as_uint8, atol=1e-6)


# --------------------------------------------------------------------------- (b) a big picture


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_big_off_centre_dark_on_white_picture(digits, tmp_path, fmt):
    for i in range(3):
        path = tmp_path / f"digit{i}.{fmt.lower()}"
        render(digits[i]).save(path, format=fmt)
        x = preprocess(path)
        check_mnist_like(x)
        assert 19 <= bbox_long_side(x) <= 21
        assert np.abs(com(x) - 14.0).max() <= 1.0
        assert cosine(x, digits[i]) > 0.8
        # str paths work too, and give the same answer
        np.testing.assert_array_equal(preprocess(str(path)), x)


def test_load_image_is_greyscale_float_in_unit_range(digits, tmp_path):
    path = tmp_path / "d.png"
    render(digits[0]).save(path)
    grey = load_image(path)
    assert grey.shape == (200, 300)
    assert grey.dtype == np.float32
    assert grey.min() == 0.0 and grey.max() == 1.0  # black ink, white paper
    assert grey[0, 0] == 1.0


# --------------------------------------------------------------------------- (c) polarity


def test_white_ink_on_black_equals_dark_ink_on_white(digits, tmp_path):
    dark_on_light = tmp_path / "dark.png"
    light_on_dark = tmp_path / "light.png"
    render(digits[1], ink=0, paper=255).save(dark_on_light)
    render(digits[1], ink=255, paper=0).save(light_on_dark)
    a, b = preprocess(dark_on_light), preprocess(light_on_dark)
    np.testing.assert_allclose(a, b, atol=1e-3)  # equal up to float32 rounding


def test_grey_paper_and_grey_ink_still_work(digits):
    # Dark ink on mid-grey paper: the border is not "bright", yet the ink is darker.
    reference = preprocess(np.asarray(render(digits[2])))
    dim = np.asarray(render(digits[2], ink=30, paper=110))
    x = preprocess(dim)
    assert cosine(x, reference) > 0.98
    # Chalk-grey ink on a dark board.
    chalk = np.asarray(render(digits[2], ink=200, paper=60))
    assert cosine(preprocess(chalk), reference) > 0.98


# --------------------------------------------------------------------------- (d) alpha & modes


def test_rgba_with_transparent_background(digits, tmp_path):
    reference = preprocess(np.asarray(render(digits[3])))
    alpha = 255 - np.asarray(render(digits[3]))  # opaque where the ink is
    rgba = np.zeros((200, 300, 4), np.uint8)  # transparent *black*: naive convert("L") fails
    rgba[..., 3] = alpha
    path = tmp_path / "ink.png"
    Image.fromarray(rgba).save(path)
    grey = load_image(path)
    assert grey[0, 0] == 1.0  # transparent -> white paper
    assert cosine(preprocess(path), reference) > 0.99

    # White ink on a transparent canvas vanishes on white paper: it is put on black.
    rgba[..., :3] = 255
    Image.fromarray(rgba).save(path)
    assert cosine(preprocess(path), reference) > 0.99

    # The same as LA, and as an RGBA array / PIL image handed over directly.
    Image.fromarray(rgba).convert("LA").save(tmp_path / "la.png")
    assert cosine(preprocess(tmp_path / "la.png"), reference) > 0.99
    rgba[..., :3] = 0
    assert cosine(preprocess(rgba), reference) > 0.99
    assert cosine(preprocess(Image.fromarray(rgba)), reference) > 0.99


def test_palette_one_bit_sixteen_bit_and_rgb(digits, tmp_path):
    sheet = render(digits[4])
    reference = preprocess(np.asarray(sheet))
    sheet.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "p.png")
    sheet.convert("RGB").save(tmp_path / "rgb.jpg", quality=90)
    sheet.point(lambda v: 255 if v > 128 else 0).convert("1").save(tmp_path / "bw.png")
    wide = (np.asarray(sheet).astype(np.uint16) * 257).astype(np.uint16)
    Image.fromarray(wide).save(tmp_path / "16bit.png")

    grey16 = load_image(tmp_path / "16bit.png")
    np.testing.assert_allclose(grey16, np.asarray(sheet) / 255.0, atol=1e-6)
    for name in ["p.png", "rgb.jpg", "bw.png", "16bit.png"]:
        x = preprocess(tmp_path / name)
        check_mnist_like(x)
        assert cosine(x, reference) > 0.95, name


def test_exif_orientation_is_applied(tmp_path):
    a = np.full((20, 40), 255, np.uint8)  # 40 wide, 20 tall
    a[0, 0] = 0  # a black marker at the top-left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.png"
    Image.fromarray(a).save(path, exif=exif)
    grey = load_image(path)
    assert grey.shape == (40, 20)
    assert grey[0, -1] == 0.0  # the top-left corner went to the top-right


def test_preprocess_accepts_file_bytes(digits, tmp_path):
    path = tmp_path / "d.png"
    render(digits[5]).save(path)
    np.testing.assert_array_equal(preprocess(path.read_bytes()), preprocess(path))
    with pytest.raises(InvalidFileError, match="uploaded image"):
        preprocess(b"definitely not a picture")


# --------------------------------------------------------------------------- (e) errors


def test_missing_file(tmp_path):
    path = tmp_path / "nope.png"
    with pytest.raises(FileNotFoundError) as err:
        load_image(path)
    one_line_naming(err, path)
    with pytest.raises(FileNotFoundError):
        preprocess(str(path))


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(InvalidFileError) as err:
        load_image(tmp_path)
    one_line_naming(err, tmp_path)


def _truncated_png(path: Path) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _truncated_jpeg(path: Path) -> None:
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8)).save(path, format="JPEG")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "name, make",
    [
        ("notes.png", lambda p: p.write_text("this is a shopping list, not a picture\n")),
        ("empty.png", lambda p: p.write_bytes(b"")),
        ("half.png", _truncated_png),
        ("half.jpg", _truncated_jpeg),
        ("header-only.png", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n")),
    ],
)
def test_unreadable_files(tmp_path, name, make):
    path = tmp_path / name
    make(path)
    with pytest.raises(InvalidFileError) as err:
        load_image(path)
    msg = one_line_naming(err, path)
    assert "is not a readable image (PNG, JPEG, ...)" in msg
    with pytest.raises(InvalidFileError):
        preprocess(path)


@pytest.mark.parametrize(
    "width, height",
    [
        (7_000, 7_000),  # 49 Mpx: over numpynn's own limit
        (10_000, 10_000),  # 100 Mpx: Pillow would only warn
        (20_000, 20_000),  # 400 Mpx: Pillow's own bomb error
        (2**31 - 1, 2**31 - 1),
    ],
)
def test_decompression_bomb_is_refused_cheaply(tmp_path, monkeypatch, width, height):
    """Refused from the header alone: no pixel is decoded (Pillow's load never runs)."""
    from PIL import ImageFile

    path = tmp_path / "bomb.png"
    path.write_bytes(png_header(width, height))
    assert path.stat().st_size < 200
    decoded: list[tuple[int, int]] = []

    def load(self):
        decoded.append(self.size)
        raise AssertionError(f"decoding the pixels of a {self.size} image")

    monkeypatch.setattr(Image.Image, "load", load)
    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    with pytest.raises(InvalidFileError) as err:
        load_image(path)
    assert decoded == []
    msg = one_line_naming(err, path)
    assert "too large" in msg


def test_the_same_hand_made_png_of_a_sane_size_is_read(tmp_path):
    path = tmp_path / "ok.png"
    path.write_bytes(png_header(64, 48))
    grey = load_image(path)
    assert grey.shape == (48, 64)
    assert not grey.any()  # all zero bytes: a black 1-bit image


def test_blank_image_says_no_ink(tmp_path):
    path = tmp_path / "blank.png"
    Image.new("L", (120, 80), 240).save(path)
    with pytest.raises(InvalidFileError) as err:
        preprocess(path)
    assert "no ink found: the image looks blank" in one_line_naming(err, path)
    with pytest.raises(ValueError, match="no ink found"):
        to_mnist(np.zeros((28, 28)))
    with pytest.raises(ValueError, match="no ink found"):
        preprocess(np.full((10, 10), 0.5) + np.random.default_rng(0).normal(0, 0.005, (10, 10)))


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((3, 4, 5)), "2-D"),
        (np.zeros((0, 5)), "empty"),
        (np.array([[0.0, np.nan]]), "NaN"),
        (np.array([[0.0, 2.0]]), r"\[0, 1\]"),
        (np.array([[0, 300]]), "0..255"),
    ],
)
def test_bad_arrays(bad, match):
    with pytest.raises(ValueError, match=match):
        preprocess(bad)


def test_missing_pillow_gives_a_clear_import_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    expected = r"reading images needs Pillow: pip install 'numpynn\[images\]'"
    with pytest.raises(ImportError, match=expected):
        images._pil()
    path = tmp_path / "x.png"
    path.write_bytes(b"whatever")
    with pytest.raises(ImportError, match="needs Pillow"):
        load_image(path)


def test_importing_numpynn_images_does_not_import_pillow():
    code = "import sys, numpynn.images; assert 'PIL' not in sys.modules, 'PIL imported'"
    env = dict(os.environ, PYTHONPATH=str(Path(images.__file__).parents[1]))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


# --------------------------------------------------------------------------- showing


def test_to_image_and_save_png_round_trip(digits, tmp_path):
    x = preprocess(digits[6])
    img = to_image(x, scale=3)
    assert img.shape == (84, 84) and img.dtype == np.uint8
    np.testing.assert_array_equal(img[::3, ::3], np.rint(x.reshape(28, 28) * 255))
    assert to_image(x, invert=True)[0, 0] == 255

    path = tmp_path / "seen.png"
    save_png(img, path)
    np.testing.assert_allclose(load_image(path), img / 255.0, atol=1e-6)
    save_png(x, tmp_path / "flat.png")  # a (784,) vector is shown as 28x28
    assert load_image(tmp_path / "flat.png").shape == (28, 28)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flat.png", "seen.png"]  # no temp files

    with pytest.raises(ValueError, match="784"):
        to_image(np.zeros(10))
    with pytest.raises(ValueError, match="scale"):
        to_image(x, scale=0)
    with pytest.raises(FileNotFoundError):
        save_png(img, tmp_path / "no" / "such" / "folder.png")


def test_huge_picture_is_shrunk_first(digits):
    big = np.asarray(render(digits[7]).resize((3000, 2000), Image.Resampling.NEAREST))
    x = preprocess(big)
    assert cosine(x, preprocess(np.asarray(render(digits[7])))) > 0.98


# --------------------------------------------------------------------------- (f) property


@st.composite
def inked_arrays(draw):
    shape = draw(st.tuples(st.integers(1, 40), st.integers(1, 40)).filter(lambda s: s[0] * s[1] > 1))
    if draw(st.booleans()):
        a = draw(hnp.arrays(np.uint8, shape))
        lo, hi = 0, 255
    else:
        elems = st.floats(0.0, 1.0, allow_nan=False, width=32)
        a = draw(hnp.arrays(np.float32, shape, elements=elems))
        lo, hi = 0.0, 1.0
    # make sure there is some ink: one pixel far from the rest
    i = draw(st.integers(0, shape[0] - 1))
    j = draw(st.integers(0, shape[1] - 1))
    a = a.copy()
    a[i, j] = hi if a.mean() < (lo + hi) / 2 else lo
    if np.ptp(a.astype(np.float64)) < 0.2 * hi:
        a[(i + 1) % shape[0], (j + 1) % shape[1]] = lo if a[i, j] == hi else hi
    return a


@settings(max_examples=150, deadline=None)
@given(inked_arrays())
def test_property_output_is_always_a_valid_mnist_vector(a):
    x = preprocess(a)
    check_mnist_like(x)
    assert x.max() > 0.0  # the ink did not vanish
