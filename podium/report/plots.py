"""Figures of a report as PNG data URIs (matplotlib, Agg), and photos as small JPEG thumbnails."""
from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np

DPI = 80
THUMBNAIL = 160  # longest side of a top-loss thumbnail, pixels
PICTURE = 1100 # longest side of a picture a run drew (boxes.png, movie_pca.png) once embedded


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def data_uri(data: bytes, kind: str) -> str:
    return f"data:image/{kind};base64,{base64.b64encode(data).decode('ascii')}"


def figure_uri(figure) -> str:
    """The figure as a PNG data URI; the figure is closed."""
    plt = _pyplot()
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=DPI)
    plt.close(figure)
    return data_uri(buffer.getvalue(), "png")


def picture_uri(path: Path, *, longest: int = PICTURE) -> str:
    """An image file, shrunk to `longest` pixels on its longest side, as a JPEG data URI (small in a report)."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        image.thumbnail((longest, longest))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=80)
    return data_uri(buffer.getvalue(), "jpeg")


def learning_curves(histories: dict) -> str:
    """Loss and accuracy per epoch, one line per training (file name -> frame), training dashed."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    shown = {}
    for name, frame in histories.items():
        for axis, metric in zip(axes, ("loss", "accuracy")):
            train, valid = _history_columns(frame, metric)
            if train:
                shown[metric] = train
                line, = axis.plot(frame.index + 1, frame[train], "--", label=f"{name} train")
                if valid:
                    axis.plot(frame.index + 1, frame[valid], "-", color=line.get_color(), label=f"{name} valid")
    for axis, metric in zip(axes, ("loss", "accuracy")):
        axis.set_xlabel("epoch")
        axis.set_ylabel(shown.get(metric, metric))
        if axis.lines:
            axis.legend(fontsize=7)
    return figure_uri(figure)


def _history_columns(frame, metric: str) -> tuple[str | None, str | None]:
    """The training and validation columns of `metric` in a history (`class_loss` for a two-output head;
    `rmse` stands in for accuracy in a rating model's history)."""
    names = [metric, f"class_{metric}"] + (["rmse"] if metric == "accuracy" else [])
    for name in names:
        if name in frame.columns:
            return name, (f"val_{name}" if f"val_{name}" in frame.columns else None)
    return None, None


def reliability(curves: dict) -> str:
    """Accuracy against confidence (the top class's probability) in bins, one line per label -> (conf, acc, n)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(4.6, 4.2))
    axis.plot([0, 1], [0, 1], ":", color="grey", label="perfectly calibrated")
    for label, (confidence, accuracy, _) in curves.items():
        axis.plot(confidence, accuracy, "o-", label=label)
    axis.set_xlabel("confidence (top class probability)")
    axis.set_ylabel("accuracy")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1.02)
    axis.legend(fontsize=8)
    return figure_uri(figure)


def bars(labels, series: dict, *, ylabel: str, xlabel: str = "") -> str:
    """Grouped bars: one group per label, one bar per series (name -> values)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(max(4.5, 0.5 * len(labels) * max(1, len(series)) + 2), 3.2))
    positions = np.arange(len(labels))
    width = 0.8 / max(1, len(series))
    for number, (name, values) in enumerate(series.items()):
        axis.bar(positions + number * width - 0.4 + width / 2, values, width, label=name)
    axis.set_xticks(positions, [str(label) for label in labels], rotation=45 if len(labels) > 8 else 0,
                    ha="right" if len(labels) > 8 else "center", fontsize=8)
    axis.set_ylabel(ylabel)
    if xlabel:
        axis.set_xlabel(xlabel)
    if len(series) > 1:
        axis.legend(fontsize=8)
    return figure_uri(figure)


def histogram(values, *, xlabel: str, bins=20, range_=(0.0, 1.0)) -> str:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(4.6, 3.0))
    axis.hist(values, bins=bins, range=range_, color="#4c72b0")
    axis.set_xlabel(xlabel)
    axis.set_ylabel("images")
    return figure_uri(figure)
