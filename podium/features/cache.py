"""Precomputed backbone features, cached on disk and reused.

One entry per (backbone spec, file list, pass): `features.npy` written chunk by chunk as a
NumPy memory map, and `manifest.json` saying how many chunks are done. A complete entry is
served without building the backbone; an interrupted one resumes at its first unfinished
chunk. Only one chunk of images is in memory at a time, whatever the number of images.
Pass 0 is the plain images; pass k > 0 is a seeded augmented copy (for training and TTA).
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import PodiumError
from ..files import read_json, write_json


@dataclass
class CachedFeatures:
    array: np.ndarray  # read-only memory map, one row per path
    bad_rows: np.ndarray  # rows whose image could not be read (skipped, left as zeros)
    directory: Path
    hit: bool  # True when nothing had to be computed
    seconds: float


def files_fingerprint(paths) -> str:
    """Names, sizes and modification times: a changed or re-ordered file list is another entry."""
    digest = hashlib.sha256()
    for path in paths:
        stat = Path(path).stat() if Path(path).exists() else None
        digest.update(f"{path}|{stat.st_size if stat else -1}|{stat.st_mtime_ns if stat else -1}\n".encode())
    return digest.hexdigest()


class FeatureCache:
    """Feature entries under `root`, keyed by everything that changes the numbers."""

    def __init__(self, root: Path, *, chunk_size: int = 256, threads: int = 2):
        self.root = Path(root)
        self.chunk_size = int(chunk_size)
        self.threads = threads
        self._models: dict = {}  # built backbones, shared by the passes of one process

    def key(self, spec, paths, *, pass_index: int = 0, augment: list | None = None) -> dict:
        return {**spec.cache_key(), "files": files_fingerprint(paths), "n": len(paths), "pass": int(pass_index),
                "augment": augment if pass_index > 0 else None, "seed": spec.seed if pass_index > 0 else None}

    def directory(self, spec, key: dict) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        height, width = spec.size
        return self.root / f"{spec.label}-{height}x{width}-p{key['pass']}-{digest}"

    def features(self, spec, paths, *, pass_index: int = 0, augment: list | None = None,
                 batch_size: int = 32, skip_bad_images: bool = False, label: str = "") -> CachedFeatures:
        """Features of `paths` through the frozen backbone, from the cache or computed (and cached) now."""
        paths = [str(p) for p in paths]
        if pass_index > 0 and not augment:
            raise PodiumError("an augmented feature pass needs augment.transforms")
        key = self.key(spec, paths, pass_index=pass_index, augment=augment)
        folder = self.directory(spec, key)
        manifest_path = folder / "manifest.json"
        manifest = read_json(manifest_path) if manifest_path.is_file() else None
        if manifest is not None and manifest.get("key") != key:
            raise PodiumError(f"feature cache {folder} holds another entry; delete that folder")
        started = time.perf_counter()
        if manifest is not None and manifest["complete"]:
            return self._open(folder, manifest, hit=True, started=started)
        folder.mkdir(parents=True, exist_ok=True)
        manifest = self._compute(spec, paths, folder, key, manifest, augment=augment, batch_size=batch_size,
                                 skip_bad_images=skip_bad_images, label=label)
        return self._open(folder, manifest, hit=False, started=started)

    def _open(self, folder: Path, manifest: dict, *, hit: bool, started: float) -> CachedFeatures:
        array = np.load(folder / "features.npy", mmap_mode="r")
        return CachedFeatures(array=array, bad_rows=np.array(manifest["bad_rows"], dtype=np.int64),
                              directory=folder, hit=hit, seconds=time.perf_counter() - started)

    def _model(self, spec):
        if spec not in self._models:
            self._models[spec] = spec.build()
        return self._models[spec]

    def _compute(self, spec, paths, folder, key, manifest, *, augment, batch_size, skip_bad_images, label) -> dict:
        import keras

        from ..pipeline.augment import build_augment
        from ..pipeline.images import load_batch

        n = len(paths)
        chunks = max(1, (n + self.chunk_size - 1) // self.chunk_size)
        if manifest is None:
            manifest = {"key": key, "chunk_size": self.chunk_size, "chunks": chunks, "chunks_done": 0,
                        "bad_rows": [], "complete": False, "shape": None, "dtype": "float32"}
        elif manifest["chunk_size"] != self.chunk_size:
            raise PodiumError(f"feature cache {folder}: chunk size changed; delete that folder to start over")
        done = int(manifest["chunks_done"])
        model = self._model(spec)
        pass_name = f"pass {key['pass']}" + (" (augmented)" if key["pass"] else "")
        print(f"precompute {label or 'features'} {pass_name}: {n} images, {spec.label} {spec.size[0]}x{spec.size[1]}"
              + (f", resuming at image {done * self.chunk_size}" if done else ""))
        progress = keras.utils.Progbar(n, unit_name="image")
        progress.update(min(done * self.chunk_size, n))
        features = np.load(folder / "features.npy", mmap_mode="r+") if done else None
        for chunk in range(done, chunks):
            start, stop = chunk * self.chunk_size, min((chunk + 1) * self.chunk_size, n)
            # Seeded per chunk, so a resumed pass augments exactly as an uninterrupted one.
            transform = build_augment(augment, seed=spec.seed * 1_000_003 + key["pass"] * 10_007 + chunk) \
                if key["pass"] else None
            pixels, ok = load_batch(paths[start:stop], spec.size, augment=transform,
                                    skip_bad_images=skip_bad_images, threads=self.threads)
            outputs = []
            for offset in range(0, len(pixels), batch_size):
                batch = spec.preprocess(pixels[offset:offset + batch_size])
                outputs.append(keras.ops.convert_to_numpy(model(batch, training=False)))
            values = np.concatenate(outputs).astype(np.float32)
            if features is None:
                manifest["shape"] = [n, *values.shape[1:]]
                features = np.lib.format.open_memmap(folder / "features.npy", mode="w+", dtype=np.float32,
                                                     shape=tuple(manifest["shape"]))
            features[start:stop] = values
            features.flush()
            manifest["bad_rows"] += [start + int(i) for i in np.flatnonzero(~ok)]
            manifest["chunks_done"] = chunk + 1
            manifest["complete"] = chunk + 1 == chunks
            write_json(folder / "manifest.json", manifest)
            progress.update(stop)
        del features
        return manifest
