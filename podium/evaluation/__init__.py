"""Running and scoring: start a run of any plugin, out-of-fold estimates, ensembles, calibration and clipping."""

__all__ = ["calibration", "clipping", "demo", "ensemble", "finish", "folds", "heads_ensemble", "oof", "runner"]  # the package's modules
