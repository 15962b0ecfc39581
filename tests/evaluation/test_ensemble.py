"""Ensembling runs: aligned on ids, scored next to each member, written as a valid submission."""
import json

import numpy as np
import pandas as pd
import pytest

from podium.competitions import get, registry
from podium.competitions.base import Competition
from podium.errors import PodiumError
from podium.cli.main import main
from podium.evaluation.ensemble import ensemble_runs
from podium.submission.validate import validate_file

COMPETITION = "dogs-vs-cats-redux"
N_VALID, N_TEST = 60, 12


@pytest.fixture
def data_dir(tmp_path):
    folder = tmp_path / "data"
    (folder / "train").mkdir(parents=True)
    (folder / "test").mkdir()
    for kind in ("cat", "dog"):
        for n in range(3):
            (folder / "train" / f"{kind}.{n}.jpg").write_bytes(b"")
    for n in range(1, N_TEST + 1):
        (folder / "test" / f"{n}.jpg").write_bytes(b"")
    return folder


def truth():
    rng = np.random.default_rng(0)
    return rng.integers(0, 2, size=N_VALID)


def member_predictions(seed, *, noise):
    """P(dog) for valid and test: right on average, wrong and confident on some rows."""
    rng = np.random.default_rng(seed)
    y = truth()
    logit = np.where(y == 1, 1.5, -1.5) + rng.normal(0, noise, size=N_VALID)
    return 1 / (1 + np.exp(-logit)), rng.uniform(0.05, 0.95, size=N_TEST)


def write_run(root, name, data_dir, p_valid, p_test, *, competition=COMPETITION, valid_ids=None, shuffle_seed=None):
    run_dir = root / COMPETITION / name
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"seed": 1, "submission": {"clip": "auto"}}))
    (run_dir / "run.json").write_text(json.dumps({
        "competition": competition, "data_dir": str(data_dir), "sample": False,
        "created": "2024-01-01T00:00:00", "pipeline": "image_classification", "podium_version": "0.1.0"}))
    (run_dir / "metrics.json").write_text(json.dumps({"val_log_loss": 0.5}))
    labels = np.where(truth() == 1, "dog", "cat")
    valid = pd.DataFrame({"id": valid_ids or [f"dog.{n}.jpg" for n in range(N_VALID)], "label": labels,
                          "cat": 1 - p_valid, "dog": p_valid})
    test = pd.DataFrame({"id": [str(n) for n in range(1, N_TEST + 1)], "cat": 1 - p_test, "dog": p_test})
    if shuffle_seed is not None:
        valid = valid.sample(frac=1, random_state=shuffle_seed)
        test = test.sample(frac=1, random_state=shuffle_seed)
    valid.to_csv(run_dir / "valid_predictions.csv", index=False)
    test.to_csv(run_dir / "test_predictions.csv", index=False)
    return run_dir


@pytest.fixture
def two_runs(tmp_path, data_dir):
    runs = tmp_path / "runs"
    a = write_run(runs, "run-a", data_dir, *member_predictions(1, noise=3.0))
    b = write_run(runs, "run-b", data_dir, *member_predictions(2, noise=3.0))
    return runs, a, b


def test_ensemble_beats_the_average_member_and_writes_a_valid_submission(two_runs, data_dir, capsys):
    runs, a, b = two_runs
    report = ensemble_runs([a, b])
    members = [m["metrics"]["val_log_loss"] for m in report["members"]]
    ensemble = report["ensemble"]
    assert ensemble["val_log_loss"] < np.mean(members)
    assert ensemble["val_log_loss_clipped"] <= ensemble["val_log_loss"]
    lo, hi = ensemble["clip"]
    assert 0 <= lo < 0.5 and hi == pytest.approx(1 - lo)

    submission = runs / COMPETITION / "ensembles"
    [csv] = submission.glob("ensemble-*.csv")
    assert report["submission"] == str(csv)
    assert validate_file(get(COMPETITION), csv, data_dir) == []
    written = pd.read_csv(csv)
    assert list(written.columns) == ["id", "label"] and len(written) == N_TEST
    assert written["label"].between(lo, hi).all()
    saved = json.loads(csv.with_suffix(".json").read_text())
    assert [m["run"] for m in saved["members"]] == [str(a), str(b)]
    assert saved["ensemble"]["val_log_loss"] == pytest.approx(ensemble["val_log_loss"])
    assert saved["ids_checked_against"] == str(data_dir)

    table = capsys.readouterr().out
    assert str(a) in table and str(b) in table and "ensemble of 2" in table and "val_log_loss" in table
    assert f"{members[0]:.5f}" in table and f"{ensemble['val_log_loss']:.5f}" in table


def test_rows_are_aligned_on_id(tmp_path, data_dir):
    runs = tmp_path / "runs"
    p_valid, p_test = member_predictions(1, noise=1.0)
    a = write_run(runs, "a", data_dir, p_valid, p_test)
    shuffled = write_run(runs, "shuffled", data_dir, p_valid, p_test, shuffle_seed=3)
    report = ensemble_runs([a, shuffled], out=tmp_path / "same.csv")
    first, second = (m["metrics"]["val_log_loss"] for m in report["members"])
    assert first == pytest.approx(second) == pytest.approx(report["ensemble"]["val_log_loss"])
    written = pd.read_csv(tmp_path / "same.csv").set_index("id").sort_index()
    raw = np.clip(p_test, *report["ensemble"]["clip"])
    np.testing.assert_allclose(written["label"].to_numpy(), raw, rtol=1e-6)


