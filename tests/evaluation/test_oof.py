"""Out-of-fold estimates: every labelled row predicted once by a model that never saw it; groups kept whole;
the test prediction is the bag of the fold heads."""
import numpy as np
import pandas as pd
import pytest

from podium.competitions import get
from podium.evaluation.oof import Bag, oof_folds


@pytest.mark.parametrize("strategy", ["stratified", "group", "random"])
def test_folds_cover_every_row_once_and_never_train_on_their_own_rows(strategy):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=120).astype(str)
    groups = np.array([f"g{i % 9}" for i in range(120)])
    folds = oof_folds(labels, groups, strategy=strategy, folds=4, seed=1)
    held = np.concatenate([h for _, h in folds])
    assert sorted(held.tolist()) == list(range(120))  # each row held out exactly once
    for train, held_out in folds:
        assert not set(train) & set(held_out)
        assert len(train) + len(held_out) == 120


def test_grouped_folds_never_split_a_group():
    rng = np.random.default_rng(2)
    groups = rng.choice([f"driver{i}" for i in range(10)], size=300)
    labels = rng.integers(0, 10, size=300)
    for train, held in oof_folds(labels, groups, strategy="group", folds=5, seed=0):
        assert not set(groups[train]) & set(groups[held])


def test_stratified_with_a_rare_class_falls_back_to_random_folds():
    labels = np.array(["a"] * 30 + ["b"] * 2)
    folds = oof_folds(labels, labels, strategy="stratified", folds=5, seed=0)
    assert sorted(np.concatenate([h for _, h in folds]).tolist()) == list(range(32))


class _Const:
    def __init__(self, value):
        self.value = value

    def tta(self, split, views):
        return [np.full((2, 2), self.value + view) for view in range(views + 1)]


def test_bag_averages_its_members_view_by_view():
    bag = Bag([_Const(0.0), _Const(1.0)], data=None)
    views = bag.tta("test", 1)
    assert len(views) == 2 and np.allclose(views[0], 0.5) and np.allclose(views[1], 1.5)


@pytest.fixture(scope="module")
def oof_run(tmp_path_factory, redux_data):
    from podium.config import deep_update
    from podium.evaluation import oof as oof_module
    from podium.evaluation.runner import demo_config, resolve_config, start_run

    plugin = get("dogs-vs-cats-redux")
    root = tmp_path_factory.mktemp("oof-runs")
    config = deep_update(demo_config(plugin, resolve_config(plugin)), {
        "paths": {"cache": str(root / "cache")}, "image": {"size": [48, 48]}, "train": {"epochs": 4},
        "tta": {"views": 0}, "oof": {"folds": 3, "bag": True}, "ensemble": {"enabled": False}})
    seen = []
    original = oof_module.train_fold_head

    def spy(data, run_dir, **kwargs):
        seen.append((data.train_rows.copy(), data.valid_rows.copy()))
        return original(data, run_dir, **kwargs)

    oof_module.train_fold_head = spy
    try:
        run_dir, metrics = start_run(plugin, redux_data, config, runs_root=root / "runs")
    finally:
        oof_module.train_fold_head = original
    return run_dir, metrics, seen


def test_run_writes_oof_predictions_of_every_labelled_row_once(oof_run, redux_data):
    run_dir, metrics, _ = oof_run
    oof = pd.read_csv(run_dir / "oof_predictions.csv", dtype={"id": str})
    assert len(oof) == 120 and oof["id"].is_unique  # 60 cats + 60 dogs in the generated data
    assert np.allclose(oof[["cat", "dog"]].sum(axis=1), 1.0, atol=1e-4)
    for key in ("oof_log_loss", "oof_accuracy", "val_log_loss", "bagged_models"):
        assert key in metrics, key
    assert metrics["oof_rows"] == 120 and metrics["bagged_models"] == 3
    assert metrics["oof_accuracy"] > 0.7


def test_fold_heads_never_see_their_own_fold(oof_run):
    _, _, seen = oof_run
    assert len(seen) == 3
    for train, held in seen:
        assert not set(train) & set(held)
    assert sorted(np.concatenate([held for _, held in seen]).tolist()) == list(range(120))


def test_calibration_is_fitted_on_oof_and_reported(oof_run):
    _, metrics, _ = oof_run
    assert metrics["calibrated_on"] == "oof"
    for key in ("oof_log_loss_uncalibrated", "oof_log_loss_calibrated", "temperature", "clip_floor"):
        assert key in metrics, key
    assert metrics["oof_log_loss_calibrated"] <= metrics["oof_log_loss_uncalibrated"] + 1e-9
    # The clip comes from the grid (0 included) on the calibrated OOF predictions: it never raises their loss.
    assert metrics["clip"][0] >= metrics["clip_floor"]
    assert metrics["oof_log_loss_calibrated_clipped"] <= metrics["oof_log_loss_calibrated"] + 1e-12
    assert set(metrics["steps"]) >= {"temperature", "clip"}
    for name, step in metrics["steps"].items():
        assert step["kept"] == (step["gain"] > step["noise"]), name
        assert step["kept"] or name in metrics["dropped_steps"]


def test_fold_heads_mix_pseudo_labels_per_batch_so_an_epoch_follows_the_labelled_rows(tmp_path, redux_data,
                                                                                       monkeypatch):
    """With pseudo-labels, a fold head's epoch is one pass over its labelled rows with pseudo.fraction of each batch
    from the test rows (as the main pseudo-labeling round), not every test row besides: State Farm has 3.6 times
    more test than labelled photos."""
    import numpy as np

    from podium.config import deep_update
    from podium.evaluation import oof as oof_module
    from podium.evaluation.runner import demo_config, resolve_config
    from podium.vision.data import load_image_data
    from podium.vision.learner import Learner
    from podium.vision.stages.pseudo_label import MixedBatches

    plugin = get("dogs-vs-cats-redux")
    config = deep_update(demo_config(plugin, resolve_config(plugin)), {
        "paths": {"cache": str(tmp_path / "cache")}, "image": {"size": [32, 32]}, "tta": {"views": 0},
        "train": {"batch_size": 16}, "pseudo": {"fraction": 0.25}})
    data = load_image_data(plugin, redux_data, config, sample=False)
    seen = []
    monkeypatch.setattr(Learner, "fit", lambda self, batches, **kwargs: seen.append(batches))
    fold = oof_module.fold_data(data, data.train_rows[:40], data.valid_rows)
    probabilities = np.full((len(data.test), 2), 0.5)
    oof_module.train_fold_head(fold, None, name="fold0", seed=0, pseudo_probabilities=probabilities)
    batches = seen[0]
    assert isinstance(batches, MixedBatches)
    assert len(batches) == 40 // 12 + 1 and batches.pseudo_per_batch == 4  # 12 labelled + 4 test rows a batch
