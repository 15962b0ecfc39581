"""Shared by the competition benches: run a recipe through `start_run` and score its submission on the
held-out test labels, as the leaderboard would; a logistic-regression probe on the same cached features."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd


def score_submission(plugin, submission: Path, labels: Path) -> tuple[float, float]:
    """(log loss, accuracy) of a submission file against test_labels.csv (clipped to 1e-15 and rows renormalised,
    as Kaggle does)."""
    from sklearn.metrics import accuracy_score

    frame = pd.read_csv(submission)
    truth = pd.read_csv(labels)
    if plugin.name == "dogs-vs-cats-redux":
        merged = frame.merge(truth, on="id", suffixes=("_pred", "_true"))
        p = merged["label_pred"].to_numpy(dtype=np.float64)
        y = merged["label_true"].to_numpy()
        return clipped_log_loss(y, np.stack([1 - p, p], axis=1)), float(accuracy_score(y, p > 0.5))
    id_column = plugin.id_column
    label_column = "classname" if "classname" in truth.columns else "label"
    true = truth.set_index(id_column).loc[frame[id_column], label_column]
    y = plugin.label_indices(true)
    p = frame[list(plugin.classes)].to_numpy(dtype=np.float64)
    return clipped_log_loss(y, p), float(accuracy_score(y, p.argmax(axis=1)))


def test_truth(plugin, data, labels: Path) -> np.ndarray:
    truth = pd.read_csv(labels)
    if plugin.name == "dogs-vs-cats-redux":
        return truth.set_index("id").loc[data.test["id"].astype(int), "label"].to_numpy()
    column = "classname" if "classname" in truth.columns else "label"
    return plugin.label_indices(truth.set_index(plugin.id_column).loc[data.test["id"], column])


PROBE_C = tuple(float(c) for c in np.logspace(-3, 2, 11))  # 1e-3 .. 1e2
PROBE = "logistic regression probe (all labelled rows, C by CV)"


def probe(plugin, data, labels: Path, *, grouped: bool, folds: int = 5, seed: int = 0) -> dict:
    """The floor to beat: scikit-learn's logistic regression on the plain pass's pooled features of every labelled
    row (standardised), C chosen by (grouped) cross-validated log loss over 1e-3..1e2; no augmentation, no clip
    beyond 1e-15. `cv_log_loss` is its cross-validated loss at that C, comparable to a run's `oof_log_loss`."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import accuracy_score
    from sklearn.model_selection import GroupKFold, StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    rows = np.union1d(data.train_rows, data.valid_rows)
    x = np.asarray(data.labelled_features(0).array).mean(axis=(1, 2))[rows]
    x_test = np.asarray(data.test_features(0).array).mean(axis=(1, 2))
    y, groups = data.y[rows], data.labelled["group"].to_numpy()[rows]
    scaler = StandardScaler().fit(x)  # unsupervised, on the labelled rows
    splitter = GroupKFold(n_splits=folds) if grouped else StratifiedKFold(n_splits=folds, shuffle=True,
                                                                          random_state=seed)
    # LogisticRegressionCV walks the C path with warm starts: the same search as a grid, many times faster.
    cv = list(splitter.split(x, y, groups if grouped else None))
    model = LogisticRegressionCV(Cs=list(PROBE_C), cv=cv, scoring="neg_log_loss", max_iter=5000).fit(
        scaler.transform(x), y)
    test = model.predict_proba(scaler.transform(x_test))
    y_test = test_truth(plugin, data, labels)
    cv_loss = -model.scores_[model.classes_[-1]].mean(axis=0).max()
    return {"C": float(np.atleast_1d(model.C_)[0]), "cv_log_loss": float(cv_loss),
            "test_log_loss": clipped_log_loss(y_test, test),
            "test_accuracy": float(accuracy_score(y_test, test.argmax(axis=1)))}


def clipped_log_loss(y_index, probs, eps: float = 1e-15) -> float:
    """Multi-class log loss with each probability clipped to [eps, 1 - eps] and rows renormalised (as Kaggle)."""
    probs = np.clip(np.asarray(probs, dtype=np.float64), eps, 1 - eps)
    probs = probs / probs.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(probs[np.arange(len(probs)), np.asarray(y_index)])))


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
        for member, entry in results[name].get("ensemble", {}).items():
            print(f"    ensemble member {member:9s} out-of-fold log loss {entry['oof_log_loss']:.4f}, "
                  f"weight {entry['weight']:.2f}", flush=True)
        dropped = results[name].get("dropped_steps") or {}
        for step, why in dropped.items():
            print(f"    dropped {step}: {why}", flush=True)
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


def seed_summary(results: dict, *, probe_name: str, target: float | None = None) -> str:
    """The default run's test log loss over its seeds: each, the mean and spread, and the ratio to the probe's."""
    seeded = {name.rsplit(" ", 1)[-1]: r["test_log_loss"] for name, r in results.items() if ", seed " in name}
    if not seeded:
        return ""
    floor = results[probe_name]["test_log_loss"]
    losses = np.array(list(seeded.values()))
    spread = losses.std(ddof=1) if len(losses) > 1 else 0.0
    verdict = ""
    if target:
        verdict = f" (target <= {target:.2f}x: {'met' if losses.max() / floor <= target else 'NOT met'})"
    each = ", ".join(f"seed {seed}: {loss:.4f}" for seed, loss in seeded.items())
    return (f"{each}\nmean {losses.mean():.4f}, spread {losses.min():.4f}..{losses.max():.4f} (sd {spread:.4f}); "
            f"ratio to the probe's {floor:.4f}: mean {losses.mean() / floor:.3f}x, worst {losses.max() / floor:.3f}x"
            + verdict)
