"""Precomputed backbone features, cached on disk and reused.

One entry per (backbone spec, file list, pass): `features.npy` written chunk by chunk as a
NumPy memory map, and `manifest.json` saying how many chunks are done. A complete entry is
served without building the backbone; an interrupted one resumes at its first unfinished
chunk. Only one chunk of images is in memory at a time, whatever the number of images.
Pass 0 is the plain images; pass k > 0 is a seeded augmented copy (for training and TTA).
Given per-row boxes, an augmented pass moves them with its images (box-aware augmentation)
and keeps the moved boxes beside the features (`boxes.npy`).

Features are stored as float32 or, with `image.cache_dtype = "float16"`, at half the disk (another
entry). The disk the entries need is estimated (the backbone's output shape, no image read) and
refused in one line when the cache's disk has less free space; each features.npy is allocated in
full when it is created, so a disk that fills up meanwhile is an error at that point, never a
SIGBUS in the middle of a memory-mapped write. A full disk during a precompute stops it in one
line; the entry resumes from its last finished chunk once space is freed.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from podium.errors import PodiumError
from podium.files import read_json, write_json


@dataclass
class CachedFeatures:
    array: np.ndarray  # read-only memory map, one row per path
    bad_rows: np.ndarray  # rows whose image could not be read (skipped, left as zeros)
    directory: Path
    hit: bool  # True when nothing had to be computed
    seconds: float
    boxes: np.ndarray | None = None  # with `boxes` asked for: each row's box after its augmentation (NaN: none)

    def pooled(self) -> np.ndarray:
        """(N, 2C) float32 in memory: each row's per-channel mean over the feature map, then its mean square.

        What a gap head needs of a map (see `heads.PooledInputNorm`), computed once from the memory map and
        kept beside it in the entry (`pooled.npy`), so later runs and tuning trials read 2C numbers a row.
        Only for 4-D (N, H, W, C) features.
        """
        if getattr(self, "_pooled", None) is None:
            self._pooled = pooled_features(self)
        return self._pooled


def files_fingerprint(paths) -> str:
    """Names, sizes and modification times: a changed or re-ordered file list is another entry."""
    digest = hashlib.sha256()
    for path in paths:
        stat = Path(path).stat() if Path(path).exists() else None
        digest.update(f"{path}|{stat.st_size if stat else -1}|{stat.st_mtime_ns if stat else -1}\n".encode())
    return digest.hexdigest()


@contextlib.contextmanager
def _exclusive(lock_path: Path):
    """Hold an exclusive lock on `lock_path`: processes sharing a cache compute each entry once."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; processes there must not fill one entry at once
        yield
        return
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


STORAGE = ("float32", "float16")
DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)  # EFBIG: a file size limit (RLIMIT_FSIZE) was reached
RESERVE_BYTES = 64 * 2**20  # left free beyond the estimate: manifests, pooled moments, the run's own files


def free_bytes(path: Path) -> int:
    """Free bytes on the disk that holds `path` (or its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def gigabytes(size: int) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e8 else f"{size / 1e6:.1f} MB"


def _npy_bytes(shape, dtype) -> int:
    """A .npy file's size: its header (at most a few hundred bytes) and the data."""
    return 256 + int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def _allocated_bytes(path: Path) -> int:
    """Disk blocks a (possibly sparse) file already holds: a resumed entry needs only the rest."""
    try:
        return int(getattr(path.stat(), "st_blocks", 0)) * 512
    except OSError:
        return 0


def _create_map(path: Path, shape: tuple, dtype) -> np.memmap:
    """A new .npy memory map with its blocks allocated now: writing into a sparse map on a full disk kills the
    process with SIGBUS, allocating up front turns a short disk into an OSError here."""
    need = _npy_bytes(shape, dtype)
    free = free_bytes(path.parent)
    if need + RESERVE_BYTES > free:
        raise OSError(errno.ENOSPC, f"needs {gigabytes(need)}, {gigabytes(free)} free")
    array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=tuple(shape))
    if hasattr(os, "posix_fallocate"):
        try:
            with open(path, "r+b") as handle:
                os.posix_fallocate(handle.fileno(), 0, os.fstat(handle.fileno()).st_size)
        except OSError as exc:
            if exc.errno in DISK_FULL:
                raise
            # a file system without fallocate (EOPNOTSUPP, EINVAL): the free-space check above stands
    return array


