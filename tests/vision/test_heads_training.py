import numpy as np
import pytest

from podium.errors import PodiumError
from podium.vision.batches import FeatureBatches, RowSource
from podium.config import IMAGE_DEFAULTS
from podium.vision.heads import build_head
from podium.vision.training import WarmupAnneal, callbacks, compile_model, fit, fit_in_memory


def _features(n=160, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(0, 1, (n, 2, 2, 16)).astype("float32")
    x[np.arange(n), :, :, y] += 2.5  # class k lights up channel k
    return x, y


@pytest.mark.parametrize("kind", ["gap", "dense"])
def test_heads_output_class_probabilities(kind):
    model = build_head((2, 2, 16), 3, {**IMAGE_DEFAULTS["head"], "kind": kind})
    out = np.asarray(model(np.zeros((4, 2, 2, 16), "float32")))
    assert out.shape == (4, 3) and np.allclose(out.sum(axis=1), 1, atol=1e-5)


def test_gap_head_without_hidden_layer_is_a_pooled_linear_classifier():
    model = build_head((2, 2, 16), 3, {**IMAGE_DEFAULTS["head"], "kind": "gap", "units": 0})
    assert not any(layer.name.startswith("fc1") for layer in model.layers)
    assert model.count_params() == 16 * 4 + 3 * 17  # input BatchNorm + one 16 -> 3 dense layer


def test_metadata_fusion_adds_a_second_input():
    model = build_head((2, 2, 16), 3, IMAGE_DEFAULTS["head"], metadata_dim=4)
    assert [tuple(i.shape) for i in model.inputs] == [(None, 2, 2, 16), (None, 4)]
    assert model.get_layer("fusion") is not None


def test_unknown_head_is_named():
    with pytest.raises(PodiumError, match="head.kind"):
        build_head((2, 2, 16), 3, {**IMAGE_DEFAULTS["head"], "kind": "mystery"})


def test_warmup_starts_low_then_anneals():
    schedule = WarmupAnneal(1e-2, warmup_steps=10, total_steps=100, warmup_start=0.1)
    values = [float(schedule(step)) for step in (0, 5, 10, 55, 99)]
    assert values[0] == pytest.approx(1e-3)
    assert values[0] < values[1] < values[2] == pytest.approx(1e-2)
    assert values[2] > values[3] > values[4]


def test_training_on_cached_features_learns_and_keeps_the_best_epoch(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    x, y = _features()
    onehot = np.eye(3, dtype="float32")[y]
    train = RowSource({"features": x}, np.arange(120), onehot[:120])
    valid = RowSource({"features": x}, np.arange(120, 160), onehot[120:])
    model = build_head((2, 2, 16), 3, IMAGE_DEFAULTS["head"])
    config = {**IMAGE_DEFAULTS["train"], "epochs": 8, "lr": 3e-3}
    history = fit(model, FeatureBatches([train], batch_size=16, shuffle=True), FeatureBatches([valid], batch_size=64),
                  train_config=config, run_dir=tmp_path, verbose=0)
    assert history["val_loss"][-1] < history["val_loss"][0]
    assert (tmp_path / "head.keras").is_file() and (tmp_path / "history_head.csv").is_file()
    predictions = model.predict(FeatureBatches([valid], batch_size=64), verbose=0)
    assert (predictions.argmax(axis=1) == y[120:]).mean() > 0.8


@pytest.mark.skipif(__import__("keras").backend.backend() != "tensorflow", reason="the in-graph epoch is TensorFlow's")
def test_in_graph_epochs_train_exactly_like_model_fit_and_drive_the_callbacks(tmp_path):
    import keras

    x, y = _features(n=200)
    onehot = np.eye(3, dtype="float32")[y]
    pooled = np.concatenate([x.mean(axis=(1, 2)), x.std(axis=(1, 2))], axis=1)  # the pooled moments
    train, valid = (pooled[:150], onehot[:150]), (pooled[150:], onehot[150:])
    config = {**IMAGE_DEFAULTS["train"], "epochs": 4, "lr": 3e-3, "patience": 1}
    found = []
    for loop in ("fit_in_memory", "model.fit"):
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        model = build_head((2, 2, 16), 3, {**IMAGE_DEFAULTS["head"], "dropout": 0.0}, pooled=True)
        compile_model(model, config, steps_per_epoch=3, epochs=4)
        cbs = callbacks(tmp_path / loop, "head", patience=1)
        (tmp_path / loop).mkdir()
        if loop == "fit_in_memory":
            history = fit_in_memory(model, train, valid, batch_size=64, epochs=4, callbacks=cbs, verbose=0,
                                    shuffle=False)
        else:
            history = model.fit(*train, batch_size=64, epochs=4, validation_data=valid, shuffle=False, verbose=0,
                                callbacks=cbs).history
        found.append((history, model.get_weights()))
        assert (tmp_path / loop / "head.keras").is_file() and (tmp_path / loop / "history_head.csv").is_file()
    (ours, our_weights), (keras_history, keras_weights) = found
    assert ours.keys() == keras_history.keys() and len(ours["loss"]) == len(keras_history["loss"])
    for key in ours:
        np.testing.assert_allclose(ours[key], keras_history[key], rtol=1e-5)
    for mine, theirs in zip(our_weights, keras_weights):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)


def test_batches_cover_every_row_once_per_epoch_and_predict_keeps_row_order():
    x = np.arange(30, dtype="float32").reshape(30, 1)
    source = RowSource({"features": x}, np.array([5, 3, 9, 1, 7, 0, 2]), np.zeros((7, 1)))
    batches = FeatureBatches([source, RowSource({"features": x}, np.array([20, 21]), np.ones((2, 1)))],
                             batch_size=3, shuffle=True, seed=1)
    seen = np.concatenate([batches[i][0][:, 0] for i in range(len(batches))])
    assert sorted(seen.tolist()) == [0, 1, 2, 3, 5, 7, 9, 20, 21]

    import keras

    identity = keras.Sequential([keras.Input((1,)), keras.layers.Identity()])
    out = identity.predict(FeatureBatches([source], batch_size=3), verbose=0)
    assert out[:, 0].tolist() == [5, 3, 9, 1, 7, 0, 2]


def test_pooled_twin_computes_the_gap_head_and_trains_alike():
    """A gap head on pooled moments is the same function (input BatchNorm's batch statistics included)."""
    import keras

    from podium.vision.cache import pool_moments
    from podium.vision.heads import copy_weights

    config = {**IMAGE_DEFAULTS["head"], "kind": "gap", "units": 8, "dropout": 0.0}
    keras.utils.set_random_seed(0)
    full = build_head((3, 3, 16), 3, config, weight_decay=1e-3)
    twin = copy_weights(full, build_head((3, 3, 16), 3, config, weight_decay=1e-3, pooled=True))
    rng = np.random.default_rng(0)
    x = rng.normal(1, 2, (32, 3, 3, 16)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 32)]
    pooled = pool_moments(x)
    assert np.allclose(full(x, training=True), twin(pooled, training=True), atol=1e-5)
    for model in (full, twin):
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="categorical_crossentropy")
    full.fit(x, y, batch_size=32, epochs=3, shuffle=False, verbose=0)
    twin.fit(pooled, y, batch_size=32, epochs=3, shuffle=False, verbose=0)
    for a, b in zip(full.get_weights(), twin.get_weights()):
        assert np.allclose(a, b, atol=1e-5)
    assert np.allclose(full(x), twin(pooled), atol=1e-5)


