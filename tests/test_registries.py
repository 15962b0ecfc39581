"""One contract test over every registered implementation: heads, backbones with their preprocessing,
stages and pipelines. A new head, backbone, stage or pipeline is checked here without a test of its own."""
import inspect

import numpy as np
import pytest

from podium.competitions import get, names
from podium.config import IMAGE_DEFAULTS, deep_update
from podium.core.stage import Stage, check_stages, registered_stages
from podium.evaluation.runner import PIPELINES, pipeline_module
from podium.vision.backbones import BUILDERS, BackboneSpec
from podium.vision.heads import HEADS, build_head
from podium.vision.preprocessing import PREPROCESSING


@pytest.mark.parametrize("kind", sorted(HEADS))
@pytest.mark.parametrize("metadata_dim", [0, 2])
def test_every_head_predicts_class_probabilities_trains_and_round_trips(kind, metadata_dim, tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    config = {**IMAGE_DEFAULTS["head"], "units": 8}
    model = build_head((3, 3, 16), 3, config, metadata_dim=metadata_dim, weight_decay=1e-4)
    rng = np.random.default_rng(0)
    x = {"features": rng.normal(size=(24, 3, 3, 16)).astype("float32")}
    if metadata_dim:
        x["metadata"] = rng.normal(size=(24, metadata_dim)).astype("float32")
    inputs = x if metadata_dim else x["features"]
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 24)]
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    loss = model.fit(inputs, y, epochs=2, batch_size=8, verbose=0).history["loss"]
    assert np.isfinite(loss).all()
    predicted = model.predict(inputs, verbose=0)
    assert predicted.shape == (24, 3) and predicted.dtype == np.float32
    assert np.allclose(predicted.sum(axis=1), 1, atol=1e-5) and (predicted >= 0).all()
    model.save(tmp_path / "head.keras")
    again = keras.saving.load_model(tmp_path / "head.keras", compile=False)
    assert np.allclose(again.predict(inputs, verbose=0), predicted, atol=1e-6)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_every_backbone_builds_frozen_beside_its_preprocessing(name):
    _, preprocessing_name, last_block = BUILDERS[name]
    assert preprocessing_name in PREPROCESSING
    spec = BackboneSpec.from_config(deep_update(IMAGE_DEFAULTS, {"image": {"backbone": name, "weights": "none",
                                                                            "size": [32, 32]}}))
    pixels = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype("float32")
    model = spec.build()
    features = np.asarray(model(spec.preprocess(pixels.copy())))
    assert features.ndim == 4 and features.shape[0] == 2 and np.isfinite(features).all()
    assert not model.trainable_weights
    assert spec.finetune_from(model) == last_block
    assert model.get_layer(last_block) is not None


# The runner registers the evaluation stages; the pipeline module its own.
pipeline_module("image_classification")
IMAGE_STAGES = registered_stages("image_classification")


def test_image_stages_are_registered_in_a_unique_order():
    assert {"data", "head", "submission"} <= {cls.name for cls in IMAGE_STAGES}
    orders = [cls.order for cls in IMAGE_STAGES]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)


@pytest.mark.parametrize("stage", IMAGE_STAGES, ids=lambda cls: cls.name)
def test_every_stage_declares_what_it_reads_and_whom_it_conflicts_with(stage):
    assert issubclass(stage, Stage) and stage.name and isinstance(stage.order, int)
    assert "run" not in getattr(stage.run, "__isabstractmethod__", ()) and not inspect.isabstract(stage)
    known = {cls.name for cls in IMAGE_STAGES}
    for key in stage.reads:
        section, *rest = key.split(".")
        assert section in IMAGE_DEFAULTS, f"{stage.name} reads unknown section {section!r}"
        if rest:
            assert rest[0] in IMAGE_DEFAULTS[section], f"{stage.name} reads unknown key {key!r}"
    assert set(stage.conflicts) <= known and set(stage.requires) <= known
    assert all(isinstance(why, str) and why for why in stage.conflicts.values())
    assert isinstance(stage.enabled(IMAGE_DEFAULTS), bool)
    if stage.on_predict:  # what predicting again runs comes after every training stage
        assert stage.order > max(cls.order for cls in IMAGE_STAGES if not cls.on_predict and cls.name != "learning_curve") \
            or stage.name == "learning_curve"


@pytest.mark.parametrize("plugin_name", [n for n in names() if get(n).pipeline == "image_classification"])
def test_default_stages_of_every_image_plugin_check_clean(plugin_name):
    plugin = get(plugin_name)
    stages = check_stages(plugin, plugin.default_config(), "image_classification")
    assert [cls.name for cls in stages][0] == "data" and "head" in [cls.name for cls in stages]


def test_conflicting_stages_are_refused_before_anything_runs():
    plugin = get("fisheries")
    config = deep_update(plugin.default_config(), {"boxes": {"loss_weight": 1.0}, "finetune": {"enabled": True}})
    from podium.errors import PodiumError

    with pytest.raises(PodiumError, match="cannot run together"):
        check_stages(plugin, config, "image_classification")


@pytest.mark.parametrize("plugin_name", names())
def test_every_plugin_names_a_pipeline_with_the_pipeline_contract(plugin_name):
    plugin = get(plugin_name)
    assert plugin.pipeline in PIPELINES
    module = pipeline_module(plugin.pipeline)
    for function, parameters in (("check", {"plugin", "config", "data_dir"}),
                                 ("run", {"plugin", "data_dir", "config", "run_dir", "sample", "callbacks"}),
                                 ("predict_again", {"run_dir", "tta", "pairs", "out"})):
        assert parameters <= set(inspect.signature(getattr(module, function)).parameters), (plugin.pipeline, function)
    assert isinstance(module.check(plugin, plugin.default_config()), list)
