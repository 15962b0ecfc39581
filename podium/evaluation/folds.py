"""Cross-validation: one run per fold of `data.folds`, then out-of-fold predictions and a fold-averaged test prediction.

Layout: `runs/<competition>/<id>-cv<k>/` holds `fold0/` .. `fold<k-1>/` (each a complete run)
and, for the whole, `oof_predictions.csv` (every labelled row, predicted by the fold that
did not train on it), `test_predictions.csv` (the folds' mean), `metrics.json` (the
out-of-fold scores), `submission.csv`. The out-of-fold predictions are also written as
`valid_predictions.csv`, so the folder is a run by the run-directory contract and two
cross-validations with the same folds can be ensembled.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd

from podium.errors import PodiumError
from podium.files import atomic_write_text
from podium.core import backend
from podium.core.rundir import complete_run, create_run_folder, new_run_dir, update_metrics, write_run_record
from podium.evaluation.runner import pipeline_module, record_manifest
from podium.log import logger


def run_folds(plugin, data_dir: Path, config: dict, *, runs_root: Path = Path("runs"), sample: bool = False,
              tag: str = "") -> tuple[Path, dict]:
    """Train every fold of `data.folds` (the split strategy of `data.split`, e.g. by driver); return
    (cross-validation directory, its metrics)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise PodiumError(f"data folder {data_dir} not found")
    folds = int(config["data"]["folds"])
    if folds < 2:
        raise PodiumError(f"cross-validation needs data.folds >= 2, got {folds}")
    pipeline = pipeline_module(plugin.pipeline)
    stages = pipeline.check(plugin, config, data_dir=data_dir)  # every refusal before the directory exists
    backend.configure(config)
    cv_dir = new_run_dir(runs_root, plugin.name, tag or f"cv{folds}-s{config['seed']}{'-sample' if sample else ''}")
    write_run_record(cv_dir, plugin, data_dir, config, sample=sample, folds=folds)
    logger.info(f"cross-validation directory: {cv_dir}")
    hooks = {"stages": stages} if stages else {}
    fold_metrics = []
    for fold in range(folds):
        fold_config = copy.deepcopy(config)
        fold_config["data"]["fold"] = fold
        fold_dir = cv_dir / f"fold{fold}"
        create_run_folder(fold_dir)
        write_run_record(fold_dir, plugin, data_dir, fold_config, sample=sample, fold=fold)
        logger.info(f"\n== fold {fold + 1} of {folds} ==")
        fold_metrics.append(update_metrics(fold_dir, **pipeline.run(plugin, data_dir, fold_config, fold_dir, sample=sample, **hooks)))
        record_manifest(pipeline, fold_dir, stages)
        complete_run(fold_dir)
    metrics = combine_folds(plugin, cv_dir, [cv_dir / f"fold{fold}" for fold in range(folds)], data_dir=data_dir)
    metrics[f"fold_val_{plugin.metric}"] = [m.get(f"val_{plugin.metric}") for m in fold_metrics]
    metrics = update_metrics(cv_dir, **metrics)
    return complete_run(cv_dir), metrics  # only now does the folder look like a run


def combine_folds(plugin, cv_dir: Path, fold_dirs, *, data_dir: Path) -> dict:
    """Out-of-fold predictions and scores, the fold-averaged test prediction and its submission."""
    from podium.evaluation.clipping import apply_clip, choose_clip
    from podium.core.writer import write_submission

    columns = plugin.prediction_columns()
    valid = [pd.read_csv(Path(d) / "valid_predictions.csv", dtype={"id": str}) for d in fold_dirs]
    oof = pd.concat(valid, ignore_index=True)
    repeated = oof["id"].duplicated()
    if repeated.any():
        raise PodiumError(f"row {oof.loc[repeated, 'id'].iloc[0]!r} is validated in two folds; "
                          "the folds must not overlap")
    classification = plugin.task == "classification"

    def shaped(preds):
        return preds if classification or preds.shape[1] > 1 else preds[:, 0]

    oof_pred = oof[columns].to_numpy(dtype=np.float64)
    metrics = {"folds": len(fold_dirs), "oof_rows": len(oof), **plugin.evaluate(oof["label"].to_numpy(), shaped(oof_pred))}
    text = oof.to_csv(index=False, float_format="%.6f")
    atomic_write_text(cv_dir / "oof_predictions.csv", text, overwrite=False)
    atomic_write_text(cv_dir / "valid_predictions.csv", text, overwrite=False)

    tests = [Path(d) / "test_predictions.csv" for d in fold_dirs]
    if not all(path.is_file() for path in tests):
        return metrics
    frames = [pd.read_csv(path, dtype={"id": str}).set_index("id") for path in tests]
    ids = frames[0].index
    for path, frame in zip(tests[1:], frames[1:]):
        if set(frame.index) != set(ids):
            raise PodiumError(f"{path}: its test ids differ from those of {tests[0]}")
    test_pred = np.mean([frame.loc[ids, columns].to_numpy(dtype=np.float64) for frame in frames], axis=0)
    atomic_write_text(cv_dir / "test_predictions.csv", pd.DataFrame(test_pred, columns=columns).assign(id=list(ids))
                      [["id", *columns]].to_csv(index=False, float_format="%.6f"), overwrite=False)
    if classification:
        clip = choose_clip(plugin.label_indices(oof["label"]), oof_pred)
        metrics.update({"val_log_loss_clipped": clip["log_loss_after"], "clip": [clip["lo"], clip["hi"]]})
        test_pred = apply_clip(test_pred, clip["lo"], clip["hi"])
    frame = plugin.submission_frame(list(ids), shaped(test_pred))
    metrics["submission"] = str(write_submission(plugin, frame, cv_dir / "submission.csv", data_dir=data_dir))
    return metrics
