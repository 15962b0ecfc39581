"""Hyper-parameter search on cached features: `podium tune` and `podium run --best-of`.

A plugin declares its search space (`Competition.search_space`), a config's `[tune]` section
adjusts it (settings), each trial is one pipeline run scored on validation (objective), trials
live in an Optuna study in a database (study), workers share that study (workers), and the
study's summary and plots go to its folder (report). Optuna is imported only when a search runs.
"""
from podium.tuning.search import SAMPLE_WARNING, tune
from podium.tuning.settings import TUNE_DEFAULTS, objective_metric, resolve_with_tune, search_space
from podium.tuning.space import Param, SearchSpace, overrides_from_params

__all__ = ["SAMPLE_WARNING", "TUNE_DEFAULTS", "Param", "SearchSpace", "objective_metric", "overrides_from_params",
           "resolve_with_tune", "search_space", "tune"]
