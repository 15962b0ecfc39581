"""Metadata fusion: encoded with training statistics only, fed to the head as a second input."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from podium.errors import PodiumError
from podium.config import IMAGE_DEFAULTS, deep_update
from podium.vision.heads import build_head
from podium.vision.data import ImageData
from podium.vision.metadata import MetadataEncoder, fit_metadata


def _frame(widths, sizes):
    return pd.DataFrame({"width": widths, "size": sizes})


def test_numbers_are_standardised_with_training_statistics_only():
    train = _frame([100.0, 200.0, 300.0], ["a", "b", "a"])
    encoder = MetadataEncoder(["width", "size"]).fit(train)
    encoded = encoder.transform(train)
    assert encoded[:, 0].mean() == pytest.approx(0.0, abs=1e-6)
    assert encoded[:, 0].std() == pytest.approx(1.0, abs=1e-6)
    # Validation values far from training ones are scaled with the training mean and std, not their own.
    valid = _frame([200.0, 1200.0], ["a", "b"])
    std = np.std([100.0, 200.0, 300.0])
    assert encoder.transform(valid)[:, 0] == pytest.approx([0.0, 1000.0 / std], rel=1e-5)
    refit = MetadataEncoder(["width", "size"]).fit(train)
    refit.transform(valid)
    assert refit.numeric == encoder.numeric  # transforming never changes the statistics


def test_text_is_one_hot_over_training_categories_and_unseen_is_all_zeros():
    encoder = MetadataEncoder(["width", "size"]).fit(_frame([1.0, 2.0], ["1280x720", "1280x974"]))
    assert encoder.names == ["width", "size=1280x720", "size=1280x974"]
    encoded = encoder.transform(_frame([1.0, np.nan, 3.0], ["1280x974", "1732x974", None]))
    assert encoded.dtype == np.float32 and encoded.shape == (3, 3)
    assert encoded[:, 1:].tolist() == [[0, 1], [0, 0], [0, 0]]
    assert encoded[1, 0] == 0.0  # a missing number becomes the training mean


def test_constant_column_encodes_to_zeros_not_nan():
    encoder = MetadataEncoder(["width"]).fit(_frame([5.0, 5.0], ["a", "a"]))
    assert np.array_equal(encoder.transform(_frame([5.0, 7.0], ["a", "a"]))[:, 0], [0.0, 2.0])


def test_missing_column_is_named():
    with pytest.raises(PodiumError, match="height"):
        MetadataEncoder(["height"]).fit(_frame([1.0], ["a"]))


def _plugin(columns=("width", "size")):
    return SimpleNamespace(metadata_columns=columns, classes=("a", "b"))


def test_image_data_inputs_carry_metadata_fitted_on_train_rows():
    labelled = _frame([100.0, 300.0, 5000.0], ["a", "b", "c"])
    test = _frame([300.0], ["c"])
    config = deep_update(IMAGE_DEFAULTS, {})
    train_rows = np.array([0, 1])
    encoder = fit_metadata(_plugin(), config, labelled.iloc[train_rows])
    data = ImageData(plugin=_plugin(), config=config, spec=None, cache=None, labelled=labelled, test=test,
                     y=np.array([0, 1, 0]), train_rows=train_rows, valid_rows=np.array([2]), metadata=encoder)
    features = SimpleNamespace(array=np.zeros((1, 2), dtype=np.float32))
    inputs = data.inputs(features, test)
    assert set(inputs) == {"features", "metadata"}
    # Category "c" exists only outside the training rows: it is unknown to the encoder.
    assert data.metadata_dim == 3 and inputs["metadata"].tolist() == [[1.0, 0.0, 0.0]]


def test_metadata_switch_and_fine_tuning_guard():
    config = deep_update(IMAGE_DEFAULTS, {"head": {"metadata": False}})
    assert fit_metadata(_plugin(), config, _frame([1.0], ["a"])) is None
    assert fit_metadata(_plugin(()), deep_update(IMAGE_DEFAULTS, {}), _frame([1.0], ["a"])) is None
    with pytest.raises(PodiumError, match="head.metadata=false"):
        fit_metadata(_plugin(), deep_update(IMAGE_DEFAULTS, {"finetune": {"enabled": True}}), _frame([1.0], ["a"]))


def test_fcn_head_fuses_metadata_as_a_per_class_score():
    model = build_head((3, 5, 8), 4, {**IMAGE_DEFAULTS["head"], "kind": "fcn", "units": 8}, metadata_dim=3)
    assert [tuple(i.shape) for i in model.inputs] == [(None, 3, 5, 8), (None, 3)]
    out = np.asarray(model({"features": np.zeros((2, 3, 5, 8), "float32"), "metadata": np.ones((2, 3), "float32")}))
    assert out.shape == (2, 4) and np.allclose(out.sum(axis=1), 1, atol=1e-5)
    assert model.get_layer("metadata_scores") is not None
