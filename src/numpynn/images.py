"""Turn a picture of a handwritten digit into a 28x28 MNIST-style input.

This is the one preprocessing path shared by ``numpynn predict`` and the web
page, so a digit photographed on paper, drawn on a canvas or taken straight
from MNIST all reach the network looking like MNIST did::

    >>> from numpynn.images import preprocess          # doctest: +SKIP
    >>> x = preprocess("my_seven.jpg")                 # doctest: +SKIP
    >>> x.shape, x.dtype                               # doctest: +SKIP
    ((784,), dtype('float32'))

MNIST itself was made like this (LeCun et al.): each binary NIST digit was
scaled, keeping its aspect ratio, to fit a 20x20 box (anti-aliasing gives the
grey levels), then placed in a 28x28 field so that its centre of mass is at
the centre. Ink is bright (1.0) on a black (0.0) background. :func:`to_mnist`
repeats those steps on any greyscale picture.

Pillow is needed only to read and write image files (``pip install
'numpynn[images]'``); it is imported inside the functions that need it so
that ``import numpynn`` stays fast.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from numpynn._checks import one_line
from numpynn._io import atomic_write
from numpynn.errors import InvalidFileError

__all__ = [
    "MAX_PIXELS",
    "load_image",
    "to_mnist",
    "preprocess",
    "to_image",
    "save_png",
]

#: Largest image (width x height) that :func:`load_image` will decode. Bigger
#: files are refused before any pixel is decompressed, so a "decompression
#: bomb" (a tiny file that declares an enormous image) costs nothing.
MAX_PIXELS = 40_000_000

_SIDE = 28  # MNIST field
_BOX = 20  # MNIST digits are scaled so that their longer side is 20 px
_MAX_WORK = 2048  # larger pictures are shrunk to this (longer side) before the work
_CENTRE = 14.0  # MNIST's centre of mass, in pixel-index coordinates (rows, cols)
_MIN_CONTRAST = 0.05  # below this the picture is taken to be blank
_NOISE = 0.15  # ink fainter than this fraction of the darkest stroke is noise...
_FAINT = 0.02  # ...unless it touches a stroke and is above this (anti-aliasing)

_PIL_MISSING = "reading images needs Pillow: pip install 'numpynn[images]'"

PathLike = str | os.PathLike


def _pil() -> Any:
    """Import Pillow lazily; a clear ImportError if it is not installed."""
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError(_PIL_MISSING) from e
    return Image


# --------------------------------------------------------------------------- reading


def load_image(path: PathLike) -> np.ndarray:
    """Read an image file as greyscale.

    Returns a float32 array of shape ``(H, W)``, values in ``[0, 1]`` with
    0 = black and 1 = white. Any format Pillow reads works (PNG, JPEG, GIF,
    BMP, WebP, TIFF, ...). Transparent pixels are composited on white paper
    (on black if that is the only way the drawing shows, e.g. white ink on a
    transparent canvas); palette, 16-bit and CMYK images are converted; the
    EXIF orientation of phone photos is applied.

    Raises, each with a one-line message naming the file:

    - ``FileNotFoundError`` if there is no such file;
    - :class:`~numpynn.errors.InvalidFileError` if it is empty, not an image,
      truncated or corrupt, or larger than :data:`MAX_PIXELS` pixels
      (checked before decoding, so decompression bombs are cheap to refuse);
    - ``ImportError`` if Pillow is not installed.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise InvalidFileError(f"{path} is a folder, not an image file")
    with open(path, "rb") as f:  # permission errors surface here, as themselves
        return _decode(f, str(path))


def _decode(f: Any, name: str) -> np.ndarray:
    """Decode the image in the binary file ``f``; ``name`` is used in messages."""
    Image = _pil()
    from PIL import ImageOps

    bad = f"{name} is not a readable image (PNG, JPEG, ...)"
    start = f.tell() if hasattr(f, "tell") else 0
    if not f.read(1):
        raise InvalidFileError(f"{bad}: the file is empty")
    f.seek(start)
    with warnings.catch_warnings():
        # Only this category is touched, so the global state stays harmless
        # even if another thread is using catch_warnings at the same time.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(f)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise _too_large(name, e) from None
        except Image.UnidentifiedImageError:
            raise InvalidFileError(f"{bad}: unknown or damaged format") from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError) as e:
            raise InvalidFileError(f"{bad}: {one_line(e)}") from None
        with img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise InvalidFileError(
                    f"{name} is too large to read: {width}x{height} pixels is more than "
                    f"{MAX_PIXELS // 1_000_000} megapixels; shrink the picture first"
                )
            if width == 0 or height == 0:
                raise InvalidFileError(f"{bad}: it has no pixels ({width}x{height})")
            try:
                img.load()
                img = ImageOps.exif_transpose(img)
                return _pil_to_grey(img)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
                raise _too_large(name, e) from None
            except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError) as e:
                why = one_line(e) or type(e).__name__
                raise InvalidFileError(f"{bad}: truncated or corrupt ({why})") from None


