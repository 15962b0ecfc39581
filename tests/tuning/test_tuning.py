"""`podium tune` on generated Dogs-vs-Cats data: search, pruning, failures, report, `podium run --best-of`."""
import json

import optuna
import pytest

from podium.competitions import get
from podium.errors import PodiumError
from podium.cli.main import main
from podium.tuning import SearchSpace, resolve_with_tune, search_space, tune
from podium.tuning.study import study_paths

COMPETITION = "dogs-vs-cats-redux"

CONFIG = """
seed = 3
[image]
backbone = "vgg16"  # the trials' values below were set on random VGG16 features (the default is EfficientNetV2-S)
weights = "none"
size = [32, 32]
[train]
epochs = 3
patience = 3
batch_size = 16
lr = 1e-4
[oof]
folds = 2  # the default objective (out-of-fold log loss) at the least cost
[paths]
cache = "{cache}"
[tune]
only = {only}
startup_trials = 2
warmup_epochs = 1
trials_per_process = 0
[tune.space]
"train.lr" = {{type = "float", low = 1e-5, high = 1e-2, log = true}}
"head.kind" = {{type = "categorical", choices = ["gap", "gapp"]}}
"""


def write_config(path, cache, only):
    path.write_text(CONFIG.format(cache=cache, only=json.dumps(only)))
    return path


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """One study grown in three steps: a first search, then two hand-picked trials, then a re-open."""
    root = tmp_path_factory.mktemp("tuning")
    plugin = get(COMPETITION)
    data = plugin.make_demo_data(root / "data", seed=0)
    runs = root / "runs"
    config = write_config(root / "search.toml", root / "cache", ["train.lr", "head.dropout"])
    first = tune(plugin, data, trials=3, files=[config], study="search", runs_root=runs)
    storage = study_paths(runs, plugin.name, "search").storage
    study = optuna.load_study(study_name="search", storage=storage)
    # A typo in a user's space (head kind "gapp") fails its trial; a tiny learning rate is pruned.
    study.enqueue_trial({"train.lr": 1e-3, "head.dropout": 0.5, "head.kind": "gapp"})
    study.enqueue_trial({"train.lr": 1e-5, "head.dropout": 0.5, "head.kind": "gap"})
    wide = write_config(root / "wide.toml", root / "cache", ["train.lr", "head.dropout", "head.kind"])
    second = tune(plugin, data, trials=5, files=[wide], study="search", runs_root=runs)
    return {"plugin": plugin, "data": data, "runs": runs, "config": config, "first": first, "second": second,
            "study": optuna.load_study(study_name="search", storage=storage)}


def test_search_finishes_and_beats_the_first_trial(searched):
    first = searched["first"]
    assert first["trials"]["complete"] == 3
    trials = searched["study"].trials
    # Trial 0 is the config's own values; the search must find better ones.
    assert trials[0].params == {"train.lr": 1e-4, "head.dropout": 0.5}
    assert first["best_value"] < trials[0].value - 0.02
    assert len({round(t.value, 6) for t in trials[:3]}) == 3  # the parameters really reach the runs
    for trial in trials[:3]:
        run_dir = trial.user_attrs["run_dir"]
        metrics = json.loads(open(f"{run_dir}/metrics.json").read())
        assert metrics[searched["study"].user_attrs["metric"]] == pytest.approx(trial.value)
        assert json.loads(open(f"{run_dir}/config.json").read())["train"]["lr"] == pytest.approx(
            trial.params["train.lr"])
    assert all(t.user_attrs["val_accuracy"] >= 0 for t in trials[:3])
    # Every trial after the first read its features from the cache.
    hits = [json.loads(open(f"{t.user_attrs['run_dir']}/metrics.json").read())["feature_cache_hit"]
            for t in trials[:3]]
    assert hits[1:] == [True, True]


def test_failed_trial_is_recorded_and_the_study_goes_on(searched):
    trials = searched["study"].trials
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert [t.params["head.kind"] for t in failed] == ["gapp"]
    assert "gapp" in failed[0].user_attrs["error"]
    assert any(t.number > failed[0].number and t.state.is_finished() and t.state != optuna.trial.TrialState.FAIL
               for t in trials)
    assert searched["second"]["trials"]["failed"] == 1
    assert "gapp" in searched["second"]["failures"][0]["error"]


def test_median_pruner_stops_a_hopeless_trial(searched):
    pruned = [t for t in searched["study"].trials if t.state == optuna.trial.TrialState.PRUNED]
    assert [t.params["train.lr"] for t in pruned] == [1e-5]
    # Stopped after the warm-up epoch, before the 3 epochs it was given.
    assert 2 <= len(pruned[0].intermediate_values) < 3
    assert searched["second"]["trials"]["pruned"] == 1


