"""The plugin contract: what a competition declares to plug into the shared pipeline."""
from __future__ import annotations

import abc
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from podium.core.split import assign_split
from podium.core.submission_format import validate_frame
from podium.errors import PodiumError

class Competition(abc.ABC):
    """A Kaggle competition: its files, its split, its submission format and its defaults.

    The canonical table (see `read_table`) is the only thing the shared stages read,
    so a plugin never moves or copies the competition's files.
    """

    name: ClassVar[str]  # registry key and CLI name
    slug: ClassVar[str]  # Kaggle competition (or dataset) slug
    kaggle_dataset: ClassVar[str | None] = None  # "owner/name" when the files are a Kaggle dataset, not a competition's
    task: ClassVar[str] = "classification"  # "classification" or "rating"
    pipeline: ClassVar[str] = "image_classification"  # which shared pipeline trains it
    classes: ClassVar[tuple[str, ...]] = ()
    id_column: ClassVar[str] = "id"  # id column of the submission
    metadata_columns: ClassVar[tuple[str, ...]] = ()
    metric: ClassVar[str] = "log_loss"  # validation metric, lower is better

    # -- raw files -> canonical table ---------------------------------------------------
    @abc.abstractmethod
    def read_table(self, data_dir: Path) -> pd.DataFrame:
        """Read the raw Kaggle layout into the canonical table.

        Columns: `id` (the submission id, str), `path` (absolute image path), `label`
        (class name; NaN for test rows), `group` (e.g. driver; "" if none), `split`
        ("train" for labelled rows, "test" for test rows), then `metadata_columns`.
        Raise PodiumError naming the file or row when the layout is wrong.
        """

    # -- validation split ------------------------------------------------------------------
    def split(self, table: pd.DataFrame, config: dict) -> pd.DataFrame:
        """Mark some labelled rows as "valid". Stratified by label unless the config says otherwise."""
        return assign_split(table, config)

    # -- submission --------------------------------------------------------------------------
    def prediction_columns(self) -> list[str]:
        """Columns of the prediction files a run writes (one per class for classification)."""
        return list(self.classes)

    def submission_header(self) -> list[str]:
        return [self.id_column, *self.classes]

    def submission_frame(self, ids, predictions: np.ndarray) -> pd.DataFrame:
        """The Kaggle submission for test `ids` and predicted class probabilities."""
        frame = pd.DataFrame(np.asarray(predictions, dtype=float), columns=list(self.classes))
        frame.insert(0, self.id_column, list(ids))
        return frame[self.submission_header()]

    def expected_test_ids(self, data_dir: Path) -> list[str]:
        table = self.read_table(Path(data_dir))
        return table.loc[table["split"] == "test", "id"].astype(str).tolist()

    def validate_submission(self, frame: pd.DataFrame, data_dir: Path | None = None) -> list[str]:
        """Every reason `frame` would be rejected; empty when it is a valid submission."""
        expected = self.expected_test_ids(data_dir) if data_dir is not None else None
        return validate_frame(frame, self.submission_header(), expected_ids=expected,
                              rows_sum_to_one=len(self.submission_header()) > 2)

    # -- scoring -----------------------------------------------------------------------------
    def label_indices(self, labels) -> np.ndarray:
        lookup = {c: i for i, c in enumerate(self.classes)}
        try:
            return np.array([lookup[str(label)] for label in labels], dtype=np.int64)
        except KeyError as exc:
            raise PodiumError(f"{self.name}: unknown label {exc.args[0]!r}; classes are {list(self.classes)}") from None

    def evaluate(self, labels, predictions: np.ndarray) -> dict:
        """Validation metrics of predicted probabilities against true labels."""
        from sklearn.metrics import accuracy_score, log_loss

        y = self.label_indices(labels)
        p = np.asarray(predictions, dtype=np.float64)
        p = p / p.sum(axis=1, keepdims=True)  # float32 softmax rows miss 1 by rounding
        return {
            "val_log_loss": float(log_loss(y, p, labels=list(range(len(self.classes))))),
            "val_accuracy": float(accuracy_score(y, p.argmax(axis=1))),
        }

    # -- configuration -----------------------------------------------------------------------
    def default_config(self) -> dict:
        from podium.config import IMAGE_DEFAULTS

        return IMAGE_DEFAULTS

    def config_ranges(self) -> dict:
        """Allowed ranges of this plugin's own keys (dotted key -> `podium.config.Allowed`), beside its defaults;
        they replace the shared ranges of the same keys."""
        return {}

    def search_space(self) -> dict:
        """What `podium tune` searches: dotted config key -> distribution (see `podium.tuning.space`).

        Head-only settings, so every trial reuses the cached features; TTA views above those already
        cached cost one augmented backbone pass, once. A config's `[tune.space]` adds others, e.g.
        "pseudo.fraction" (with pseudo.enabled = true) or "submission.clip" (with tune.metric =
        "val_log_loss_clipped": the default objective, plain val_log_loss, does not see the clip).
        """
        return {
            "train.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
            "train.weight_decay": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
            "train.batch_size": {"type": "categorical", "choices": [32, 64, 128]},
            "train.epochs": {"type": "int", "low": 5, "high": 30, "step": 5},
            "head.dropout": {"type": "float", "low": 0.1, "high": 0.7},
            "head.units": {"type": "categorical", "choices": [128, 256, 512]},
            "tta.views": {"type": "int", "low": 0, "high": 2},
        }

    # -- demo data -----------------------------------------------------------------------------
    @abc.abstractmethod
    def make_demo_data(self, out_dir: Path, seed: int = 0) -> Path:
        """Write a small Kaggle-layout data set with learnable structure; return its folder."""

    def demo_overrides(self) -> dict:
        """Config overrides that make `podium demo` fast and offline on 2 CPU cores."""
        return {}
