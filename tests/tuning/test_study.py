import optuna
import pytest

from podium.competitions import get
from podium.errors import PodiumError
from podium.tuning.settings import resolve_with_tune
from podium.tuning.study import open_study


def _learning_curves(study, trials: int, epochs: int = 9):
    """Trial i's loss falls from 1 + i towards i: the later the trial, the worse at every epoch."""
    def objective(trial):
        for epoch in range(epochs):
            trial.report(1.0 + trial.number - epoch / epochs, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(trial.number)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=trials)
    return study.trials


def test_hyperband_stops_most_bad_trials_after_the_warm_up_epochs(tmp_path):
    plugin = get("dogs-vs-cats-redux")
    _, tune = resolve_with_tune(plugin, sets=["tune.pruner=hyperband", "tune.warmup_epochs=1"])
    study = open_study("hb", f"sqlite:///{tmp_path / 'hb.db'}", competition=plugin.name, direction="minimize",
                       metric="val_log_loss", tune=tune, seed=0)
    trials = _learning_curves(study, 12)
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    assert len(pruned) >= 6  # the epochs saved are where its trials per minute come from
    assert study.best_trial.number == 0
    epochs_run = sum(len(t.intermediate_values) for t in trials)
    assert epochs_run < 0.8 * 12 * 9


def test_unknown_pruner_is_one_clear_error():
    with pytest.raises(PodiumError, match="tune.pruner must be one of median, hyperband, none"):
        resolve_with_tune(get("dogs-vs-cats-redux"), sets=["tune.pruner=asha"])
