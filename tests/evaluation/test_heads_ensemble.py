"""The weighted ensemble of heads: greedy weights sum to 1 and leave a useless member out; a run prints and
keeps each member's out-of-fold loss and weight; `podium predict` reloads the ensemble and writes the same
submission; no submitted probability is 0."""
import numpy as np
import pandas as pd
import pytest

from podium.competitions import get
from podium.core.metrics import log_loss
from podium.evaluation.heads_ensemble import greedy_weights


def _members(n=600, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.dirichlet(np.ones(3), size=n)
    y = np.array([rng.choice(3, p=row) for row in q])
    good = 0.8 * q + 0.2 / 3
    other = 0.6 * q + 0.4 * rng.dirichlet(np.ones(3), size=n)
    useless = rng.dirichlet(np.ones(3) * 0.3, size=n)  # confident and unrelated to the labels
    return y, good, other, useless


def test_weights_sum_to_one_and_a_useless_member_gets_zero():
    y, good, other, useless = _members()
    weights = greedy_weights(y, [good, useless, other], rounds=40)
    assert weights.sum() == pytest.approx(1.0)
    assert weights[1] == 0.0 and weights[0] > 0
    blended = weights[0] * good + weights[2] * other
    assert log_loss(y, blended) <= min(log_loss(y, good), log_loss(y, other)) + 1e-12


def test_a_single_member_takes_all_the_weight():
    y, good, _, _ = _members(seed=1)
    assert greedy_weights(y, [good], rounds=5).tolist() == [1.0]


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory, redux_data):
    from podium.config import deep_update
    from podium.evaluation.runner import demo_config, resolve_config, start_run

    plugin = get("dogs-vs-cats-redux")
    root = tmp_path_factory.mktemp("ensemble-runs")
    config = deep_update(demo_config(plugin, resolve_config(plugin)), {
        "paths": {"cache": str(root / "cache")}, "image": {"size": [48, 48]}, "train": {"epochs": 3},
        "tta": {"views": 1}, "augment": {"passes": 1}, "oof": {"folds": 3},
        "ensemble": {"enabled": True, "members": ["logistic", "gap", "fcn"], "rounds": 10}})
    run_dir, metrics = start_run(plugin, redux_data, config, runs_root=root / "runs")
    return run_dir, metrics


def test_run_weighs_every_member_on_its_out_of_fold_loss(ensemble_run):
    run_dir, metrics = ensemble_run
    table = metrics["ensemble"]
    assert set(table) == {"logistic", "gap", "fcn"}
    assert sum(entry["weight"] for entry in table.values()) == pytest.approx(1.0)
    assert all(0.0 <= entry["oof_log_loss"] < 5 for entry in table.values())
    assert metrics["oof_log_loss_ensemble"] <= min(entry["oof_log_loss"] for entry in table.values()) + 1e-9
    assert (run_dir / "ensemble" / "ensemble.json").is_file()
    assert len(list((run_dir / "ensemble" / "logistic").glob("fold*.npz"))) == 3
    assert len(list((run_dir / "ensemble" / "fcn").glob("fold*.keras"))) == 3


def test_no_submitted_probability_is_zero(ensemble_run):
    _, metrics = ensemble_run
    frame = pd.read_csv(metrics["submission"])
    assert (frame["label"] > 0).all() and (frame["label"] < 1).all()


def test_predict_reloads_the_ensemble_and_reproduces_the_submission(ensemble_run):
    from podium.evaluation.runner import predict_again

    run_dir, metrics = ensemble_run
    again = predict_again(run_dir)
    assert again["submission"] != metrics["submission"]
    first = pd.read_csv(metrics["submission"]).sort_values("id")
    second = pd.read_csv(again["submission"]).sort_values("id")
    assert np.allclose(first["label"].to_numpy(), second["label"].to_numpy(), atol=1e-6)
    assert again["test_prediction"].startswith("weighted ensemble")


def test_logistic_member_scores_a_block_of_rows_at_a_time_as_the_whole_set(monkeypatch):
    from types import SimpleNamespace

    from podium.evaluation import heads_ensemble
    from podium.vision.cache import pooled_means

    rng = np.random.default_rng(0)
    test_maps, labelled_maps = rng.normal(size=(50, 2, 3, 6)), rng.normal(size=(30, 2, 3, 6))
    data = SimpleNamespace(plugin=SimpleNamespace(classes=["a", "b", "c"]),
                           test_features=lambda view: test_maps, labelled_features=lambda view: labelled_maps,
                           train_rows=np.arange(0, 30, 2), valid_rows=np.array([29, 3, 17, 1]))
    params = {"mean": rng.normal(size=6), "scale": rng.uniform(0.5, 2, size=6),
              "coef": rng.normal(size=(3, 6)), "intercept": rng.normal(size=3)}
    monkeypatch.setattr(heads_ensemble, "BLOCK_ROWS", 7)
    model = heads_ensemble.PooledLogistic(data, params)
    test = model.predict("test")
    assert test.shape == (50, 3) and np.allclose(test.sum(axis=1), 1)
    assert np.allclose(test, model.probabilities(pooled_means(test_maps)))
    valid = model.predict("valid")
    assert np.allclose(valid, model.probabilities(pooled_means(labelled_maps, data.valid_rows)))
