"""State Farm on generated images with fake drivers: the driver file, driver-safe splits and folds,
the submission, and a whole run with augmented passes and pseudo-labeling."""
import shutil

import numpy as np
import pandas as pd
import pytest

from podium.competitions import get
from podium.errors import PodiumError
from podium.config import deep_update
from podium.core.table import prepare_table
from podium.evaluation.runner import resolve_config

DRIVERS = 6


@pytest.fixture(scope="module")
def plugin():
    return get("state-farm")


@pytest.fixture(scope="module")
def data_dir(plugin, tmp_path_factory):
    out = tmp_path_factory.mktemp("state-farm") / "data"
    return plugin.make_demo_data(out, seed=0, drivers=DRIVERS, per_class=3, test_images=24, size=(48, 48))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def tiny_config(plugin, cache_dir, **overrides):
    base = deep_update(plugin.demo_overrides(), {
        "image": {"size": [48, 48]}, "paths": {"cache": str(cache_dir)},
        "train": {"epochs": 3, "batch_size": 16, "patience": 3},
    })
    return resolve_config(plugin, overrides=deep_update(base, overrides))


def driver_of(table):
    return dict(zip(table["id"], table["group"]))


def test_table_has_drivers_classes_and_test_images(plugin, data_dir):
    table = plugin.read_table(data_dir)
    train, test = table[table["split"] == "train"], table[table["split"] == "test"]
    assert len(train) == DRIVERS * 3 * 10 and len(test) == 24
    assert train["group"].nunique() == DRIVERS and set(train["label"]) == set(plugin.classes)
    assert (test["group"] == "").all() and test["label"].isna().all()
    assert test["id"].str.endswith(".jpg").all()
    listed = pd.read_csv(data_dir / "driver_imgs_list.csv").set_index("img")
    assert (listed.loc[train["id"], "subject"].to_numpy() == train["group"].to_numpy()).all()


def broken_copy(data_dir, tmp_path, edit):
    copy = tmp_path / "data"
    shutil.copytree(data_dir, copy)
    drivers = pd.read_csv(copy / "driver_imgs_list.csv")
    edit(drivers).to_csv(copy / "driver_imgs_list.csv", index=False)
    return copy, drivers


def test_image_without_driver_is_named(plugin, data_dir, tmp_path):
    copy, drivers = broken_copy(data_dir, tmp_path, lambda d: d.drop(index=[4, 7]))
    with pytest.raises(PodiumError, match="2 training images have no driver row") as error:
        plugin.read_table(copy)
    assert drivers.at[4, "img"] in str(error.value) and drivers.at[7, "img"] in str(error.value)


def test_class_disagreeing_with_folder_is_named(plugin, data_dir, tmp_path):
    def relabel(drivers):
        drivers = drivers.copy()
        drivers.at[5, "classname"] = "c9" if drivers.at[5, "classname"] != "c9" else "c0"
        return drivers

    copy, drivers = broken_copy(data_dir, tmp_path, relabel)
    with pytest.raises(PodiumError, match="disagree with the image's class folder") as error:
        plugin.read_table(copy)
    assert f"line 7: {drivers.at[5, 'img']}" in str(error.value)


def test_missing_driver_file_and_unknown_image_are_errors(plugin, data_dir, tmp_path):
    extra = pd.DataFrame([{"subject": "p001", "classname": "c0", "img": "img_999999.jpg"}])
    copy, _ = broken_copy(data_dir, tmp_path, lambda d: pd.concat([d, extra], ignore_index=True))
    with pytest.raises(PodiumError, match="img_999999.jpg"):
        plugin.read_table(copy)
    (copy / "driver_imgs_list.csv").unlink()
    with pytest.raises(PodiumError, match="driver_imgs_list.csv"):
        plugin.read_table(copy)


def labelled_drivers(table, split):
    return set(table.loc[table["split"] == split, "group"])


