"""Backend choice, mixed precision and data parallelism, as a run sees them.

The two-device comparison runs only in CI's JAX step (`KERAS_BACKEND=jax`): it starts fresh
processes with XLA_FLAGS simulating two CPU devices, which must be set before JAX is imported.
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from podium.core import backend
from podium.errors import PodiumError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def restore_keras_settings():
    import keras

    policy, distribution = keras.config.dtype_policy(), keras.distribution.distribution()
    yield
    keras.config.set_dtype_policy(policy)
    keras.distribution.set_distribution(distribution)


def test_bad_precision_and_data_parallel_off_jax_are_one_clear_error(monkeypatch):
    with pytest.raises(PodiumError, match="image.precision: unknown 'float16'.*mixed_bfloat16"):
        backend.check({"image": {"precision": "float16", "data_parallel": False}})
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    with pytest.raises(PodiumError, match="data_parallel needs the JAX backend.*KERAS_BACKEND=jax"):
        backend.check({"image": {"precision": "float32", "data_parallel": True}})


def test_run_json_records_backend_devices_and_precision(tmp_path, restore_keras_settings, capsys):
    import keras

    from podium.core.rundir import write_run_record
    from podium.log import configure

    configure()  # as the CLI does: progress on standard output
    report = backend.configure({"image": {"precision": "mixed_bfloat16", "data_parallel": False}})
    assert f"backend: {keras.backend.backend()} on cpu:0; precision mixed_bfloat16" in capsys.readouterr().out

    class Plugin:
        name, pipeline = "toy", "image_classification"

    write_run_record(tmp_path, Plugin(), tmp_path, {"seed": 1}, sample=False)
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["backend"] == keras.backend.backend() == report["backend"]
    assert record["devices"] == ["cpu:0"] and record["precision"] == "mixed_bfloat16"
    assert record["data_parallel"] is False
    # A config without an image section (MovieLens) puts float32 back.
    assert backend.configure({}, quiet=True)["precision"] == "float32"


def test_hint_names_the_jax_backend_only_when_the_backend_is_unset(monkeypatch):
    monkeypatch.setattr(backend, "jax_accelerator_plugin", lambda: "jax-cuda12-plugin")
    monkeypatch.setattr(backend.importlib.util, "find_spec", lambda name: object())
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert "KERAS_BACKEND=jax" in backend.accelerator_hint()
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    assert backend.accelerator_hint() is None  # a chosen backend is respected
    monkeypatch.delenv("KERAS_BACKEND")
    monkeypatch.setattr(backend, "jax_accelerator_plugin", lambda: None)
    assert backend.accelerator_hint() is None  # CPU-only JAX: nothing to gain


@pytest.mark.parametrize("kind", ["gap", "dense", "fcn"])
def test_mixed_precision_head_outputs_float32_probabilities_matching_float32(kind, restore_keras_settings):
    import keras

    from podium.config import IMAGE_DEFAULTS
    from podium.vision.heads import build_head

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4, 4, 32)).astype("float32")
    y = np.eye(3, dtype="float32")[(x[:, :, :, :3].mean(axis=(1, 2))).argmax(axis=1)]
    head_config = {**IMAGE_DEFAULTS["head"], "kind": kind, "units": 16}
    backend.configure({"image": {"precision": "mixed_bfloat16"}}, quiet=True)
    keras.utils.set_random_seed(0)
    mixed = build_head(x.shape[1:], 3, head_config, metadata_dim=0)
    assert any(layer.compute_dtype == "bfloat16" for layer in mixed.layers)  # the hidden layers do compute in bf16
    mixed.compile(optimizer=keras.optimizers.Adam(1e-2), loss="categorical_crossentropy")
    mixed.fit(x, y, batch_size=16, epochs=3, verbose=0)
    probabilities = mixed.predict(x, verbose=0)
    # The output layer is float32: probabilities sum to one as exactly as float32 allows (bf16 would be ~1e-2 off).
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    loss = float(mixed.evaluate(x, y, verbose=0))
    log_loss = float(-np.mean(np.sum(y * np.log(np.clip(probabilities, 1e-7, 1.0)), axis=1)))
    assert loss == pytest.approx(log_loss, abs=1e-5)
    # The same weights computed all in float32 give nearly the same log loss.
    backend.configure({"image": {"precision": "float32"}}, quiet=True)
    plain = build_head(x.shape[1:], 3, head_config, metadata_dim=0)
    plain.set_weights(mixed.get_weights())
    plain.compile(loss="categorical_crossentropy")
    assert float(plain.evaluate(x, y, verbose=0)) == pytest.approx(loss, rel=0.05)


def test_mixed_precision_features_are_close_and_cached_apart(tmp_path, redux_data, restore_keras_settings):
    from podium.config import IMAGE_DEFAULTS, deep_update
    from podium.vision.backbones import BackboneSpec
    from podium.vision.cache import FeatureCache

    paths = sorted(str(p) for p in (redux_data / "train").glob("*.jpg"))[:8]
    settings = {"image": {"size": [32, 32], "weights": "none", "backbone": "resnet50"}}
    plain = BackboneSpec.from_config(deep_update(IMAGE_DEFAULTS, settings))
    mixed = BackboneSpec.from_config(deep_update(IMAGE_DEFAULTS, {"image": {**settings["image"],
                                                                           "precision": "mixed_bfloat16"}}))
    cache = FeatureCache(tmp_path)
    full, half = cache.features(plain, paths), cache.features(mixed, paths)
    assert full.directory != half.directory and not half.hit  # a float32 entry is never served for bf16
    assert half.array.dtype == np.float32
    assert np.abs(half.array - full.array).max() <= 0.05 * np.abs(full.array).max()
    assert not np.array_equal(half.array, full.array)  # the backbone really computed in bfloat16


TWO_DEVICE_RUN = textwrap.dedent("""
    import sys
    from pathlib import Path
    import keras
    from podium.competitions import get
    from podium.config import deep_update
    from podium.core.backend import configure
    from podium.evaluation.runner import demo_config, resolve_config, start_run

    data, out, backbone, parallel = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4] == "1"
    if not backbone.is_file():
        # A small saved conv base: the same weights for both runs, compiled in seconds (VGG16 takes minutes).
        keras.utils.set_random_seed(0)
        inputs = keras.Input((32, 32, 3))
        x = keras.layers.Conv2D(16, 3, activation="relu", name="conv1")(inputs)
        x = keras.layers.MaxPooling2D(name="pool1")(x)
        x = keras.layers.Conv2D(32, 3, activation="relu", name="conv2")(x)
        keras.Model(inputs, x).save(backbone)
    plugin = get("dogs-vs-cats-redux")
    # 96 training, 24 validation and 40 test images: every batch below splits evenly over two devices.
    config = deep_update(demo_config(plugin, resolve_config(plugin)), {
        "paths": {"cache": str(out / "cache")}, "train": {"epochs": 2, "batch_size": 16},
        "image": {"size": [32, 32], "backbone": str(backbone), "preprocessing": "tf", "data_parallel": parallel},
        "augment": {"passes": 0}, "tta": {"views": 1}, "pseudo": {"enabled": False},
        "finetune": {"enabled": True, "epochs": 1, "batch_size": 8, "from_layer": "conv2"}})
    configure(config)
    run_dir, metrics = start_run(plugin, data, config, runs_root=out / "runs")
    print("RUN_DIR", run_dir)
