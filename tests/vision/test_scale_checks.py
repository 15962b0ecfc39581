"""What a run checks before its precompute, so a big data set fails in seconds, not after an hour."""
import shutil

import pytest

from podium.competitions import get
from podium.config import deep_update
from podium.evaluation.runner import demo_config, resolve_config
from podium.vision import cache as cache_module
from podium.vision import images
from podium.vision.data import load_image_data
from podium.vision.images import BadImageError


@pytest.fixture
def setup(tmp_path, redux_data):
    plugin = get("dogs-vs-cats-redux")
    data = tmp_path / "data"
    shutil.copytree(redux_data, data)
    (data / "train" / "dog.30.jpg").write_bytes(b"\xff\xd8 not a jpeg")  # in the middle of the training images
    config = deep_update(demo_config(plugin, resolve_config(plugin)), {
        "paths": {"cache": str(tmp_path / "cache")}, "image": {"size": [32, 32]}, "tta": {"views": 0}})
    return plugin, data, config


def test_a_bad_image_is_named_before_any_image_is_decoded(setup, monkeypatch):
    plugin, data, config = setup
    monkeypatch.setattr(images, "load_batch", lambda *a, **k: pytest.fail("the precompute started"))
    with pytest.raises(BadImageError, match=r"dog\.30\.jpg.*skip_bad_images"):
        load_image_data(plugin, data, config, sample=False)


def test_with_skip_bad_images_it_is_skipped_and_counted(setup):
    plugin, data, config = setup
    config["data"]["skip_bad_images"] = True
    loaded = load_image_data(plugin, data, config, sample=False)
    assert loaded.bad_images == 1
    assert len(loaded.train_rows) + len(loaded.valid_rows) == 119


def test_a_short_disk_is_refused_before_any_image_is_read(setup, monkeypatch):
    plugin, data, config = setup
    monkeypatch.setattr(cache_module, "free_bytes", lambda path: 1000)
    monkeypatch.setattr(images, "load_batch", lambda *a, **k: pytest.fail("the precompute started"))
    with pytest.raises(cache_module.PodiumError, match=r"needs .* MB in .*cache.*, 0\.0 MB free"):
        load_image_data(plugin, data, config, sample=False)
