"""One trial = one run of the plugin's pipeline with the trial's values, on cached features.

The value is the run's validation metric (`val_<plugin.metric>` by default: the plain, unclipped
validation log loss for classification, because the clip is itself fitted on the validation set).
Each epoch's `val_loss` goes to the pruner, which stops trials worse than the median of earlier ones.
"""
from __future__ import annotations

import gc
import math
import os
import socket
from pathlib import Path

from podium.errors import PodiumError
from podium.log import logger
from podium.tuning.space import SearchSpace, overrides_from_params

__all__ = ["Objective"]


class Objective:
    """Callable for `study.optimize`: suggest, run, report; memory is released after every trial."""

    def __init__(self, plugin, data_dir: Path, config: dict, space: SearchSpace, *, trials_root: Path,
                 sample: bool = False, metric: str, monitor: str = "val_loss", record: str = "metrics"):
        self.plugin = plugin
        self.data_dir = Path(data_dir)
        self.config = config
        self.space = space
        self.trials_root = Path(trials_root)
        self.sample = sample
        self.metric = metric
        self.monitor = monitor
        self.record = record  # "metrics": the trial's run writes metrics.json, no model or prediction file

    def __call__(self, trial) -> float:
        import optuna
        from optuna_integration import KerasPruningCallback

        from podium.config import check_ranges, merge
        from podium.evaluation.runner import start_run

        tag = f"trial{trial.number:04d}"
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")  # which machine and process ran it
        try:
            params = self.space.suggest(trial)
            config = merge(self.config, overrides_from_params(params), source=f"trial {trial.number}")
            check_ranges(config, self.plugin.config_ranges())
            logger.info(f"\n== trial {trial.number}: " + ", ".join(f"{k}={_short(v)}" for k, v in params.items()))
            run_dir, metrics = start_run(self.plugin, self.data_dir, config, runs_root=self.trials_root,
                                         sample=self.sample, tag=tag,
                                         callbacks=[KerasPruningCallback(trial, self.monitor)], record=self.record)
            trial.set_user_attr("run_dir", str(run_dir))
            if self.metric not in metrics:
                raise PodiumError(f"the run wrote no {self.metric!r} (it has {sorted(metrics)}); "
                                  "set tune.metric to one of those")
            value = float(metrics[self.metric])
            if not math.isfinite(value):
                raise PodiumError(f"{self.metric} is {value}: the run diverged")
            for key, extra in metrics.items():
                if key.startswith("val_") and key != self.metric and isinstance(extra, (int, float)):
                    trial.set_user_attr(key, float(extra))
            return value
        except optuna.TrialPruned:
            self._record_run_dir(trial, tag)
            raise
        except Exception as exc:
            # Recorded with the trial; the study catches it and goes on with the next trial.
            self._record_run_dir(trial, tag)
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:2000])
            raise
        finally:
            _release_memory()
            trial.set_user_attr("rss_mb", round(_resident_mb(), 1))  # memory should stay flat from trial to trial

    def _record_run_dir(self, trial, tag: str) -> None:
        found = sorted((self.trials_root / self.plugin.name).glob(f"*-{tag}"))
        if found:
            trial.set_user_attr("run_dir", str(found[-1]))


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _release_memory() -> None:
    # Keras keeps every model built in the process in its global state until the session is cleared.
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # tf.data keeps the py-functions it builds on the global graph for the life of the process, and
        # with them the generator of every Keras PyDataset fitted on (so a trial's feature arrays).
        getattr(tf.compat.v1.get_default_graph(), "_py_funcs_used_in_graph", []).clear()
    keras.backend.clear_session(free_memory=False)  # it would collect too: a full collection is ~0.3 s here
    gc.collect()


def _resident_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20
