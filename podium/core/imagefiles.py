"""Reading image files where the table is built: sizes from headers, before any model exists."""
from __future__ import annotations

import numpy as np

from podium.errors import PodiumError


def image_sizes(paths) -> np.ndarray:
    """(width, height) of each image, read from the file headers only."""
    from PIL import Image, UnidentifiedImageError

    sizes = np.zeros((len(paths), 2), dtype=np.int64)
    for row, path in enumerate(paths):
        try:
            with Image.open(path) as image:
                sizes[row] = image.size
        except (OSError, UnidentifiedImageError) as exc:
            raise PodiumError(f"cannot read the size of image {path}: {exc}") from None
    return sizes