def test_no_driver_in_both_train_and_validation(plugin, data_dir, cache_dir):
    table = prepare_table(plugin, data_dir, tiny_config(plugin, cache_dir))
    assert labelled_drivers(table, "train") and labelled_drivers(table, "valid")
    assert not labelled_drivers(table, "train") & labelled_drivers(table, "valid")
    sample = table[table["sample"]]
    assert not labelled_drivers(sample, "train") & labelled_drivers(sample, "valid")

    validated = []
    for fold in range(3):
        table = prepare_table(plugin, data_dir, tiny_config(plugin, cache_dir, data={"folds": 3, "fold": fold}))
        assert not labelled_drivers(table, "train") & labelled_drivers(table, "valid")
        validated += sorted(labelled_drivers(table, "valid"))
    assert sorted(validated) == sorted(f"p{d + 1:03d}" for d in range(DRIVERS))  # each driver validated once


def test_a_random_split_would_leak_drivers(plugin, data_dir, cache_dir):
    # What the driver split prevents: the same check fails for a random split.
    table = prepare_table(plugin, data_dir, tiny_config(plugin, cache_dir, data={"split": "random"}))
    assert labelled_drivers(table, "train") & labelled_drivers(table, "valid")


def test_submission_header_and_rows_sum_to_one(plugin, data_dir):
    ids = plugin.expected_test_ids(data_dir)
    raw = np.random.default_rng(0).random((len(ids), 10)).astype(np.float32)
    frame = plugin.submission_frame(ids, raw)
    assert list(frame.columns) == ["img"] + [f"c{k}" for k in range(10)]
    np.testing.assert_allclose(frame.iloc[:, 1:].sum(axis=1), 1.0, atol=1e-9)
    assert plugin.validate_submission(frame, data_dir) == []


@pytest.fixture(scope="module")
def pseudo_run(plugin, data_dir, cache_dir, tmp_path_factory):
    from podium.evaluation.runner import start_run

    config = tiny_config(plugin, cache_dir, augment={"passes": 1}, tta={"views": 1},
                         pseudo={"enabled": True, "rounds": 2, "fraction": 0.25})
    return start_run(plugin, data_dir, config, runs_root=tmp_path_factory.mktemp("runs"))


def test_run_with_augmented_passes_and_pseudo_labels(plugin, data_dir, pseudo_run):
    import keras

    from podium.vision.training import WarmupAnneal

    run_dir, metrics = pseudo_run
    for key in ("val_log_loss_before_pseudo", "val_log_loss_after_pseudo", "val_log_loss", "val_accuracy"):
        assert np.isfinite(metrics[key])
    assert [r["round"] for r in metrics["pseudo_rounds"]] == [1, 2]
    assert all(r["pseudo_rows"] == 24 for r in metrics["pseudo_rounds"])  # threshold 0 keeps every test image
    assert all(sum(r["by_class"].values()) == 24 and set(r["by_class"]) == set(plugin.classes)
               for r in metrics["pseudo_rounds"])  # what each round taught, per class (the run's report shows it)
    assert metrics["val_log_loss_after_pseudo"] == pytest.approx(metrics["val_log_loss"])
    assert metrics["val_accuracy_before_pseudo"] > 0.15  # better than chance (0.1) on unseen drivers
    for name in ("head_before_pseudo.keras", "history_pseudo1.csv", "history_pseudo2.csv", "learning_curve.png"):
        assert (run_dir / name).is_file()
    # The fold heads with and without pseudo-labels both keep their histories; the judged-better ones their models.
    folds = metrics["oof_folds"]
    assert folds >= 2 and "pseudo_labels" in metrics["steps"]
    for prefix in ("history_fold", "history_without_pseudo_fold"):
        assert sorted(p.name for p in (run_dir / "oof").glob(f"{prefix}[0-9]*.csv")) == \
            [f"{prefix}{k}.csv" for k in range(folds)]
    assert len(list((run_dir / "oof").glob("*.keras"))) == folds

    submission = pd.read_csv(metrics["submission"])
    assert list(submission.columns) == ["img"] + [f"c{k}" for k in range(10)]
    assert sorted(submission["img"]) == sorted(plugin.expected_test_ids(data_dir))
    np.testing.assert_allclose(submission.iloc[:, 1:].sum(axis=1), 1.0, atol=1e-6)

    # The head that predicts is the pseudo-labelled one, warm-started, with BatchNorm on its input.
    head = keras.saving.load_model(run_dir / "head.keras")
    assert head.get_layer("input_bn") is not None
    schedule = head.optimizer._learning_rate
    assert isinstance(schedule, WarmupAnneal) and schedule.warmup_steps > 0
    assert float(schedule(0)) == pytest.approx(schedule.lr * schedule.warmup_start)
    assert float(schedule(schedule.warmup_steps)) == pytest.approx(schedule.lr, rel=1e-3)


