"""Metadata columns as a second model input: numbers standardised, text one-hot, with training statistics only.

A plugin declares `metadata_columns` in its canonical table (e.g. an image's width, height and
size). Statistics and categories come from the training rows alone, so nothing about the
validation or test rows leaks into how they are encoded; the model batch-normalises the
result again (see `heads.build_head`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from podium.errors import PodiumError


class MetadataEncoder:
    """Encode `columns` of a table into one float32 vector per row.

    Numeric (and boolean) columns: (value - train mean) / train std, a missing value becomes 0
    (the train mean). Other columns: one-hot over the categories seen in training; an unseen
    or missing category is all zeros.
    """

    def __init__(self, columns=()):
        self.columns = list(columns)
        self.numeric: dict = {}  # column -> (mean, std)
        self.categories: dict = {}  # column -> list of category texts

    def fit(self, frame: pd.DataFrame) -> "MetadataEncoder":
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise PodiumError(f"metadata columns {missing} are not in the table")
        if not len(frame):
            raise PodiumError("metadata: no training rows to take statistics from")
        self.numeric, self.categories = {}, {}
        for column in self.columns:
            values = frame[column]
            if _is_numeric(values):
                numbers = values.astype(float)
                mean = float(numbers.mean()) if numbers.notna().any() else 0.0
                std = float(numbers.std(ddof=0)) if numbers.notna().sum() > 1 else 0.0
                # A constant column carries no information; std 1 keeps it at 0 instead of dividing by 0.
                self.numeric[column] = (mean, std if std > 0 else 1.0)
            else:
                self.categories[column] = sorted({str(v) for v in values.dropna()})
        return self

    @property
    def names(self) -> list[str]:
        """The encoded features, in order: `width`, ..., `size=1280x720`, ..."""
        names = []
        for column in self.columns:
            if column in self.numeric:
                names.append(column)
            else:
                names += [f"{column}={category}" for category in self.categories[column]]
        return names

    @property
    def dim(self) -> int:
        return len(self.names)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        if not self.numeric and not self.categories:
            raise PodiumError("metadata encoder used before fit")
        parts = []
        for column in self.columns:
            if column not in frame.columns:
                raise PodiumError(f"metadata column {column!r} is not in the table")
            values = frame[column]
            if column in self.numeric:
                mean, std = self.numeric[column]
                numbers = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()
                parts.append(np.nan_to_num((numbers - mean) / std, nan=0.0)[:, None])
            else:
                texts = values.map(lambda v: None if pd.isna(v) else str(v)).to_numpy()
                categories = self.categories[column]
                parts.append(np.stack([texts == category for category in categories], axis=1)
                             if categories else np.zeros((len(frame), 0)))
        return np.concatenate(parts, axis=1).astype(np.float32)


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)


def uses_metadata(plugin, config: dict) -> bool:
    # .get: configs of runs made before metadata fusion existed have no such key.
    return bool(plugin.metadata_columns) and bool(config["head"].get("metadata", False))


def fit_metadata(plugin, config: dict, train_rows: pd.DataFrame) -> MetadataEncoder | None:
    """The encoder of the plugin's metadata, fitted on `train_rows`; None when the model takes none."""
    if not uses_metadata(plugin, config):
        return None
    if config["finetune"]["enabled"]:
        raise PodiumError("finetune.enabled: fine-tuning trains from images alone; "
                          "set head.metadata=false to fine-tune without the metadata input")
    return MetadataEncoder(plugin.metadata_columns).fit(train_rows)
