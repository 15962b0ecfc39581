"""Synthetic photos for `podium demo` and the tests: each class has a learnable look.

Class k draws shapes of its own kind and colour cast on a noisy background, so even a
randomly initialised backbone separates the classes well above chance.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

_PALETTE = np.array(
    [[200, 60, 60], [60, 60, 200], [60, 180, 60], [200, 200, 60], [180, 60, 180],
     [60, 180, 180], [230, 130, 40], [120, 120, 120], [40, 40, 40], [240, 240, 240]],
    dtype=np.float32,
)


def demo_image(class_index: int, rng: np.random.Generator, size=(96, 96)) -> np.ndarray:
    """An RGB uint8 image whose colour and shape depend on `class_index`."""
    import cv2

    height, width = size
    background = rng.normal(110, 25, size=(height, width, 3)).clip(0, 255)
    image = background.astype(np.uint8)
    colour = _PALETTE[class_index % len(_PALETTE)] + rng.normal(0, 15, 3)
    colour = tuple(int(c) for c in colour.clip(0, 255))
    for _ in range(int(rng.integers(1, 4))):
        cx, cy = int(rng.integers(width // 5, 4 * width // 5)), int(rng.integers(height // 5, 4 * height // 5))
        radius = int(rng.integers(min(size) // 8, min(size) // 4))
        if class_index % 2 == 0:
            cv2.circle(image, (cx, cy), radius, colour, thickness=-1)
        else:
            cv2.rectangle(image, (cx - radius, cy - radius), (cx + radius, cy + radius), colour, thickness=-1)
    return image


def write_demo_image(path: Path, class_index: int, rng: np.random.Generator, size=(96, 96)) -> None:
    import cv2

    image = demo_image(class_index, rng, size)
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")
