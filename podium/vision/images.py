"""Decoding images and feeding them to Keras in batches."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np

from podium.core.imagefiles import BadImageError, decode_image

__all__ = ["BadImageError", "load_image", "decode_images", "load_batch", "ImageDataset"]


def load_image(path: str, size) -> np.ndarray:
    """RGB uint8 array of shape (height, width, 3); raises BadImageError naming the file
    (whatever the decoder's failure: see `podium.core.imagefiles.decode_image`)."""
    import cv2

    image = decode_image(path)
    height, width = int(size[0]), int(size[1])
    if image.shape[:2] != (height, width):
        shrinking = image.shape[0] > height or image.shape[1] > width
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def decode_images(paths, size, *, skip_bad_images: bool = False, threads: int = 2, dtype=np.float32):
    """Decoded RGB images (None for an unreadable one when `skip_bad_images`), a mask of good rows,
    and a zeroed batch of their shape to fill (`dtype`: float32, or uint8 at a quarter of the memory)."""
    def read(path):
        try:
            return load_image(path, size)
        except BadImageError:
            if not skip_bad_images:
                raise
            return None

    with ThreadPoolExecutor(max_workers=threads) as pool:
        images = list(pool.map(read, paths))
    ok = np.array([image is not None for image in images], dtype=bool)
    return images, ok, np.zeros((len(images), int(size[0]), int(size[1]), 3), dtype=dtype)


def load_batch(paths, size, *, augment=None, skip_bad_images: bool = False, threads: int = 2, dtype=np.float32):
    """Decode (and augment) `paths` into (n, h, w, 3) pixels in 0..255 (float32, or the same values as uint8
    with `dtype=np.uint8`), plus a mask of good rows.

    A bad image raises unless `skip_bad_images`, where it becomes a blank image marked False.
    Augmentation runs in order on the calling thread so a seeded pipeline is reproducible.
    """
    images, ok, batch = decode_images(paths, size, skip_bad_images=skip_bad_images, threads=threads, dtype=dtype)
    for i, image in enumerate(images):
        if image is None:
            continue
        if augment is not None:
            image = augment(image=image)["image"]
        batch[i] = image
    return batch, ok


class ImageDataset(keras.utils.PyDataset):
    """Batches of preprocessed images (and one-hot labels) for training or prediction from JPEGs."""

    def __init__(self, paths, *, size, preprocess, labels=None, num_classes=None, augment=None,
                 batch_size=32, shuffle=False, seed=0, skip_bad_images=False, workers=1,
                 use_multiprocessing=False, max_queue_size=10):
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size)
        self.paths = [str(p) for p in paths]
        self.size = size
        self.preprocess = preprocess
        self.labels = None if labels is None else np.asarray(labels)
        self.num_classes = num_classes
        self.augment = augment
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.skip_bad_images = skip_bad_images
        self._rng = np.random.default_rng(seed)
        self._order = np.arange(len(self.paths))
        if shuffle:
            self._rng.shuffle(self._order)

    def __len__(self) -> int:
        return (len(self.paths) + self.batch_size - 1) // self.batch_size

    def __getitem__(self, index):
        rows = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        pixels, _ = load_batch([self.paths[i] for i in rows], self.size, augment=self.augment,
                               skip_bad_images=self.skip_bad_images, threads=1)
        x = self.preprocess(pixels)
        if self.labels is None:
            return (x,)
        y = keras.utils.to_categorical(self.labels[rows], self.num_classes)
        return x, y

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._rng.shuffle(self._order)