POOLED_FILE = "pooled.npy"
POOL_ROWS = 256  # rows of the map read at a time while pooling


def pool_moments(maps: np.ndarray) -> np.ndarray:
    """(n, h, w, c) maps -> (n, 2c) float32: per-channel mean, then per-channel mean square (in float64)."""
    maps = np.asarray(maps, dtype=np.float64)
    return np.concatenate([maps.mean(axis=(1, 2)), np.square(maps).mean(axis=(1, 2))], axis=1).astype(np.float32)


def pooled_means(features, rows=None, *, block_rows: int = 1024) -> np.ndarray:
    """(len(rows), C) float32: each row's spatial mean of a feature map, or its features flattened.

    `features` is cached features, whose pooled moments (`pooled.npy`) hold the means without reading the maps
    again, or an array (a memory map is read a block of rows at a time, in file order, never whole)."""
    array = getattr(features, "array", features)
    rows = np.arange(len(array)) if rows is None else np.asarray(rows)
    is_map = np.ndim(array) == 4
    if is_map and isinstance(features, CachedFeatures):
        return np.asarray(pooled_features(features, mmap_mode="r")[rows, :array.shape[-1]], dtype=np.float32)
    width = array.shape[-1] if is_map else int(np.prod(array.shape[1:]))
    means = np.empty((len(rows), width), dtype=np.float32)
    for start in range(0, len(rows), block_rows):
        chunk = rows[start:start + block_rows]
        order = np.argsort(chunk, kind="stable")
        block = np.empty((len(chunk), *array.shape[1:]), dtype=np.float32)
        block[order] = array[chunk[order]]
        means[start:start + len(chunk)] = block.mean(axis=(1, 2)) if is_map else block.reshape(len(block), -1)
    return means


def pooled_features(features: "CachedFeatures", *, mmap_mode: str | None = None) -> np.ndarray:
    """(N, 2C) pooled moments of a 4-D entry, read from `pooled.npy` (memory-mapped with `mmap_mode`) or computed
    a block of rows at a time and written there."""
    array = features.array
    if array.ndim != 4:
        raise PodiumError(f"features of shape {array.shape[1:]} are not a map to pool")
    shape = (array.shape[0], 2 * array.shape[-1])
    path = Path(features.directory) / POOLED_FILE
    if path.is_file():
        try:
            pooled = np.load(path, mmap_mode=mmap_mode)
            if pooled.shape == shape and pooled.dtype == np.float32:
                return pooled
        except (ValueError, OSError, EOFError):
            pass  # damaged: pooled again below
    # Pooled straight into a temporary memory map, renamed when whole: no copy of all rows is held in memory.
    temporary = path.with_name(f".{POOLED_FILE}.{os.getpid()}.tmp")
    try:
        pooled = _create_map(temporary, shape, np.float32)
    except OSError:  # a read-only or full cache: pooled in memory, again next time
        pooled, temporary = np.empty(shape, dtype=np.float32), None
    try:
        for start in range(0, shape[0], POOL_ROWS):
            pooled[start:start + POOL_ROWS] = pool_moments(array[start:start + POOL_ROWS])
        if temporary is None:
            return pooled
        pooled.flush()
        del pooled
        os.replace(temporary, path)
    except BaseException:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise
    return np.load(path, mmap_mode=mmap_mode)


