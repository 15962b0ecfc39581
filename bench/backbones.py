"""Images per second of each `keras.applications` backbone podium builds, beside its published ImageNet top-1.

Speed does not depend on the weights, so every backbone is built with `image.weights=none` (no download):
the frozen conv base, its own preprocessing, `--images` random photos at `--size`, in batches of 32, after
one warm-up batch. The top-1 figures are the Keras applications table's (keras.io/api/applications).

    python bench/backbones.py [--size 224] [--images 128] [--names vgg16 efficientnetv2b0 ...]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

# ImageNet-1k top-1 of the Keras applications table (keras.io/api/applications), at each model's own size.
PUBLISHED_TOP1 = {"vgg16": 0.713, "resnet50": 0.749, "efficientnetb0": 0.771, "efficientnetv2b0": 0.787,
                  "efficientnetv2b1": 0.798, "efficientnetv2b2": 0.805, "efficientnetv2s": 0.839,
                  "convnext_tiny": 0.813}
BATCH = 32


def images_per_second(name: str, *, size: int, images: int) -> tuple[float, tuple]:
    from podium.config import IMAGE_DEFAULTS, deep_update
    from podium.vision.backbones import BackboneSpec

    spec = BackboneSpec.from_config(deep_update(IMAGE_DEFAULTS, {
        "image": {"backbone": name, "weights": "none", "size": [size, size]}}))
    model = spec.build()
    pixels = np.random.default_rng(0).uniform(0, 255, (BATCH, size, size, 3)).astype("float32")
    batch = spec.preprocess(pixels)
    model.predict(batch, verbose=0)  # warm-up: tracing and the first allocation
    started = time.perf_counter()
    for _ in range(max(1, images // BATCH)):
        model.predict(batch, verbose=0)
    seconds = time.perf_counter() - started
    return max(1, images // BATCH) * BATCH / seconds, tuple(model.output_shape[1:])


def main() -> None:
    from podium.vision.backbones import BUILDERS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--names", nargs="*", default=sorted(BUILDERS))
    args = parser.parse_args()
    print(f"{'backbone':18s} {'images/s':>9s} {'top-1':>6s}  features at {args.size}x{args.size}")
    for name in args.names:
        speed, shape = images_per_second(name, size=args.size, images=args.images)
        top1 = PUBLISHED_TOP1.get(name)
        print(f"{name:18s} {speed:9.1f} {f'{top1:.3f}' if top1 else '-':>6s}  {shape}", flush=True)


if __name__ == "__main__":
    main()
