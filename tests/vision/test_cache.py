import json

import numpy as np
import pytest

from podium.vision import cache as cache_module
from podium.vision.backbones import BackboneSpec
from podium.vision.cache import FeatureCache
from podium.vision import images
from podium.config import IMAGE_DEFAULTS, deep_update

AUGMENT = [{"name": "Affine", "translate_percent": [0.05, 0.1], "rotate": [5, 15], "p": 1.0}]


@pytest.fixture
def spec():
    # VGG16 (512 channels), whatever the default backbone is
    return BackboneSpec.from_config(deep_update(IMAGE_DEFAULTS, {"image": {"backbone": "vgg16", "size": [32, 32],
                                                                           "weights": "none"}}))


@pytest.fixture
def paths(redux_data):
    return sorted(str(p) for p in (redux_data / "train").glob("*.jpg"))[:50]


def test_miss_then_hit_without_building_the_backbone(tmp_path, spec, paths, monkeypatch):
    first = FeatureCache(tmp_path, chunk_size=16).features(spec, paths)
    assert not first.hit and first.array.shape == (50, 1, 1, 512)
    manifest = json.loads((first.directory / "manifest.json").read_text())
    assert manifest["complete"] and manifest["chunks_done"] == 4

    monkeypatch.setattr(BackboneSpec, "build", lambda self: pytest.fail("a cache hit built the backbone"))
    second = FeatureCache(tmp_path, chunk_size=16).features(spec, paths)
    assert second.hit
    assert np.array_equal(np.asarray(first.array), np.asarray(second.array))


def test_key_changes_with_files_size_and_pass(tmp_path, spec, paths):
    cache = FeatureCache(tmp_path, chunk_size=64)
    base = cache.features(spec, paths[:10]).directory
    assert cache.features(spec, paths[:11]).directory != base
    other_size = BackboneSpec.from_config(deep_update(IMAGE_DEFAULTS, {"image": {"backbone": "vgg16", "size": [48, 48],
                                                                                 "weights": "none"}}))
    assert cache.features(other_size, paths[:10]).directory != base
    assert cache.features(spec, paths[:10], pass_index=1, augment=AUGMENT).directory != base


def test_interrupted_precompute_resumes_from_finished_chunks(tmp_path, spec, paths, monkeypatch):
    complete = FeatureCache(tmp_path / "uninterrupted", chunk_size=16).features(spec, paths)

    calls = []
    real_load_batch = images.load_batch

    def failing_load_batch(batch_paths, *args, **kwargs):
        calls.append(len(batch_paths))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_load_batch(batch_paths, *args, **kwargs)

    monkeypatch.setattr(images, "load_batch", failing_load_batch)
    with pytest.raises(KeyboardInterrupt):
        FeatureCache(tmp_path / "resumed", chunk_size=16).features(spec, paths)
    calls.clear()
    resumed = FeatureCache(tmp_path / "resumed", chunk_size=16).features(spec, paths)
    assert calls == [16, 2]  # chunks 0 and 1 were kept; only chunks 2 and 3 ran again
    assert np.allclose(np.asarray(resumed.array), np.asarray(complete.array), atol=1e-5)


def test_memory_is_bounded_by_the_chunk(tmp_path, spec, paths, monkeypatch):
    sizes = []
    real_load_batch = images.load_batch
    monkeypatch.setattr(images, "load_batch", lambda p, *a, **k: sizes.append(len(p)) or real_load_batch(p, *a, **k))
    FeatureCache(tmp_path, chunk_size=8).features(spec, paths)
    assert max(sizes) == 8 and sum(sizes) == len(paths)


def test_augmented_pass_differs_from_plain_and_is_reproducible(tmp_path, spec, paths):
    plain = FeatureCache(tmp_path / "a").features(spec, paths[:12])
    augmented = FeatureCache(tmp_path / "a").features(spec, paths[:12], pass_index=1, augment=AUGMENT)
    again = FeatureCache(tmp_path / "b").features(spec, paths[:12], pass_index=1, augment=AUGMENT)
    assert not np.allclose(np.asarray(plain.array), np.asarray(augmented.array))
    assert np.allclose(np.asarray(augmented.array), np.asarray(again.array), atol=1e-5)