def _read_ahead(read, items):
    """(item, read(item)) for each item in order, `read` running one item ahead on a thread: its I/O and decoding
    (OpenCV releases the GIL) overlap the caller's work on the previous item. At most two items are in memory."""
    import queue
    import threading

    items = list(items)
    results: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def work():
        for item in items:
            try:
                result = (item, read(item), None)
            except BaseException as exc:  # handed to the caller, which raises it
                result = (item, None, exc)
            while not stop.is_set():
                try:
                    results.put(result, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if stop.is_set() or result[2] is not None:
                return

    thread = threading.Thread(target=work, name="podium-read-ahead", daemon=True)
    thread.start()
    try:
        for _ in items:
            item, value, error = results.get()
            if error is not None:
                raise error
            yield item, value
    finally:
        stop.set()
        thread.join()


MANIFEST_KEYS = ("key", "chunk_size", "chunks", "chunks_done", "bad_rows", "complete", "shape")


def _read_manifest(folder: Path, key: dict) -> dict | None:
    """The entry's manifest; None when there is none, {"damaged": True} when unreadable (then rebuilt)."""
    path = folder / "manifest.json"
    if not path.is_file():
        return None
    try:
        manifest = read_json(path)
    except PodiumError:
        return {"damaged": True}
    if not isinstance(manifest, dict) or any(name not in manifest for name in MANIFEST_KEYS):
        return {"damaged": True}
    if manifest["key"] != key:
        raise PodiumError(f"feature cache {folder} holds another entry; delete that folder")
    return manifest


def _npy_shape(path: Path) -> tuple[tuple, np.dtype, int]:
    """(shape, dtype, expected file size) from a .npy header, without reading the data."""
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = reader(handle)
        offset = handle.tell()
    return tuple(shape), dtype, offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize


def verify_entry(folder: Path, manifest: dict) -> str | None:
    """What is wrong with a cache entry's files against its manifest (shape, dtype, size); None when sound."""
    if manifest.get("damaged"):
        return "its manifest is damaged"
    if int(manifest["chunks_done"]) == 0:
        return None
    checks = [("features.npy", tuple(manifest["shape"] or ()), np.dtype(manifest.get("dtype", "float32")))]
    if "boxes" in manifest["key"]:
        checks.append(("boxes.npy", (int(manifest["key"]["n"]), 4), np.dtype(np.float32)))
    for name, shape, dtype in checks:
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        try:
            found, found_dtype, size = _npy_shape(path)
        except (ValueError, OSError, SyntaxError, EOFError) as exc:
            return f"{name} is damaged ({exc})"
        if found != shape or found_dtype != dtype:
            return f"{name} holds {found} {found_dtype}, the manifest says {shape} {dtype}"
        actual = path.stat().st_size
        if actual < size:
            return f"{name} is truncated ({actual} of {size} bytes)"
    return None


class FeatureCache:
    """Feature entries under `root`, keyed by everything that changes the numbers."""

    def __init__(self, root: Path, *, chunk_size: int = 256, threads: int = 2, storage: str = "float32"):
        if storage not in STORAGE:
            raise PodiumError(f"image.cache_dtype must be one of {', '.join(STORAGE)}, got {storage!r}")
        self.root = Path(root)
        self.chunk_size = int(chunk_size)
        self.threads = threads
        self.storage = storage
        self._models: dict = {}  # built backbones, shared by the passes of one process
        self._shapes: dict = {}  # backbone spec -> the shape of one row's features

    def key(self, spec, paths, *, pass_index: int = 0, augment: list | None = None, boxes=None) -> dict:
        key = {**spec.cache_key(), "files": files_fingerprint(paths), "n": len(paths), "pass": int(pass_index),
               "augment": augment if pass_index > 0 else None, "seed": spec.seed if pass_index > 0 else None}
        if self.storage != "float32":  # float32 entries keep the keys they always had
            key["storage"] = self.storage
        if boxes is not None and pass_index > 0:
            # A box-aware pipeline is another entry: it carries the moved boxes.
            key["boxes"] = hashlib.sha256(np.ascontiguousarray(boxes, dtype=np.float32).tobytes()).hexdigest()[:16]
        return key

    def directory(self, spec, key: dict) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        height, width = spec.size
        return self.root / f"{spec.label}-{height}x{width}-p{key['pass']}-{digest}"

    def features(self, spec, paths, *, pass_index: int = 0, augment: list | None = None,
                 batch_size: int = 32, skip_bad_images: bool = False, label: str = "",
                 boxes: np.ndarray | None = None) -> CachedFeatures:
        """Features of `paths` through the frozen backbone, from the cache or computed (and cached) now.

        `boxes`: one (x0, y0, x1, y1) per path in network-input pixels (NaN: none), moved with the
        augmentation of a pass k > 0 and returned as `.boxes` (unchanged for the plain pass 0).
        """
        paths = [str(p) for p in paths]
        if pass_index > 0 and not augment:
            raise PodiumError("an augmented feature pass needs augment.transforms")
        if boxes is not None:
            boxes = np.asarray(boxes, dtype=np.float32)
            if boxes.shape != (len(paths), 4):
                raise PodiumError(f"feature cache: expected {len(paths)} boxes of 4 numbers, got shape {boxes.shape}")
            if pass_index == 0:
                return replace(self.features(spec, paths, batch_size=batch_size, skip_bad_images=skip_bad_images,
                                             label=label), boxes=boxes)
        key = self.key(spec, paths, pass_index=pass_index, augment=augment, boxes=boxes)
        folder = self.directory(spec, key)
        if self.root.exists() and not self.root.is_dir():
            raise PodiumError(f"feature cache {self.root} is a file, not a folder; check paths.cache")
        manifest = _read_manifest(folder, key)
        started = time.perf_counter()
        if manifest is not None and manifest.get("complete") and verify_entry(folder, manifest) is None:
            return self._open(folder, manifest, hit=True, started=started)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise PodiumError(f"feature cache {folder} cannot be created: a file stands in the way; "
                              "check paths.cache") from None
        with _exclusive(folder / ".lock"):
            # Another process (e.g. a parallel tuning worker) may have computed this entry while we waited.
            manifest = _read_manifest(folder, key)
            damage = verify_entry(folder, manifest) if manifest is not None else None
            if damage is not None:
                # A damaged entry (a deleted or truncated features.npy...) is computed again, from scratch.
                print(f"feature cache {folder}: {damage}; computing this entry again")
                for name in ("manifest.json", "features.npy", "boxes.npy", POOLED_FILE):
                    (folder / name).unlink(missing_ok=True)
                manifest = None
            if manifest is not None and manifest["complete"]:
                return self._open(folder, manifest, hit=True, started=started)
            manifest = self._compute(spec, paths, folder, key, manifest, augment=augment, batch_size=batch_size,
                                     skip_bad_images=skip_bad_images, label=label, boxes=boxes)
        return self._open(folder, manifest, hit=False, started=started)

    def pending(self, spec, entries) -> list:
        """The `entries` (`(paths, pass_index, augment)` each) not complete in the cache, with the bytes each still
        needs (`(paths, pass_index, augment, bytes)`: the rest of a resumed one). Builds the backbone to read its
        output shape when anything is missing; reads no image."""
        missing = []
        for paths, pass_index, augment in entries:
            paths = [str(p) for p in paths]
            key = self.key(spec, paths, pass_index=pass_index, augment=augment)
            folder = self.directory(spec, key)
            manifest = _read_manifest(folder, key)
            if manifest is not None and manifest.get("complete") and verify_entry(folder, manifest) is None:
                continue
            shape = self.feature_shape(spec)
            size = _npy_bytes((len(paths), *shape), self.storage) - _allocated_bytes(folder / "features.npy")
            if len(shape) == 3:  # a map's pooled moments are written beside it
                size += _npy_bytes((len(paths), 2 * shape[-1]), np.float32) - _allocated_bytes(folder / POOLED_FILE)
            missing.append((paths, pass_index, augment, max(size, 0)))
        return missing

    def bytes_needed(self, spec, entries) -> int:
        """Disk still needed for `entries` (see `pending`): 0 when all are complete."""
        return sum(entry[-1] for entry in self.pending(spec, entries))

    def ensure_space(self, spec, entries, *, what: str = "features") -> int:
        """Print the disk the missing `entries` need and refuse in one line when the cache's disk has less free."""
        need = self.bytes_needed(spec, entries)
        if need == 0:
            return 0
        free = free_bytes(self.root)
        if need + RESERVE_BYTES > free:
            raise PodiumError(f"feature cache: {what} needs {gigabytes(need)} in {self.root}/, {gigabytes(free)} free; "
                              "free some space, set paths.cache to a larger disk"
                              + (" or image.cache_dtype=float16 (half the size)" if self.storage == "float32" else ""))
        print(f"feature cache: {what} needs {gigabytes(need)} in {self.root}/ ({gigabytes(free)} free, "
              f"{self.storage})")
        return need

    def feature_shape(self, spec) -> tuple:
        """One row's feature shape for `spec` (the backbone is built, no image is read)."""
        if spec not in self._shapes:
            model = self._model(spec)
            self._shapes[spec] = tuple(int(v) for v in model.compute_output_shape((1, *spec.size, 3))[1:])
        return self._shapes[spec]

    def _open(self, folder: Path, manifest: dict, *, hit: bool, started: float) -> CachedFeatures:
        damage = verify_entry(folder, manifest)
        if damage is not None:  # only after a compute just finished: a bug or a full disk, not a user's doing
            raise PodiumError(f"feature cache {folder}: {damage}; delete that folder and run again")
        array = np.load(folder / "features.npy", mmap_mode="r")
        boxes = np.load(folder / "boxes.npy") if "boxes" in manifest["key"] else None
        return CachedFeatures(array=array, bad_rows=np.array(manifest["bad_rows"], dtype=np.int64),
                              directory=folder, hit=hit, seconds=time.perf_counter() - started, boxes=boxes)

    def _model(self, spec):
        if spec not in self._models:
            self._models[spec] = spec.build()
        return self._models[spec]

    def _predict_function(self, spec):
        """The backbone's compiled inference call (`predict_on_batch`: traced once, no eager first batch, whose
        intermediate tensors alone took gigabytes); an eager call where a backend cannot compile it."""
        from podium.core.backend import device_multiple

        model = self._model(spec)
        multiple = device_multiple()

        def predict(batch):
            rows = len(batch)
            short = -rows % multiple
            if short:  # a last batch that does not split evenly over the devices: pad, then drop the padding
                batch = np.concatenate([batch, np.zeros((short, *batch.shape[1:]), dtype=batch.dtype)])
            try:
                return np.asarray(model.predict_on_batch(batch))[:rows]
            except (NotImplementedError, RuntimeError, ValueError, TypeError):
                return np.asarray(model(batch, training=False))[:rows]
        return predict

    def _compute(self, spec, paths, folder, key, manifest, *, augment, batch_size, skip_bad_images, label,
                 boxes=None) -> dict:
        import keras

        from podium.vision.augment import build_augment
        from podium.vision.boxes import load_batch_with_boxes
        from podium.vision.images import load_batch

        n = len(paths)
        chunks = max(1, (n + self.chunk_size - 1) // self.chunk_size)
        if manifest is None:
            manifest = {"key": key, "chunk_size": self.chunk_size, "chunks": chunks, "chunks_done": 0,
                        "bad_rows": [], "complete": False, "shape": None, "dtype": self.storage}
        elif manifest["chunk_size"] != self.chunk_size:
            raise PodiumError(f"feature cache {folder}: chunk size changed; delete that folder to start over")
        done = int(manifest["chunks_done"])
        predict = self._predict_function(spec)
        pass_name = f"pass {key['pass']}" + (" (augmented)" if key["pass"] else "")
        print(f"precompute {label or 'features'} {pass_name}: {n} images, {spec.label} {spec.size[0]}x{spec.size[1]}"
              + (f", resuming at image {done * self.chunk_size}" if done else ""))
        progress = keras.utils.Progbar(n, unit_name="image")
        progress.update(min(done * self.chunk_size, n))
        moved_boxes = None
        if boxes is not None:
            moved_boxes = np.lib.format.open_memmap(folder / "boxes.npy", mode="r+" if done else "w+",
                                                    dtype=np.float32, shape=(n, 4))
        def read(chunk):
            """Chunk `chunk`'s images, decoded (threads) then augmented in order: (pixels uint8, ok, moved)."""
            start, stop = chunk * self.chunk_size, min((chunk + 1) * self.chunk_size, n)
            # Seeded per chunk, so a resumed pass augments exactly as an uninterrupted one.
            transform = build_augment(augment, seed=spec.seed * 1_000_003 + key["pass"] * 10_007 + chunk,
                                      bbox=boxes is not None) if key["pass"] else None
            if boxes is None:
                pixels, ok = load_batch(paths[start:stop], spec.size, augment=transform,
                                        skip_bad_images=skip_bad_images, threads=self.threads, dtype=np.uint8)
                return pixels, ok, None
            return load_batch_with_boxes(paths[start:stop], spec.size, augment=transform, boxes=boxes[start:stop],
                                         skip_bad_images=skip_bad_images, threads=self.threads)

        try:
            self._fill(folder, manifest, read, predict, progress, spec=spec, n=n, chunks=chunks, done=done,
                       batch_size=batch_size, moved_boxes=moved_boxes)
        except OSError as exc:
            if exc.errno not in DISK_FULL:
                raise
            finished = min(int(manifest["chunks_done"]) * self.chunk_size, n)
            raise PodiumError(f"feature cache {folder}: the disk is full ({exc.strerror or exc}) after {finished} of "
                              f"{n} images; free some space (or set paths.cache to a larger disk) and run again: "
                              "it resumes from there") from None
        return manifest

    def _fill(self, folder, manifest, read, predict, progress, *, spec, n, chunks, done, batch_size, moved_boxes):
        """Chunks `done`.. of an entry into features.npy, the manifest written after each one."""
        import keras

        # The next chunk's files are decoded and augmented on a thread while the backbone runs on this one.
        for chunk, (pixels, ok, moved) in _read_ahead(read, range(done, chunks)):
            start, stop = chunk * self.chunk_size, min((chunk + 1) * self.chunk_size, n)
            if moved_boxes is not None:
                moved_boxes[start:stop] = moved
                moved_boxes.flush()
            # The map is opened for one chunk and closed after it: pages written stay in the kernel's file
            # cache, not in this process, so a precompute's memory does not grow with the number of images.
            features = pooled = None
            for offset in range(0, len(pixels), batch_size):
                batch = spec.preprocess(pixels[offset:offset + batch_size].astype(np.float32))
                with np.errstate(over="ignore"):  # a value beyond float16 becomes inf, refused just below
                    out = np.asarray(keras.ops.convert_to_numpy(predict(batch)), dtype=manifest["dtype"])
                if out.dtype == np.float16 and not np.isfinite(out).all():
                    raise PodiumError(f"{spec.label} features exceed float16's range (65,504); set "
                                      "image.cache_dtype=float32")
                if manifest["shape"] is None:
                    features = _create_map(folder / "features.npy", (n, *out.shape[1:]), manifest["dtype"])
                    if out.ndim == 4:  # a map: its pooled moments too, so a gap head never reads the map again
                        pooled = _create_map(folder / POOLED_FILE, (n, 2 * out.shape[-1]), np.float32)
                    manifest["shape"], manifest["pooled"] = [n, *out.shape[1:]], pooled is not None
                elif features is None:
                    features = np.load(folder / "features.npy", mmap_mode="r+")
                    if manifest.get("pooled"):
                        pooled = np.load(folder / POOLED_FILE, mmap_mode="r+")
                rows = slice(start + offset, start + offset + len(out))
                features[rows] = out  # straight into the memory map
                if pooled is not None:
                    pooled[rows] = pool_moments(out)
            del pixels
            for written in (features, pooled):
                if written is not None:
                    written.flush()
            del features, pooled
            manifest["bad_rows"] += [start + int(i) for i in np.flatnonzero(~ok)]
            manifest["chunks_done"] = chunk + 1
            manifest["complete"] = chunk + 1 == chunks
            write_json(folder / "manifest.json", manifest)
            progress.update(stop)