def test_learner_trains_a_gap_head_through_its_twin_and_keeps_the_files(tmp_path, redux_data):
    """`Learner.fit` on feature batches: the head (not the twin) is saved, predicts like the twin, and a run
    without a folder writes nothing."""
    from podium.competitions import get
    from podium.config import deep_update
    from podium.vision.data import load_image_data
    from podium.vision.learner import Learner

    plugin = get("dogs-vs-cats-redux")
    config = deep_update(plugin.default_config(), {
        "image": {"weights": "none", "size": [32, 32]}, "train": {"epochs": 2},
        "paths": {"cache": str(tmp_path / "cache")}})
    data = load_image_data(plugin, redux_data, config, sample=False)
    learner = Learner.train_head(data, tmp_path, name="head", verbose=0)
    assert learner._twin not in (None, False)
    assert (tmp_path / "head.keras").is_file() and (tmp_path / "history_head.csv").is_file()
    saved = Learner.load(data, tmp_path / "head.keras")
    saved._twin = False  # the plain path over the feature maps
    assert np.allclose(saved.predict("valid"), learner.predict("valid"), atol=1e-4)
    before = sorted(tmp_path.rglob("*"))
    Learner.train_head(data, None, verbose=0)
    assert sorted(tmp_path.rglob("*")) == before