def test_unreadable_images_are_recorded_when_skipping(tmp_path, spec, paths):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"garbage")
    result = FeatureCache(tmp_path / "c").features(spec, [paths[0], str(broken)], skip_bad_images=True)
    assert result.bad_rows.tolist() == [1]
    from podium.vision.images import BadImageError

    with pytest.raises(BadImageError, match="broken.jpg"):
        FeatureCache(tmp_path / "d").features(spec, [paths[0], str(broken)])


def test_fingerprint_changes_when_a_file_changes(tmp_path):
    path = tmp_path / "x.jpg"
    path.write_bytes(b"1")
    before = cache_module.files_fingerprint([str(path)])
    path.write_bytes(b"22")
    assert cache_module.files_fingerprint([str(path)]) != before


def test_pooled_moments_are_computed_once_and_kept_beside_the_entry(tmp_path, spec, paths):
    entry = FeatureCache(tmp_path, chunk_size=16).features(spec, paths[:20])
    maps = np.random.default_rng(0).normal(1, 2, (20, 3, 3, 4)).astype(np.float32)
    entry.array = maps  # any 4-D map: the moments are the map's
    pooled = entry.pooled()
    assert pooled.shape == (20, 8) and pooled.dtype == np.float32
    assert np.allclose(pooled[:, :4], maps.mean(axis=(1, 2)), atol=1e-5)
    assert np.allclose(pooled[:, 4:], np.square(maps).mean(axis=(1, 2)), atol=1e-4)
    assert np.array_equal(np.load(entry.directory / cache_module.POOLED_FILE), pooled)


def test_read_ahead_keeps_order_and_hands_errors_to_the_caller():
    assert [item for item, _ in cache_module._read_ahead(lambda i: i * i, range(5))] == list(range(5))
    assert [value for _, value in cache_module._read_ahead(lambda i: i * i, range(5))] == [0, 1, 4, 9, 16]

    def read(i):
        if i == 2:
            raise ValueError("bad chunk")
        return i

    seen = []
    with pytest.raises(ValueError, match="bad chunk"):
        for item, _ in cache_module._read_ahead(read, range(5)):
            seen.append(item)
    assert seen == [0, 1]


def test_float16_entries_round_trip_at_half_the_disk(tmp_path, spec, paths, monkeypatch):
    full = FeatureCache(tmp_path, chunk_size=16).features(spec, paths[:20])
    half = FeatureCache(tmp_path, chunk_size=16, storage="float16").features(spec, paths[:20])
    assert half.directory != full.directory and half.array.dtype == np.float16
    assert np.allclose(np.asarray(half.array, dtype=np.float32), np.asarray(full.array), rtol=2e-3, atol=1e-3)
    assert (half.directory / "features.npy").stat().st_size < 0.6 * (full.directory / "features.npy").stat().st_size
    monkeypatch.setattr(BackboneSpec, "build", lambda self: pytest.fail("a float16 hit built the backbone"))
    again = FeatureCache(tmp_path, chunk_size=16, storage="float16").features(spec, paths[:20])
    assert again.hit and np.array_equal(np.asarray(again.array), np.asarray(half.array))


def test_unknown_storage_is_refused(tmp_path):
    with pytest.raises(cache_module.PodiumError, match="cache_dtype"):
        FeatureCache(tmp_path, storage="int8")


