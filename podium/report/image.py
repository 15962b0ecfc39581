"""Sections of an image run's report: the confusion matrix on the out-of-fold predictions, the most confused
classes, the reliability diagram before and after calibration, log loss per group and per class, the top-loss
photos, boxes, pseudo-labels. Built from the run's CSV and JSON files (and thumbnails of its data's photos)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from podium.evaluation.calibration import apply_temperature
from podium.report import plots
from podium.report.run import LeftOut, RunFiles, Section, cell, fmt

EPS = np.finfo(np.float64).eps
TOP_LOSSES = 12
CONFUSED_PAIRS = 10
RELIABILITY_BINS = 10


class Predictions:
    """Labelled predictions of a run: the out-of-fold ones (every labelled row) where the run has them,
    else the hold-out's. `probs` as written (before neighbour smoothing, temperature and clip)."""

    def __init__(self, run: RunFiles, *, source: str | None = None):
        classes = list(run.plugin.classes)
        names = {"oof": "oof_predictions.csv", "valid": "valid_predictions.csv"}
        if source is None:
            source = "oof" if (run.dir / names["oof"]).is_file() else "valid"
        frame = run.csv(names[source], why="the labelled predictions")
        missing = [name for name in ["id", "label", *classes] if name not in frame.columns]
        if missing:
            raise LeftOut(f"{names[source]} lacks the columns {', '.join(map(str, missing))}")
        frame = frame[frame["label"].notna()].reset_index(drop=True)
        if not len(frame):
            raise LeftOut(f"{names[source]} has no labelled row")
        self.source, self.file, self.classes = source, names[source], classes
        self.what = "out-of-fold" if source == "oof" else "hold-out"
        self.ids = frame["id"].astype(str).to_numpy()
        self.y = run.plugin.label_indices(frame["label"])
        probs = frame[classes].to_numpy(dtype=np.float64)
        self.probs = probs / np.clip(probs.sum(axis=1, keepdims=True), EPS, None)
        self.loss = -np.log(np.clip(self.probs[np.arange(len(self.y)), self.y], EPS, 1 - EPS))
        self.predicted = self.probs.argmax(axis=1)


def calibration_fit(run: RunFiles) -> dict:
    fit = run.json("calibration.json", why="calibration was off").get("calibration") or {}
    if not isinstance(fit.get("temperature"), (int, float)):
        raise LeftOut("calibration.json records no temperature")
    return fit


def confusion(run: RunFiles, section: Section) -> None:
    predictions = Predictions(run)
    classes, n = predictions.classes, len(predictions.classes)
    counts = np.zeros((n, n), dtype=np.int64)
    np.add.at(counts, (predictions.y, predictions.predicted), 1)
    rows = []
    for i, name in enumerate(classes):
        total = counts[i].sum()
        rows.append([cell(name)] + [cell(counts[i, j], key=f"{name}|{classes[j]}", number=True,
                                         shade=counts[i, j] / total if total else 0.0,
                                         sub=f"{counts[i, j] / total:.0%}" if total else "")
                                    for j in range(n)] + [cell(total, number=True)])
    section.note = (f"{predictions.what} predictions ({predictions.file}, {len(predictions.y)} rows); rows: true class, "
                    "columns: predicted class; each cell: count and share of its row")
    section.table(["true \\ predicted", *classes, "rows"], rows, id="confusion-matrix")
    off = counts.copy()
    np.fill_diagonal(off, 0)
    pairs = [(off[i, j], i, j) for i in range(n) for j in range(n) if off[i, j]]
    pairs.sort(key=lambda item: (-item[0], item[1], item[2]))
    if pairs:
        section.table(["true", "predicted as", "rows", "share of the true class"],
                      [[classes[i], classes[j], cell(count, number=True), f"{count / counts[i].sum():.1%}"]
                       for count, i, j in pairs[:CONFUSED_PAIRS]], id="most-confused",
                      caption=f"most confused pairs (of {len(pairs)})")
    else:
        section.text("no row is predicted as another class")