""")


@pytest.mark.skipif(os.environ.get("KERAS_BACKEND") != "jax",
                    reason="Keras' DataParallel runs on JAX: this comparison runs in CI's KERAS_BACKEND=jax step")
def test_two_simulated_devices_predict_as_one(tmp_path, redux_data):
    runs = {}
    for devices in (1, 2):
        env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO),
               "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
        done = subprocess.run([sys.executable, "-c", TWO_DEVICE_RUN, str(redux_data), str(tmp_path / str(devices)),
                               str(tmp_path / "backbone.keras"), str(int(devices == 2))], env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        runs[devices] = Path(done.stdout.split("RUN_DIR ")[-1].split()[0])
    import pandas as pd

    record = json.loads((runs[2] / "run.json").read_text())
    assert record["data_parallel"] is True and record["devices"] == ["cpu:0", "cpu:1"]
    assert json.loads((runs[1] / "run.json").read_text())["data_parallel"] is False
    assert (runs[2] / "model.keras").is_file()  # fine-tuned on both devices
    for name in ("valid_predictions.csv", "test_predictions.csv"):
        one, two = pd.read_csv(runs[1] / name), pd.read_csv(runs[2] / name)
        assert list(one["id"]) == list(two["id"])
        np.testing.assert_allclose(two.iloc[:, -2:].to_numpy(), one.iloc[:, -2:].to_numpy(), atol=2e-3)