def test_disk_estimate_refuses_a_short_disk_before_any_image_is_read(tmp_path, spec, paths, monkeypatch, capsys):
    cache = FeatureCache(tmp_path / "cache", chunk_size=16)
    monkeypatch.setattr(images, "load_batch", lambda *a, **k: pytest.fail("an image was read"))
    # 50 maps of 1x1x512 float32 numbers and their pooled moments (1024 numbers): 0.3 MB with the .npy headers
    monkeypatch.setattr(cache_module, "free_bytes", lambda path: cache_module.RESERVE_BYTES + 5_000_000)
    assert cache.ensure_space(spec, [(paths, 0, None)]) == (50 * 512 * 4 + 256) + (50 * 1024 * 4 + 256)
    assert "needs 0.3 MB in" in capsys.readouterr().out
    monkeypatch.setattr(cache_module, "free_bytes", lambda path: 50_000)
    with pytest.raises(cache_module.PodiumError, match=r"needs 0\.3 MB in .*cache/, 0\.1 MB free"):
        cache.ensure_space(spec, [(paths, 0, None)])
    assert not list((tmp_path / "cache").rglob("features.npy"))


def test_a_complete_entry_needs_no_disk(tmp_path, spec, paths, monkeypatch):
    cache = FeatureCache(tmp_path, chunk_size=16)
    cache.features(spec, paths[:10])
    monkeypatch.setattr(cache_module, "free_bytes", lambda path: 0)
    assert cache.ensure_space(spec, [(paths[:10], 0, None)]) == 0


FILL_WITH_A_FILE_SIZE_LIMIT = """
import resource, sys
from podium.config import IMAGE_DEFAULTS, deep_update
from podium.errors import PodiumError
from podium.vision.backbones import BackboneSpec
from podium.vision.cache import FeatureCache
paths = sys.argv[2:]
spec = BackboneSpec.from_config(deep_update(IMAGE_DEFAULTS, {"image": {"backbone": "vgg16", "size": [32, 32], "weights": "none"}}))
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))  # a file may not grow past 20 kB: the disk is 'full'
try:
    FeatureCache(sys.argv[1], chunk_size=16).features(spec, paths)
except PodiumError as exc:
    print(exc)
    sys.exit(2)
"""


def test_a_full_disk_stops_the_precompute_in_one_line_and_the_entry_resumes(tmp_path, spec, paths):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", FILL_WITH_A_FILE_SIZE_LIMIT, str(tmp_path), *paths],
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 2, result.stderr[-2000:]
    message = result.stdout.strip().splitlines()[-1]
    assert "the disk is full" in message and "run again" in message and "Traceback" not in result.stderr
    for manifest in tmp_path.rglob("manifest.json"):  # nothing looks complete
        assert not json.loads(manifest.read_text())["complete"]
    resumed = FeatureCache(tmp_path, chunk_size=16).features(spec, paths)  # space freed: the same entry finishes
    fresh = FeatureCache(tmp_path / "fresh", chunk_size=16).features(spec, paths)
    assert not resumed.hit and resumed.directory.parent == tmp_path
    assert np.allclose(np.asarray(resumed.array), np.asarray(fresh.array), atol=1e-5)


def test_a_maps_pooled_moments_are_written_by_the_precompute_so_the_map_is_not_read_again(tmp_path, paths):
    spec = BackboneSpec.from_config(deep_update(IMAGE_DEFAULTS, {"image": {"backbone": "vgg16", "size": [64, 64],
                                                                   "weights": "none"}}))
    entry = FeatureCache(tmp_path, chunk_size=16).features(spec, paths[:20])
    assert entry.array.shape == (20, 2, 2, 512) and (entry.directory / cache_module.POOLED_FILE).is_file()
    expected = cache_module.pool_moments(np.asarray(entry.array))
    again = FeatureCache(tmp_path, chunk_size=16).features(spec, paths[:20])
    again.array = np.broadcast_to(np.float32(0), entry.array.shape)  # pooling this map again would give zeros
    assert np.allclose(again.pooled(), expected, rtol=1e-5, atol=1e-6)


def test_features_beyond_float16_are_refused_in_one_line(tmp_path, spec, paths, monkeypatch):
    monkeypatch.setattr(FeatureCache, "_predict_function",
                        lambda self, spec: lambda batch: np.full((len(batch), 1, 1, 4), 1e6, dtype=np.float32))
    with pytest.raises(cache_module.PodiumError, match="float16's range.*cache_dtype=float32"):
        FeatureCache(tmp_path, chunk_size=16, storage="float16").features(spec, paths[:4])