def _too_large(name: str, e: Exception) -> InvalidFileError:
    """Pillow's own decompression-bomb check fired (the image is huge)."""
    return InvalidFileError(
        f"{name} is too large to read: more than {MAX_PIXELS // 1_000_000} megapixels, "
        f"possibly a decompression bomb ({one_line(e)})"
    )


def _pil_to_grey(img: Any) -> np.ndarray:
    """A PIL image (any mode) -> float32 (H, W) in [0, 1], 0 = black."""
    mode = img.mode
    if mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        a = np.asarray(img, dtype=np.float64)
        a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
        top = a.max(initial=0.0)
        if mode == "F" and top <= 1.0:
            scale = 1.0
        elif mode.startswith("I;16") or top > 255:
            scale = 65535.0
        else:
            scale = 255.0
        return np.clip(a / scale, 0.0, 1.0).astype(np.float32)
    has_alpha = "A" in img.getbands() or "a" in img.getbands() or "transparency" in img.info
    if not has_alpha:
        if mode != "L":
            img = img.convert("L")
        return np.asarray(img, dtype=np.float32) / np.float32(255.0)
    rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / np.float32(255.0)
    if mode in ("RGBa", "La"):  # premultiplied: undo before compositing
        rgba = rgba.copy()
        alpha = rgba[..., 3:4]
        np.divide(rgba[..., :3], alpha, out=rgba[..., :3], where=alpha > 0)
    luma = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    alpha = rgba[..., 3]
    on_white = np.clip(luma * alpha + (1.0 - alpha), 0.0, 1.0)
    if np.ptp(on_white) < _MIN_CONTRAST and np.ptp(alpha) >= _MIN_CONTRAST:
        # Light ink on a transparent canvas vanishes on white paper: use black.
        return np.clip(luma * alpha, 0.0, 1.0).astype(np.float32)
    return on_white.astype(np.float32)


# --------------------------------------------------------------------------- MNIST