def test_predictions_are_reused_until_the_weights_change(tmp_path, redux_data, monkeypatch):
    """The stages of a run ask for the same validation views: predicted once, again after any weight change."""
    from podium.competitions import get
    from podium.config import deep_update
    from podium.vision.data import load_image_data
    from podium.vision.learner import Learner

    plugin = get("dogs-vs-cats-redux")
    config = deep_update(plugin.default_config(), {
        "image": {"weights": "none", "size": [32, 32]}, "train": {"epochs": 1},
        "paths": {"cache": str(tmp_path / "cache")}})
    data = load_image_data(plugin, redux_data, config, sample=False)
    learner = Learner.train_head(data, None, verbose=0)
    computed = []
    predict = learner._predict
    monkeypatch.setattr(learner, "_predict", lambda *a, **k: computed.append(a) or predict(*a, **k))
    first = learner.predict("valid")
    first[:] = 0  # a caller changing its copy changes nothing kept
    again = learner.predict("valid")
    assert len(computed) == 1 and not np.allclose(again, 0)
    learner.predict("valid", view=0, output="class")
    assert len(computed) == 1
    weights = learner.model.get_weights()
    learner.model.set_weights([w + 0.5 if w.ndim == 2 else w for w in weights])
    changed = learner.predict("valid")
    assert len(computed) == 2 and not np.allclose(changed, again)


def test_a_fold_head_monitored_on_its_training_rows_holds_them_in_memory_once(tmp_path, redux_data, monkeypatch):
    """State Farm's fold heads read 17,000 feature maps into memory: the monitor (the same rows) must not be a
    second copy of them, in numpy or in TensorFlow."""
    from podium.competitions import get
    from podium.config import deep_update
    from podium.evaluation.oof import fold_data, train_fold_head
    from podium.vision import learner as learner_module
    from podium.vision.data import load_image_data

    plugin = get("dogs-vs-cats-redux")
    config = deep_update(plugin.default_config(), {
        "image": {"weights": "none", "size": [32, 32]}, "train": {"epochs": 2}, "augment": {"passes": 0},
        "head": {"kind": "fcn"}, "paths": {"cache": str(tmp_path / "cache")}})
    data = load_image_data(plugin, redux_data, config, sample=False)
    read = []
    rows_in_memory = learner_module.rows_in_memory
    monkeypatch.setattr(learner_module, "rows_in_memory", lambda batches, **k: read.append(batches) or
                        rows_in_memory(batches, **k))
    rows = np.union1d(data.train_rows, data.valid_rows)
    fold = fold_data(data, rows[: len(rows) // 2], rows[len(rows) // 2:])
    learner = train_fold_head(fold, tmp_path, name="fold0", seed=0)
    assert len(read) == 1  # the training rows, read once
    assert learner.predict("valid").shape == (len(rows) - len(rows) // 2, len(plugin.classes))
    assert (tmp_path / "fold0.keras").is_file() and (tmp_path / "history_fold0.csv").is_file()
