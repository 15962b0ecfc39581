"""Shared by the competition benches: run a recipe through `start_run` and score its submission on the
held-out test labels, as the leaderboard would; a logistic-regression probe on the same cached features."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd


def score_submission(plugin, submission: Path, labels: Path) -> tuple[float, float]:
    """(log loss, accuracy) of a submission file against test_labels.csv (rows renormalised, as Kaggle does)."""
    from sklearn.metrics import accuracy_score, log_loss

    frame = pd.read_csv(submission)
    truth = pd.read_csv(labels)
    if plugin.name == "dogs-vs-cats-redux":
        merged = frame.merge(truth, on="id", suffixes=("_pred", "_true"))
        p = merged["label_pred"].to_numpy(dtype=np.float64)
        y = merged["label_true"].to_numpy()
        return float(log_loss(y, p, labels=[0, 1])), float(accuracy_score(y, p > 0.5))
    id_column = plugin.id_column
    label_column = "classname" if "classname" in truth.columns else "label"
    true = truth.set_index(id_column).loc[frame[id_column], label_column]
    y = plugin.label_indices(true)
    p = frame[list(plugin.classes)].to_numpy(dtype=np.float64)
    p = p / p.sum(axis=1, keepdims=True)
    return float(log_loss(y, p, labels=list(range(len(plugin.classes))))), float(accuracy_score(y, p.argmax(axis=1)))


def test_truth(plugin, data, labels: Path) -> np.ndarray:
    truth = pd.read_csv(labels)
    if plugin.name == "dogs-vs-cats-redux":
        return truth.set_index("id").loc[data.test["id"].astype(int), "label"].to_numpy()
    column = "classname" if "classname" in truth.columns else "label"
    return plugin.label_indices(truth.set_index(plugin.id_column).loc[data.test["id"], column])


def probe(plugin, data, labels: Path, *, C: float, scale: bool) -> dict:
    """Logistic regression on globally average-pooled cached features, trained on the run's training rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, log_loss
    from sklearn.preprocessing import StandardScaler

    pooled = np.asarray(data.labelled_features(0).array).mean(axis=(1, 2))
    pooled_test = np.asarray(data.test_features(0).array).mean(axis=(1, 2))
    if scale:
        scaler = StandardScaler().fit(pooled[data.train_rows])
        pooled, pooled_test = scaler.transform(pooled), scaler.transform(pooled_test)
    model = LogisticRegression(C=C, max_iter=3000).fit(pooled[data.train_rows], data.y[data.train_rows])
    classes = list(range(len(plugin.classes)))
    valid = model.predict_proba(pooled[data.valid_rows])
    test = model.predict_proba(pooled_test)
    y_test = test_truth(plugin, data, labels)
    return {"val_log_loss": float(log_loss(data.y[data.valid_rows], valid, labels=classes)),
            "test_log_loss": float(log_loss(y_test, test, labels=classes)),
            "test_accuracy": float(accuracy_score(y_test, test.argmax(axis=1)))}


def run_recipe(plugin, data_dir: Path, config: dict, labels: Path, *, runs: Path, tag: str) -> dict:
    from podium.evaluation.runner import start_run

    started = time.perf_counter()
    run_dir, metrics = start_run(plugin, data_dir, config, runs_root=runs, tag=tag)
    loss, accuracy = score_submission(plugin, Path(metrics["submission"]), labels)
    return {**metrics, "test_log_loss": loss, "test_accuracy": accuracy, "run_dir": str(run_dir),
            "seconds": time.perf_counter() - started}


def run_recipes(plugin, data_dir: Path, recipes: dict, labels: Path, *, runs: Path, results: dict) -> dict:
    """Each recipe run and scored in turn (into `results`), a line printed as each ends."""
    for name, config in recipes.items():
        results[name] = run_recipe(plugin, data_dir, config, labels, runs=runs, tag=name.strip()[:20].replace(" ", "-"))
        seconds = results[name].get("finetune_seconds_per_epoch")
        extra = f", {seconds:.0f} s per fine-tuning epoch" if seconds else ""
        print(f"{name}: test log loss {results[name]['test_log_loss']:.4f}{extra}", flush=True)
    return results


HEADER = (f"{'recipe':44s} {'val ll':>7s} {'oof ll':>7s} {'oof cal':>7s} {'val acc':>7s} "
          f"{'test ll':>8s} {'test acc':>8s} {'secs':>5s}")


def row(name: str, result: dict) -> str:
    def number(key, width=7, digits=4):
        value = result.get(key)
        return f"{value:{width}.{digits}f}" if isinstance(value, (int, float)) else f"{'-':>{width}s}"

    calibrated = result.get("oof_log_loss_calibrated_clipped", result.get("val_log_loss_clipped"))
    return (f"{name:44s} {number('val_log_loss')} {number('oof_log_loss')} "
            f"{(f'{calibrated:7.4f}' if isinstance(calibrated, float) else '      -')} {number('val_accuracy')} "
            f"{number('test_log_loss', 8)} {number('test_accuracy', 8)} {number('seconds', 5, 0)}")


def dump(results: dict, path: Path) -> None:
    keep = {name: {k: v for k, v in r.items() if isinstance(v, (int, float, str))} for name, r in results.items()}
    Path(path).write_text(json.dumps(keep, indent=1))
