"""The one way podium reads image files: sizes from headers, pixels through OpenCV.

Any decoder's failure (missing, empty, truncated, not an image, a header claiming more pixels
than the decoder allows, a permission error) becomes a `BadImageError` naming the file, so a
user sees one line, and `data.skip_bad_images` can skip and count it, in every plugin and reader.
"""
from __future__ import annotations

import numpy as np

from podium.errors import PodiumError

# OpenCV refuses images above 2**30 pixels; PIL calls more than twice its limit a decompression bomb.
MAX_PIXELS = 1 << 30
SKIP_HINT = "set data.skip_bad_images=true to skip such files"
BAD_IMAGE_COLUMN = "bad_image"  # a table's rows whose image could not be read (plugins that read images to build it)


class BadImageError(PodiumError):
    """An image file that cannot be read or decoded."""


def _bad(path, why: str) -> BadImageError:
    return BadImageError(f"cannot read image {path} ({why}); {SKIP_HINT}")


def _decoder_reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    text = text[-1] if text else type(exc).__name__
    if "CV_IO_MAX_IMAGE_PIXELS" in str(exc) or "decompression bomb" in str(exc):
        return "its header claims more pixels than the decoder allows"
    return text[:160]


def image_size(path) -> tuple[int, int]:
    """(width, height) from the file's header; BadImageError naming the file on any failure."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
    except FileNotFoundError:
        raise _bad(path, "file not found") from None
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError(Exception)...
        raise _bad(path, _decoder_reason(exc)) from None
    if width <= 0 or height <= 0 or width * height > MAX_PIXELS:
        raise _bad(path, f"its header claims {width}x{height} pixels, beyond the decoder's limit")
    return int(width), int(height)


def image_sizes(paths, *, skip_bad_images: bool = False) -> np.ndarray:
    """(width, height) of each image from its header; (0, 0) for an unreadable one when
    `skip_bad_images`, else BadImageError naming the first such file."""
    sizes = np.zeros((len(paths), 2), dtype=np.int64)
    for row, path in enumerate(paths):
        try:
            sizes[row] = image_size(path)
        except BadImageError:
            if not skip_bad_images:
                raise
    return sizes


def jpeg_is_cut(data: bytes) -> bool:
    """Whether JPEG bytes lack the end-of-image marker (FFD9) after their last scan (FFDA): a file cut short
    (an interrupted copy or download) that decoders fill with grey without a word. Inside a scan every FF
    byte is stuffed (FF00), so both markers are unambiguous; bytes after the end marker are tolerated."""
    if data[:2] != b"\xff\xd8":
        return False
    last_scan = data.rfind(b"\xff\xda")
    return last_scan < 0 or data.find(b"\xff\xd9", last_scan) < 0


def decode_image(path) -> np.ndarray:
    """BGR uint8 pixels (height, width, 3) of the file at `path`; BadImageError naming it on any failure,
    a JPEG cut short included."""
    import cv2

    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise _bad(path, exc.strerror or type(exc).__name__) from None
    if jpeg_is_cut(data):
        raise _bad(path, "a JPEG cut short: its end marker is missing")
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    except cv2.error as exc:
        raise _bad(path, _decoder_reason(exc)) from None
    if image is None:
        raise _bad(path, "missing, empty, corrupt or not an image")
    if image.ndim != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise _bad(path, f"decoded to an unusable shape {image.shape}")
    return image