def _as_grey(a: Any) -> np.ndarray:
    """A 2-D array (uint8 0..255, uint16, bool or float in [0, 1]) -> float32 in [0, 1]."""
    a = np.asarray(a)
    if a.ndim == 1 and a.size == _SIDE * _SIDE:
        a = a.reshape(_SIDE, _SIDE)
    if a.ndim == 3 and a.shape[2] in (3, 4):  # RGB / RGBA array
        a = _rgb_array_to_grey(a)
    if a.ndim != 2:
        raise ValueError(f"expected a 2-D greyscale image (H, W), got an array of shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"the image is empty (shape {a.shape})")
    if a.dtype == bool:
        return a.astype(np.float32)
    if np.issubdtype(a.dtype, np.integer):
        lo, hi = int(a.min()), int(a.max())
        if a.dtype == np.uint16 and hi > 255:
            return (a / 65535.0).astype(np.float32)
        if lo < 0 or hi > 255:
            raise ValueError(f"integer pixel values must lie in 0..255, got {lo}..{hi}")
        return (a / 255.0).astype(np.float32)
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"expected a numeric image array, got dtype {a.dtype}")
    if not np.all(np.isfinite(a)):
        raise ValueError("the image contains NaN or infinite values")
    lo, hi = float(a.min()), float(a.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise ValueError(
            f"float pixel values must lie in [0, 1], got {lo:g}..{hi:g} (pass uint8 for 0..255 images)"
        )
    return np.clip(a, 0.0, 1.0).astype(np.float32)


def _rgb_array_to_grey(a: np.ndarray) -> np.ndarray:
    scale = 255.0 if np.issubdtype(a.dtype, np.integer) else 1.0
    f = a.astype(np.float64) / scale
    luma = f[..., :3] @ np.array([0.299, 0.587, 0.114])
    if a.shape[2] == 4:
        alpha = np.clip(f[..., 3], 0.0, 1.0)
        luma = luma * alpha + (1.0 - alpha)
    return np.clip(luma, 0.0, 1.0)


def _dilate(mask: np.ndarray) -> np.ndarray:
    """3x3 binary dilation, zero-padded."""
    p = np.pad(mask, 1)
    h, w = mask.shape
    out = np.zeros_like(mask)
    for dy in range(3):
        for dx in range(3):
            out |= p[dy : dy + h, dx : dx + w]
    return out


def _shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Move ``a`` by (dy, dx) pixels, filling with zeros; what leaves is lost."""
    h, w = a.shape
    out = np.zeros_like(a)
    if abs(dy) >= h or abs(dx) >= w:
        return out
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = a[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def _resize(
    a: np.ndarray,
    factor: float = 1.0,
    size: tuple[int, int] | None = None,
    box_filter: bool = False,
) -> np.ndarray:
    """Resample a 2-D float array with Pillow (mode "F"): Lanczos, or a box filter.

    Both are antialiased when shrinking. ``size`` is (rows, cols); without it
    the shape is scaled by ``factor`` (each side at least 1 px).
    """
    Image = _pil()
    if size is None:
        size = (max(1, round(a.shape[0] * factor)), max(1, round(a.shape[1] * factor)))
    resampling = getattr(Image, "Resampling", Image)
    method = resampling.BOX if box_filter else resampling.LANCZOS
    pic = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32))  # mode "F"
    return np.asarray(pic.resize((size[1], size[0]), method), dtype=np.float64)


def _whole(d: float) -> int:
    """Round a shift to whole pixels (halves go up)."""
    return int(np.floor(d + 0.5))


def _centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    total = float(a.sum())
    rows = np.arange(a.shape[0], dtype=np.float64)
    cols = np.arange(a.shape[1], dtype=np.float64)
    return float(a.sum(1) @ rows) / total, float(a.sum(0) @ cols) / total


def _ink(grey: np.ndarray) -> np.ndarray:
    """Steps 1-2 of :func:`to_mnist`: ink in [0, 1], background 0, faint noise removed."""
    h, w = grey.shape
    border = np.concatenate([grey[0], grey[-1], grey[1 : h - 1, 0], grey[1 : h - 1, w - 1]])
    background = float(np.median(border))
    darker = background - float(grey.min())  # how far dark marks go below the paper
    lighter = float(grey.max()) - background  # how far light marks go above it
    if max(darker, lighter) < _MIN_CONTRAST:
        raise ValueError("no ink found: the image looks blank")
    # The background is the border's colour; the ink is whatever departs from it
    # the most, darker (pen on paper) or lighter (chalk on a board, MNIST itself).
    ink = (background - grey) if darker > lighter else (grey - background)
    ink = np.clip(ink, 0.0, None) / max(darker, lighter)
    strong = ink >= _NOISE
    keep = strong | (_dilate(strong) & (ink >= _FAINT))
    return np.where(keep, ink, 0.0)


def to_mnist(grey: np.ndarray) -> np.ndarray:
    """Make a greyscale picture of one digit look like an MNIST sample.

    ``grey``: 2-D array ``(H, W)`` -- float in ``[0, 1]`` with 0 = black
    (what :func:`load_image` returns), or uint8 0..255. Any size, either
    polarity. Returns a float32 vector of shape ``(784,)`` in ``[0, 1]``
    (a 28x28 image, row-major), ink = 1 on a 0 background.

    Steps (those used to build MNIST, after the first two; a picture larger
    than 2048 px is first shrunk to that with a box filter):

    1. Polarity: the background is the colour of the border (median of the
       outer rows and columns); the ink is what departs from it most -- dark
       ink on light paper is inverted, light ink on dark is kept.
    2. Contrast: subtract the background, scale so the strongest ink is 1;
       ink weaker than 15% of that is noise and set to 0, except faint pixels
       touching a stroke (anti-aliasing), which are kept.
    3. Crop to the bounding box of the ink. No ink at all raises
       ``ValueError("no ink found: the image looks blank")``.
    4. Resize (Lanczos, antialiased) so the longer side is 20 px, keeping the
       aspect ratio (the shorter side is at least 1 px); rescale to max 1.
    5. Paste the box centred in a 28x28 black field, then shift it by whole
       pixels so that the ink's centre of mass lands on pixel (14, 14); ink
       pushed past the edge is dropped.

    A 28x28 image that is already MNIST-style comes back (nearly) unchanged.
    """
    g = _as_grey(grey)
    if max(g.shape) > _MAX_WORK:  # a big photo: work on a smaller copy
        g = _resize(g, _MAX_WORK / max(g.shape), box_filter=True)
    ink = _ink(g.astype(np.float64))

    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    box = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]

    h, w = box.shape
    factor = _BOX / max(h, w)
    new_w = min(_BOX, max(1, int(np.floor(w * factor + 0.5))))
    new_h = min(_BOX, max(1, int(np.floor(h * factor + 0.5))))
    if (new_h, new_w) != (h, w):
        box = _resize(box, size=(new_h, new_w))
        box = np.clip(box, 0.0, None)  # Lanczos rings below zero next to strokes
        top = box.max()
        if not top > 0:  # pragma: no cover - a non-empty crop never vanishes
            raise ValueError("no ink found: the image looks blank")
        box = np.minimum(box / top, 1.0)

    canvas = np.zeros((_SIDE, _SIDE))
    y0, x0 = (_SIDE - new_h) // 2, (_SIDE - new_w) // 2
    canvas[y0 : y0 + new_h, x0 : x0 + new_w] = box
    cy, cx = _centre_of_mass(canvas)
    canvas = _shift(canvas, _whole(_CENTRE - cy), _whole(_CENTRE - cx))
    return np.clip(canvas, 0.0, 1.0).astype(np.float32).reshape(-1)


def preprocess(image: Any) -> np.ndarray:
    """Turn whatever the user gave into the network's input: ``(784,)`` float32.

    ``image`` may be

    - a path (``str`` or ``os.PathLike``) to an image file -- read with
      :func:`load_image`;
    - the bytes of an image file (e.g. an upload);
    - a PIL image;
    - an array: 2-D ``(H, W)`` greyscale (uint8 0..255 or float in
      ``[0, 1]``), ``(H, W, 3|4)`` RGB(A), or a flat ``(784,)`` MNIST vector.

    then it goes through :func:`to_mnist`. This is the one preprocessing
    function used by both ``numpynn predict`` and the web page. Errors about
    a file name the file; ``InvalidFileError``/``ValueError`` say what is wrong.
    """
    if isinstance(image, (str, os.PathLike)):
        grey = load_image(image)
        try:
            return to_mnist(grey)
        except ValueError as e:
            raise InvalidFileError(f"{image}: {e}") from None
    if isinstance(image, (bytes, bytearray, memoryview)):
        grey = _decode(io.BytesIO(bytes(image)), "the uploaded image")
        return to_mnist(grey)
    if type(image).__module__.startswith("PIL.") and hasattr(image, "getbands"):
        from PIL import ImageOps

        return to_mnist(_pil_to_grey(ImageOps.exif_transpose(image)))
    return to_mnist(image)


# --------------------------------------------------------------------------- showing


def to_image(x: np.ndarray, scale: int = 1, invert: bool = False) -> np.ndarray:
    """What the network sees, as a picture.

    ``x``: ``(784,)`` (or ``(28, 28)``) float in ``[0, 1]``. Returns a uint8
    array of shape ``(28*scale, 28*scale)``, each pixel repeated ``scale``
    times (nearest neighbour, so the pixels stay visible). ``invert=True``
    gives dark ink on white.
    """
    a = np.asarray(x, dtype=np.float64)
    if a.size != _SIDE * _SIDE or a.ndim not in (1, 2):
        raise ValueError(f"expected 784 values (a 28x28 image), got shape {a.shape}")
    if not isinstance(scale, (int, np.integer)) or isinstance(scale, bool) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    a = np.clip(np.nan_to_num(a.reshape(_SIDE, _SIDE)), 0.0, 1.0)
    if invert:
        a = 1.0 - a
    img = np.rint(a * 255.0).astype(np.uint8)
    if scale > 1:
        img = np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)
    return img


def save_png(array: np.ndarray, path: PathLike) -> None:
    """Write ``array`` to ``path`` as a PNG, atomically.

    ``array``: uint8 ``(H, W)`` greyscale or ``(H, W, 3|4)`` RGB(A); a float
    array in ``[0, 1]`` is scaled to 0..255; a ``(784,)`` vector is shown as
    a 28x28 image (see :func:`to_image`).
    """
    Image = _pil()
    a = np.asarray(array)
    if a.ndim == 1 and a.size == _SIDE * _SIDE:
        a = to_image(a)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or a.size == 0:
        raise ValueError(f"expected an (H, W) or (H, W, 3|4) image, got shape {a.shape}")
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating) or a.dtype == bool:
            a = np.rint(np.clip(np.nan_to_num(a.astype(np.float64)), 0.0, 1.0) * 255.0)
        else:
            a = np.clip(a, 0, 255)
        a = a.astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a)).save(buf, format="PNG")
    with atomic_write(path) as f:
        f.write(buf.getvalue())
