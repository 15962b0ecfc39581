"""Running and scoring: start a run of any plugin, out-of-fold estimates, ensembles, calibration and clipping."""