def test_runs_of_different_competitions_are_refused(tmp_path, data_dir):
    runs = tmp_path / "runs"
    a = write_run(runs, "a", data_dir, *member_predictions(1, noise=1.0))
    other = write_run(runs, "other", data_dir, *member_predictions(2, noise=1.0), competition="state-farm")
    with pytest.raises(PodiumError, match=f"{other}.*'state-farm'"):
        ensemble_runs([a, other])
    assert not (runs / COMPETITION / "ensembles").exists()


def test_runs_with_other_validation_ids_are_refused(tmp_path, data_dir):
    runs = tmp_path / "runs"
    a = write_run(runs, "a", data_dir, *member_predictions(1, noise=1.0))
    ids = [f"cat.{n}.jpg" for n in range(N_VALID)]
    b = write_run(runs, "b", data_dir, *member_predictions(2, noise=1.0), valid_ids=ids)
    with pytest.raises(PodiumError, match=f"{b}: its valid ids differ.*another split"):
        ensemble_runs([a, b])


def test_explicit_output_is_never_overwritten(two_runs, tmp_path):
    _, a, b = two_runs
    out = tmp_path / "mine.csv"
    out.write_text("keep me\n")
    with pytest.raises(PodiumError, match="already exists"):
        ensemble_runs([a, b], out=out)
    assert out.read_text() == "keep me\n"


def test_default_outputs_are_unique_and_data_folder_may_be_gone(two_runs, data_dir):
    runs, a, b = two_runs
    first = ensemble_runs([a, b], runs_root=runs)
    for path in data_dir.rglob("*.jpg"):
        path.unlink()
    for folder in (data_dir / "train", data_dir / "test", data_dir):
        folder.rmdir()
    second = ensemble_runs([a, b], runs_root=runs)
    assert first["submission"] != second["submission"]
    assert second["ids_checked_against"] is None
    assert len(list((runs / "ensembles").glob("*.csv"))) == 2
    assert len(list((runs / "ensembles").glob("*.json"))) == 2


def test_cli_ensemble_exit_codes(two_runs, tmp_path, capsys):
    _, a, b = two_runs
    out = tmp_path / "cli.csv"
    assert main(["ensemble", str(a), str(b), "--out", str(out)]) == 0
    assert out.is_file() and out.with_suffix(".json").is_file()
    assert "ensemble of 2" in capsys.readouterr().out
    assert main(["ensemble", str(a), str(b), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["ensemble", str(a)]) == 2
    assert "at least 2" in capsys.readouterr().err
    assert main(["ensemble", str(a), str(tmp_path)]) == 2
    assert "not a podium run directory" in capsys.readouterr().err


class ToyRatings(Competition):
    """A rating competition double: one `rating` column, RMSE, predictions kept in [0.5, 5]."""
    name = "toy-ratings"
    slug = "toy-ratings"
    task = "rating"
    pipeline = "ratings"
    metric = "rmse"

    def read_table(self, data_dir):
        raise NotImplementedError("the ensemble never reads the raw files of a rating run here")

    def make_demo_data(self, out_dir, seed=0):
        raise NotImplementedError

    def prediction_columns(self):
        return ["rating"]

    def submission_header(self):
        return ["id", "rating"]

    def submission_frame(self, ids, predictions):
        return pd.DataFrame({"id": list(ids), "rating": np.clip(predictions, 0.5, 5.0)})

    def validate_submission(self, frame, data_dir=None):
        from podium.core.submission_format import validate_frame

        return validate_frame(frame, self.submission_header(), value_range=(0.5, 5.0))

    def evaluate(self, labels, predictions):
        error = np.asarray(labels, dtype=float) - np.asarray(predictions, dtype=float)
        assert error.ndim == 1  # a single prediction column arrives as a vector
        return {"val_rmse": float(np.sqrt(np.mean(error ** 2)))}


def test_rating_runs_are_averaged_without_clipping(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(registry._PLUGINS, ToyRatings.name, ToyRatings)
    rng = np.random.default_rng(0)
    truth_ratings = rng.integers(1, 6, size=50).astype(float)
    run_dirs = []
    for n in range(3):
        run_dir = tmp_path / "runs" / "toy-ratings" / f"r{n}"
        run_dir.mkdir(parents=True)
        (run_dir / "config.json").write_text(json.dumps({"seed": n}))
        (run_dir / "run.json").write_text(json.dumps({"competition": "toy-ratings",
                                                      "data_dir": str(tmp_path / "gone")}))
        noisy = truth_ratings + rng.normal(0, 1.0, size=50)
        pd.DataFrame({"id": [f"u{i}_m{i}" for i in range(50)], "label": truth_ratings,
                      "rating": noisy}).to_csv(run_dir / "valid_predictions.csv", index=False)
        pd.DataFrame({"id": [f"t{i}" for i in range(8)], "rating": rng.uniform(0, 6, size=8)}).to_csv(
            run_dir / "test_predictions.csv", index=False)
        run_dirs.append(run_dir)
    report = ensemble_runs(run_dirs)
    members = [m["metrics"]["val_rmse"] for m in report["members"]]
    assert report["ensemble"]["val_rmse"] < min(members)  # independent noise averages out
    assert "clip" not in report["ensemble"] and "val_log_loss_clipped" not in report["ensemble"]
    written = pd.read_csv(report["submission"])
    assert list(written.columns) == ["id", "rating"] and len(written) == 8
    assert written["rating"].between(0.5, 5.0).all()
    assert "val_rmse" in capsys.readouterr().out