def reliability_curve(y, probs, bins: int = RELIABILITY_BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(mean confidence, accuracy, rows) of the non-empty confidence bins, and the expected calibration error."""
    confidence, correct = probs.max(axis=1), (probs.argmax(axis=1) == y).astype(np.float64)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    rows = np.bincount(which, minlength=bins)
    kept = rows > 0
    mean_confidence = np.bincount(which, confidence, bins)[kept] / rows[kept]
    accuracy = np.bincount(which, correct, bins)[kept] / rows[kept]
    error = float(np.sum(rows[kept] * np.abs(accuracy - mean_confidence)) / len(y))
    return mean_confidence, accuracy, rows[kept], error


def reliability(run: RunFiles, section: Section) -> None:
    fit = calibration_fit(run)
    source = "oof" if fit.get("source", "oof") == "oof" else "valid"
    predictions = Predictions(run, source=source)
    temperature = float(fit["temperature"])
    calibrated = apply_temperature(predictions.probs, temperature)
    before = reliability_curve(predictions.y, predictions.probs)
    after = reliability_curve(predictions.y, calibrated)
    section.image(plots.reliability({"before calibration": before[:3], f"after (temperature {temperature:.3g})": after[:3]}),
                  alt="reliability diagram")
    loss_after = -np.log(np.clip(calibrated[np.arange(len(predictions.y)), predictions.y], EPS, 1 - EPS))
    section.table(["", "log loss", "expected calibration error"],
                  [["before calibration", cell(fmt(float(predictions.loss.mean())), number=True), cell(fmt(before[3]), number=True)],
                   [f"after (temperature {temperature:.3g})", cell(fmt(float(loss_after.mean())), number=True),
                    cell(fmt(after[3]), number=True)]], id="calibration-table")
    smoothing = run.metrics.get("neighbours_k")
    section.note = (f"the temperature was fitted on the {predictions.what} predictions ({len(predictions.y)} rows)"
                    + (f"; the run fitted it after neighbour smoothing (k={smoothing}), which a report cannot redo "
                       "(it needs the features): both curves are of the predictions before smoothing" if smoothing else "")
                    + (f"; the submission is then clipped to [{fit['lo']:.4g}, {fit['hi']:.4g}]" if "lo" in fit and "hi" in fit else ""))


def per_class(run: RunFiles, section: Section) -> None:
    predictions = Predictions(run)
    temperature = _temperature_or_none(run)
    calibrated = (-np.log(np.clip(apply_temperature(predictions.probs, temperature)[np.arange(len(predictions.y)), predictions.y],
                                  EPS, 1 - EPS)) if temperature else None)
    rows, losses = [], {"log loss": []}
    for index, name in enumerate(predictions.classes):
        mask = predictions.y == index
        loss = float(predictions.loss[mask].mean()) if mask.any() else float("nan")
        losses["log loss"].append(loss)
        row = [name, cell(int(mask.sum()), number=True), cell(fmt(loss), number=True),
               cell(fmt(float((predictions.predicted[mask] == index).mean())) if mask.any() else "", number=True)]
        if calibrated is not None:
            row.insert(3, cell(fmt(float(calibrated[mask].mean())) if mask.any() else "", number=True))
        rows.append(row)
    header = ["class", "rows", "log loss"] + (["calibrated"] if calibrated is not None else []) + ["accuracy"]
    section.note = f"{predictions.what} predictions" + _calibration_note(run, temperature)
    section.table(header, rows, id="per-class")
    section.image(plots.bars(predictions.classes, losses, ylabel="log loss"), alt="log loss per class")


def _temperature_or_none(run: RunFiles) -> float | None:
    """The run's temperature, where applying it to the written predictions gives what the run calibrated: not
    after neighbour smoothing, which needs the features (a report reads files only)."""
    if run.metrics.get("neighbours_k"):
        return None
    try:
        return float(calibration_fit(run)["temperature"])
    except LeftOut:
        return None


def _calibration_note(run: RunFiles, temperature: float | None) -> str:
    if temperature is None and run.metrics.get("neighbours_k"):
        return ("; no calibrated column: the temperature was fitted after neighbour smoothing "
                f"(k={run.metrics['neighbours_k']}), which needs the features")
    return ""


def per_group(run: RunFiles, section: Section) -> None:
    predictions = Predictions(run)
    table = run.table()
    groups = table.assign(id=table["id"].astype(str)).set_index("id")["group"]
    group = pd.Series(predictions.ids).map(groups)
    if group.isna().all() or group.astype(str).str.strip().isin(("", "nan", "None")).all():
        raise LeftOut(f"the {run.plugin.name} table has no groups")
    temperature = _temperature_or_none(run)
    frame = pd.DataFrame({"group": group.astype(str), "loss": predictions.loss,
                          "correct": predictions.predicted == predictions.y})
    if temperature:
        calibrated = apply_temperature(predictions.probs, temperature)
        frame["calibrated"] = -np.log(np.clip(calibrated[np.arange(len(predictions.y)), predictions.y], EPS, 1 - EPS))
    summary = frame.groupby("group").agg(rows=("loss", "size"), loss=("loss", "mean"), accuracy=("correct", "mean"),
                                         **({"calibrated": ("calibrated", "mean")} if temperature else {}))
    summary = summary.sort_values("loss", ascending=False)
    header = ["group", "rows", "log loss"] + (["calibrated"] if temperature else []) + ["accuracy"]
    rows = [[name, cell(int(item.rows), number=True), cell(fmt(item.loss), number=True)]
            + ([cell(fmt(item.calibrated), number=True)] if temperature else []) + [cell(fmt(item.accuracy), number=True)]
            for name, item in summary.iterrows()]
    section.note = f"{predictions.what} predictions, worst group first" + _calibration_note(run, temperature)
    section.table(header, rows, id="per-group")
    series = {"log loss": summary["loss"].tolist()}
    if temperature:
        series["calibrated"] = summary["calibrated"].tolist()
    section.image(plots.bars(summary.index.tolist(), series, ylabel="log loss", xlabel="group"), alt="log loss per group")


def top_losses(run: RunFiles, section: Section) -> None:
    predictions = Predictions(run)
    table = run.table()
    paths = table.assign(id=table["id"].astype(str)).drop_duplicates("id").set_index("id")["path"]
    worst = np.argsort(-predictions.loss, kind="stable")[:TOP_LOSSES]
    items = []
    for row in worst:
        path = paths.get(predictions.ids[row])
        true, guess = predictions.classes[predictions.y[row]], predictions.classes[predictions.predicted[row]]
        lines = [predictions.ids[row], f"true {true}: p={predictions.probs[row, predictions.y[row]]:.3f}",
                 f"predicted {guess}: p={predictions.probs[row, predictions.predicted[row]]:.3f}",
                 f"loss {predictions.loss[row]:.2f}"]
        try:
            src = plots.picture_uri(path, longest=plots.THUMBNAIL) if isinstance(path, str) else ""
        except OSError:
            src = ""
        if not src:
            lines.append("(photo not found)")
        items.append({"src": src, "alt": f"{predictions.ids[row]}: true {true}, predicted {guess}", "lines": lines})
    section.note = (f"the {len(items)} {predictions.what} rows with the highest log loss: the model was sure and wrong"
                    + ("; a class activation map of any of them: `podium heatmap RUN_DIR IMAGE` (it runs the network, "
                       "which a report does not)" if run.config.get("head", {}).get("kind") == "fcn" else ""))
    section.thumbnails(items)


def boxes(run: RunFiles, section: Section) -> None:
    if not run.config.get("boxes", {}).get("loss_weight"):
        raise LeftOut("the run has no box output (boxes.loss_weight = 0)")
    if "val_box_iou" in run.metrics:
        section.table(["", ""], [["validation photos with a box", cell(run.metrics.get("val_box_rows", ""), key="val_box_rows")],
                                 ["mean IoU", cell(fmt(run.metrics["val_box_iou"]), key="val_box_iou", number=True)],
                                 ["share with IoU > 0.5", cell(fmt(run.metrics.get("val_box_iou_over_half")),
                                                               key="val_box_iou_over_half", number=True)]], id="box-table")
    if (run.dir / "valid_boxes.csv").is_file():
        iou = run.csv("valid_boxes.csv")["iou"].dropna().to_numpy()
        if len(iou):
            section.image(plots.histogram(iou, xlabel="IoU of predicted and true box"), alt="IoU distribution",
                          caption=f"{len(iou)} validation photos with a true box")
    section.image(plots.picture_uri(run.path("boxes.png", why="drawn by the box_report stage")),
                  alt="true and predicted boxes", caption="validation photos: true box and predicted box")


def pseudo_labels(run: RunFiles, section: Section) -> None:
    rounds = run.metrics.get("pseudo_rounds")
    if not rounds:
        raise LeftOut("pseudo-labeling was off (pseudo.enabled = false)")
    classes = list(run.plugin.classes)
    with_counts = any(isinstance(item.get("by_class"), dict) for item in rounds)
    header = ["round", "test rows", "validation log loss", "accuracy"] + (classes if with_counts else [])
    rows = []
    for item in rounds:
        counts = item.get("by_class") or {}
        rows.append([item.get("round", ""), cell(item.get("pseudo_rows", ""), number=True),
                     cell(fmt(item.get("val_log_loss")), number=True), cell(fmt(item.get("val_accuracy")), number=True)]
                    + ([cell(counts.get(name, 0), number=True) for name in classes] if with_counts else []))
    before = run.metrics.get("val_log_loss_before_pseudo")
    section.note = ((f"validation log loss {before:.4f} before pseudo-labeling; " if isinstance(before, (int, float)) else "")
                    + ("test rows per class: the arg-max of their pseudo-label" if with_counts
                       else "this run did not record its pseudo-labels per class (an older podium)"))
    section.table(header, rows, id="pseudo-table")