def test_report_files(searched):
    folder = searched["runs"] / COMPETITION / "tuning" / "search"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["best_value"] == pytest.approx(searched["study"].best_value)
    assert summary["best_params"] == searched["study"].best_params
    assert summary["best_run"] == searched["study"].best_trial.user_attrs["run_dir"]
    assert summary["trials"] == {"complete": 3, "pruned": 1, "failed": 1, "running": 0, "waiting": 0}
    for name in ("history", "importances"):
        assert (folder / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_run_best_of_reproduces_the_best_trial(searched, capsys):
    best = searched["study"].best_trial
    code = main(["run", COMPETITION, "--data", str(searched["data"]), "--config", str(searched["config"]),
                 "--best-of", "search", "--out", str(searched["runs"])])
    assert code == 0
    out = capsys.readouterr().out
    assert f"trial {best.number}" in out and "settings differ" not in out
    run_dir = out.strip().splitlines()[-2].split("run: ")[-1]
    metrics = json.loads(open(f"{run_dir}/metrics.json").read())
    assert metrics[searched["study"].user_attrs["metric"]] == pytest.approx(best.value, abs=2e-3)
    assert json.loads(open(f"{run_dir}/config.json").read())["train"]["lr"] == pytest.approx(best.params["train.lr"])


def test_best_of_unknown_study_is_one_clear_error(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    code = main(["run", COMPETITION, "--data", str(data), "--best-of", "nope", "--out", str(tmp_path)])
    assert code == 2
    assert "no study 'nope'" in capsys.readouterr().err


def test_space_is_checked_against_the_config(tmp_path):
    plugin = get(COMPETITION)
    config, settings = resolve_with_tune(plugin)
    assert set(search_space(plugin, settings, config).keys) == set(plugin.search_space())
    bad_spaces = {
        "train.lrate": ({"type": "float", "low": 1e-4, "high": 1e-2}, "not a config setting"),
        "train": ({"type": "float", "low": 1e-4, "high": 1e-2}, "is a config section"),
        "train.epochs": ({"type": "categorical", "choices": ["many"]}, "must be int"),
        "head.dropout": ({"type": "float", "low": 0.5, "high": 0.1}, "must be below high"),
        "train.weight_decay": ({"type": "float", "low": 0.0, "high": 1e-2, "log": True}, "needs low > 0"),
        "head.units": ({"type": "integer", "low": 1, "high": 2}, "type must be float, int or categorical"),
    }
    for key, (spec, message) in bad_spaces.items():
        settings_bad = dict(settings, space={key: spec})
        with pytest.raises(PodiumError, match=message):
            search_space(plugin, settings_bad, config)
    with pytest.raises(PodiumError, match="not in the search space"):
        search_space(plugin, dict(settings, only=["image.size"]), config)
    narrowed = search_space(plugin, dict(settings, space={"tta.views": False}, only=[]), config)
    assert "tta.views" not in narrowed.keys and "train.lr" in narrowed.keys


def test_space_values_become_config_overrides():
    space = SearchSpace.from_specs({"train.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
                                    "head.units": {"type": "int", "low": 64, "high": 256, "step": 64}},
                                   source="test")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    params = space.suggest(trial)
    assert 1e-4 <= params["train.lr"] <= 1e-2 and params["head.units"] in (64, 128, 192, 256)
    assert space.baseline({"train": {"lr": 1e-3}, "head": {"units": 100}}) == {"train.lr": 1e-3}


def test_tune_rejects_bad_options(tmp_path, capsys):
    data = get(COMPETITION).make_demo_data(tmp_path / "data")
    assert main(["tune", COMPETITION, "--data", str(data), "--trials", "2", "--study", "../up"]) == 2
    assert "--study '../up'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:  # argparse refuses it, with the usage line
        main(["tune", COMPETITION, "--data", str(data), "--trials", "0"])
    assert refused.value.code == 2
    assert "--trials: must be at least 1, got 0" in capsys.readouterr().err


def test_movielens_tunes_its_own_space_on_rmse(tmp_path):
    plugin = get("movielens")
    data = plugin.make_demo_data(tmp_path / "data")
    summary = tune(plugin, data, trials=2, study="ml", runs_root=tmp_path / "runs",
                   sets=["train.epochs=2", "tune.trials_per_process=0", "tune.pruner=none"])
    assert summary["metric"] == "val_rmse" and summary["trials"]["complete"] == 2
    assert set(summary["best_params"]) == set(plugin.search_space())
    metrics = json.loads(open(f"{summary['best_run']}/metrics.json").read())
    assert metrics["val_rmse"] == pytest.approx(summary["best_value"])


def test_trials_record_metrics_only(searched):
    """A trial's run keeps its record and metrics (what the report and `--best-of` read), no model or
    prediction files: `podium run --best-of` writes the best one's full run."""
    complete = [t for t in searched["study"].trials if t.state.name == "COMPLETE"]
    for trial in complete:
        run_dir = trial.user_attrs["run_dir"]
        names = {p.name for p in __import__("pathlib").Path(run_dir).iterdir()}
        assert {"run.json", "config.json", "metrics.json"} <= names
        assert not names & {"head.keras", "submission.csv", "test_predictions.csv", "valid_predictions.csv",
                            "history_head.csv", "learning_curve.png"}
