"""Tuning that refuses what it cannot compare: a metric no run writes, a space a head kind cannot take,
a study resumed with other data or features, more workers than cores."""
from __future__ import annotations

import pytest

from podium.cli.main import main
from podium.competitions import get

COMPETITION = "dogs-vs-cats-redux"
SETS = ["oof.folds=0", "image.weights=none", "image.size=[32,32]", "train.epochs=1", "train.batch_size=16",
        "tune.pruner=none", "tune.trials_per_process=0", 'tune.only=["train.lr"]']


def command(data, tmp_path, *extra, trials: int = 1):
    sets = [*SETS, f"paths.cache={tmp_path / 'cache'}"]
    return ["tune", COMPETITION, "--data", str(data), "--trials", str(trials), "--out", str(tmp_path / "runs"),
            *[arg for s in sets for arg in ("--set", s)], *extra]


def one_line(argv, capsys, *needles) -> str:
    rc = main([str(a) for a in argv])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 2 and len(err) == 1, err
    assert "Traceback" not in err[0]
    for needle in needles:
        assert needle in err[0], err[0]
    return err[0]


def test_a_metric_no_run_writes_is_refused_before_any_trial(redux_data, tmp_path, capsys):
    one_line(command(redux_data, tmp_path, "--set", "tune.metric=val_bogus"), capsys, "tune.metric", "val_bogus",
             "val_log_loss")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "cache").exists()


def test_variants_of_a_plugin_metric_are_accepted():
    from podium.tuning.settings import check_metric

    for metric in ("val_log_loss", "oof_log_loss_calibrated_clipped", "val_accuracy", "crop_val_log_loss"):
        assert check_metric(get(COMPETITION), metric) == metric
    assert check_metric(get("movielens"), "val_rmse") == "val_rmse"


@pytest.mark.parametrize("kind", ["dense", "fcn"])
def test_a_head_kind_is_searched_over_its_own_widths(kind):
    from podium.tuning.settings import resolve_with_tune, search_space

    plugin = get(COMPETITION)
    config, settings = resolve_with_tune(plugin, sets=[f"head.kind={kind}", "head.units=256"])
    units = {param.key: param for param in search_space(plugin, settings, config).params}["head.units"]
    assert 0 not in units.choices and set(units.choices) == {128, 256, 512}
    config, settings = resolve_with_tune(plugin, sets=["head.kind=gap"])
    units = {param.key: param for param in search_space(plugin, settings, config).params}["head.units"]
    assert 0 in units.choices  # a gap head may go without a hidden layer


def stored_study(tmp_path, data, **changes):
    """The study `podium tune` would open for SETS, created without running a trial."""
    from podium.tuning.settings import fingerprint, objective_metric, resolve_with_tune
    from podium.tuning.study import open_study, study_paths

    plugin = get(COMPETITION)
    sets = [*SETS, f"paths.cache={tmp_path / 'cache'}", *(f"{k}={v}" for k, v in changes.items())]
    config, settings = resolve_with_tune(plugin, sets=sets)
    metric = objective_metric(plugin, settings, config)
    paths = study_paths(tmp_path / "runs", plugin.name, "default")
    return open_study("default", paths.storage, competition=plugin.name, direction="minimize", metric=metric,
                      tune=settings, seed=0, attrs={"fingerprint": fingerprint(config, data_dir=data, sample=False,
                                                                               metric=metric)})


def test_resuming_a_study_with_other_settings_is_refused_naming_them(redux_data, tmp_path, capsys):
    stored_study(tmp_path, redux_data, **{"image.size": "[48,48]"})
    capsys.readouterr()  # optuna's own log of creating it
    one_line(command(redux_data, tmp_path), capsys, "image.size", "[48, 48] -> [32, 32]", "--new-study")
    study = stored_study(tmp_path, redux_data, **{"image.size": "[48,48]"})
    assert study.get_trials() == []  # nothing ran, nothing was mixed in


def test_new_study_starts_the_next_name_and_jobs_are_capped_at_the_cores(redux_data, tmp_path, capsys):
    import optuna

    from podium.tuning.search import usable_cores

    stored_study(tmp_path, redux_data, seed=7)
    assert main(command(redux_data, tmp_path, "--new-study", "--jobs", "999")) == 0
    out = capsys.readouterr().out
    assert f"--jobs 999 capped at {usable_cores()}" in out and "seed: 7 -> 42" in out and "'default-2'" in out
    folder = tmp_path / "runs" / COMPETITION / "tuning" / "default-2"
    trials = optuna.load_study(study_name="default-2", storage=f"sqlite:///{folder / 'study.db'}").trials
    assert [t.state.name for t in trials] == ["COMPLETE"]
