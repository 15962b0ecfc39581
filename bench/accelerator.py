"""One command for a lent GPU: backend, devices, precision, and images/s of the three image workloads.

    pip install -e ".[gpu]" && KERAS_BACKEND=jax python bench/accelerator.py
    KERAS_BACKEND=jax python bench/accelerator.py --precision auto --data-parallel   # every device, mixed

Measures on the present device (the backend's default) a feature precompute through the frozen
backbone, one head epoch on those features and one fine-tuning epoch (last block + head, from
images), each after a warm-up that compiles it; then runs the same in a fresh process pinned to
the CPU (JAX_PLATFORMS=cpu, CUDA_VISIBLE_DEVICES="") and prints the ratios. Offline: random
weights and random pixels, which cost the same time as real ones.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def measure(args) -> dict:
    import keras
    import numpy as np

    from podium.config import IMAGE_DEFAULTS
    from podium.core.backend import backend_report, configure, devices, predict_batch
    from podium.vision.backbones import BUILDERS, BackboneSpec
    from podium.vision.heads import build_head

    precision = args.precision
    if precision == "auto":
        on_gpu = any(d.startswith(("gpu", "cuda")) for d in devices())
        precision = "mixed_float16" if on_gpu else "mixed_bfloat16"
    configure({"image": {"precision": precision, "data_parallel": args.data_parallel}}, quiet=True)
    report = backend_report()
    spec = BackboneSpec(name=args.backbone, weights="none", preprocessing=BUILDERS[args.backbone][1],
                        size=(args.size, args.size), precision=precision)
    rng = np.random.default_rng(0)
    n, batch = args.images, args.batch_size
    pixels = rng.integers(0, 256, size=(n, args.size, args.size, 3)).astype("float32")
    labels = np.eye(2, dtype="float32")[rng.integers(0, 2, size=n)]
    results = {**report, "backbone": args.backbone, "size": args.size, "images": n}

    backbone = spec.build()
    keras.ops.convert_to_numpy(predict_batch(backbone, spec.preprocess(pixels[:batch])))  # compile
    started = time.perf_counter()
    features = np.concatenate([keras.ops.convert_to_numpy(predict_batch(backbone, spec.preprocess(pixels[i:i + batch])))
                               for i in range(0, n, batch)]).astype("float32")
    results["precompute_images_per_s"] = n / (time.perf_counter() - started)

    head_config = {**IMAGE_DEFAULTS["head"], "kind": "gap"}
    head = build_head(features.shape[1:], 2, head_config)
    head.compile(optimizer="adam", loss="categorical_crossentropy")
    head.fit(features[:batch], labels[:batch], batch_size=batch, epochs=1, verbose=0)  # compile
    started = time.perf_counter()
    head.fit(features, labels, batch_size=batch, epochs=1, verbose=0)
    results["head_epoch_images_per_s"] = n / (time.perf_counter() - started)

    # Fine-tuning: the backbone's last block and the head, end to end from images.
    tuned = spec.build()
    first = spec.finetune_from(tuned)
    tuned.trainable, unfrozen = True, False
    for layer in tuned.layers:
        unfrozen = unfrozen or layer.name == first
        layer.trainable = unfrozen and not isinstance(layer, keras.layers.BatchNormalization)
    inputs = keras.Input((args.size, args.size, 3))
    model = keras.Model(inputs, head(tuned(inputs, training=False)))
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="categorical_crossentropy")
    images = spec.preprocess(pixels)
    model.fit(images[:batch], labels[:batch], batch_size=batch, epochs=1, verbose=0)  # compile
    started = time.perf_counter()
    model.fit(images, labels, batch_size=batch, epochs=1, verbose=0)
    results["finetune_epoch_images_per_s"] = n / (time.perf_counter() - started)
    return results


WORKLOADS = ("precompute_images_per_s", "head_epoch_images_per_s", "finetune_epoch_images_per_s")


def show(title: str, result: dict) -> None:
    print(f"{title}: backend {result['backend']}, devices {', '.join(result['devices'])}, precision "
          f"{result['precision']}{', data parallel' if result['data_parallel'] else ''}; {result['backbone']} "
          f"{result['size']}x{result['size']}, {result['images']} images")
    for key in WORKLOADS:
        print(f"  {key.replace('_images_per_s', ''):<15} {result[key]:10.1f} images/s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="vgg16", choices=["vgg16", "resnet50", "efficientnetb0", "convnext_tiny"])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--images", type=int, default=256, help="a multiple of --batch-size")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--precision", default="float32", choices=["float32", "mixed_float16", "mixed_bfloat16", "auto"])
    parser.add_argument("--data-parallel", action="store_true", help="split batches over every device (JAX)")
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU reference run")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # the CPU reference child
    args = parser.parse_args(argv)
    args.images -= args.images % args.batch_size  # full batches only: one compiled shape, and splittable
    result = measure(args)
    if args.json:
        print("RESULT " + json.dumps(result))
        return 0
    show("present device", result)
    on_cpu = all(d.startswith("cpu") for d in result["devices"])
    if on_cpu:
        print("the present device is the CPU: no accelerator to compare (ratios are 1 by definition)")
        return 0
    if args.no_cpu:
        return 0
    child = [sys.executable, __file__, "--json", "--backbone", args.backbone, "--size", str(args.size),
             "--images", str(args.images), "--batch-size", str(args.batch_size), "--precision",
             "float32" if args.precision == "mixed_float16" else args.precision]
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(REPO)}
    done = subprocess.run(child, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stderr[-2000:])
        return 1
    cpu = json.loads(done.stdout.split("RESULT ", 1)[1])
    show("CPU", cpu)
    for key in WORKLOADS:
        print(f"  {key.replace('_images_per_s', ''):<15} x{result[key] / cpu[key]:.1f} on {result['devices'][0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