def test_validation_rows_never_enter_a_training_batch(plugin, data_dir, cache_dir, pseudo_run):
    from podium.vision.data import load_image_data
    from podium.vision.stages.pseudo_label import mixed_batches

    run_dir, _ = pseudo_run
    config = resolve_config(plugin, files=[run_dir / "config.json"])
    data = load_image_data(plugin, data_dir, config, sample=False)
    test_predictions = pd.read_csv(run_dir / "test_predictions.csv").set_index("id").loc[data.test["id"]]
    batches, rows = mixed_batches(data, test_predictions.to_numpy(), seed=0)
    assert rows == len(data.test)

    def keys(array):  # rows as the model gets them (features cached in float16 are widened, exactly, to float32)
        return {np.asarray(row, dtype=np.float32).tobytes() for row in array}

    valid_features = set()
    for p in (0, 1):
        valid_features |= keys(data.labelled_features(p).array[data.valid_rows])
    train_features = keys(data.labelled_features(0).array[data.train_rows]) | keys(
        data.labelled_features(1).array[data.train_rows])
    test_features = keys(data.test_features(0).array) | keys(data.test_features(1).array)
    seen_test = 0
    for index in range(len(batches)):
        x, _ = batches[index]
        batch = keys(x)
        assert not batch & valid_features
        assert batch <= train_features | test_features
        seen_test += len(batch & test_features)
    assert seen_test > 0


def test_grouped_k_fold_out_of_fold_predictions(plugin, data_dir, cache_dir, tmp_path):
    from podium.evaluation.folds import run_folds

    config = tiny_config(plugin, cache_dir, data={"folds": 3}, train={"epochs": 2})
    cv_dir, metrics = run_folds(plugin, data_dir, config, runs_root=tmp_path)
    table = plugin.read_table(data_dir)
    drivers = driver_of(table)
    oof = pd.read_csv(cv_dir / "oof_predictions.csv", dtype={"id": str})
    assert sorted(oof["id"]) == sorted(table.loc[table["split"] == "train", "id"])  # each row exactly once
    for fold in range(3):
        fold_valid = pd.read_csv(cv_dir / f"fold{fold}" / "valid_predictions.csv", dtype={"id": str})
        fold_drivers = {drivers[i] for i in fold_valid["id"]}
        others = {drivers[i] for f in range(3) if f != fold
                  for i in pd.read_csv(cv_dir / f"fold{f}" / "valid_predictions.csv", dtype={"id": str})["id"]}
        assert not fold_drivers & others
    assert metrics["oof_rows"] == len(oof) and len(metrics["fold_val_log_loss"]) == 3
    assert metrics["val_log_loss"] == pytest.approx(plugin.evaluate(oof["label"], oof[list(plugin.classes)].to_numpy())
                                                    ["val_log_loss"], rel=1e-4)
    folds_test = [pd.read_csv(cv_dir / f"fold{f}" / "test_predictions.csv").set_index("id") for f in range(3)]
    averaged = pd.read_csv(cv_dir / "test_predictions.csv").set_index("id")
    np.testing.assert_allclose(averaged.to_numpy(), np.mean([f.loc[averaged.index].to_numpy() for f in folds_test],
                                                             axis=0), atol=2e-6)
    submission = pd.read_csv(metrics["submission"])
    np.testing.assert_allclose(submission.iloc[:, 1:].sum(axis=1), 1.0, atol=1e-6)
