import numpy as np
import pytest

from podium.vision.augment import build_augment
from podium.vision.images import BadImageError, ImageDataset, load_batch, load_image


def test_load_image_resizes_to_rgb(redux_data):
    image = load_image(redux_data / "train" / "cat.0.jpg", (40, 56))
    assert image.shape == (40, 56, 3) and image.dtype == np.uint8


def test_bad_image_is_named_or_skipped(tmp_path, redux_data):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    good = redux_data / "train" / "dog.0.jpg"
    with pytest.raises(BadImageError, match="broken.jpg"):
        load_batch([good, bad], (32, 32))
    pixels, ok = load_batch([good, bad], (32, 32), skip_bad_images=True)
    assert ok.tolist() == [True, False]
    assert pixels[1].max() == 0 and pixels[0].max() > 0


def test_dataset_batches_have_model_shapes_and_one_hot_labels(redux_data):
    paths = sorted((redux_data / "train").glob("*.jpg"))[:10]
    dataset = ImageDataset(paths, size=(32, 48), preprocess=lambda x: x / 255.0, labels=np.arange(10) % 2,
                           num_classes=2, batch_size=4)
    assert len(dataset) == 3
    x, y = dataset[0]
    assert x.shape == (4, 32, 48, 3) and y.shape == (4, 2)
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert dataset[2][0].shape[0] == 2


def test_configured_augmentation_changes_pixels_reproducibly(redux_data):
    paths = [redux_data / "train" / "cat.1.jpg"] * 2
    transforms = [{"name": "Affine", "translate_percent": [0.1, 0.2], "rotate": [10, 20], "p": 1.0}]
    plain, _ = load_batch(paths, (48, 48))
    a, _ = load_batch(paths, (48, 48), augment=build_augment(transforms, seed=3))
    b, _ = load_batch(paths, (48, 48), augment=build_augment(transforms, seed=3))
    assert not np.allclose(plain, a)
    assert np.allclose(a, b)


def test_unknown_transform_is_named():
    from podium.errors import PodiumError

    with pytest.raises(PodiumError, match="Wobble"):
        build_augment([{"name": "Wobble"}])
