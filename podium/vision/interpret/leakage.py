"""Leakage probe: how well does the metadata alone predict the label?

A model that never sees the images (multinomial logistic regression on the plugin's metadata
columns, encoded with training statistics only) is scored on the run's own validation split,
next to chance (the training class frequencies) and next to an image model. When metadata alone
beats chance by far, the labels leak through it: in Fisheries the image size gives away the
boat, and the boat the fish. Such a leak helps only while the test images share it.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from podium.errors import PodiumError

# Metadata is "far above chance" when it removes at least this share of chance's log loss.
DEFAULT_THRESHOLD = 0.2


def probe(plugin, data_dir: Path, config: dict, *, sample: bool = False,
          threshold: float = DEFAULT_THRESHOLD) -> dict:
    """Validation log loss and accuracy of metadata alone and of chance; `leak` when far above chance."""
    from sklearn.linear_model import LogisticRegression

    from podium.core.metrics import log_loss
    from podium.core.table import prepare_table
    from podium.vision.metadata import MetadataEncoder

    if not plugin.metadata_columns:
        raise PodiumError(f"{plugin.name} declares no metadata columns, so there is nothing to probe")
    table = prepare_table(plugin, data_dir, config)
    labelled = table[table["split"].isin(["train", "valid"])]
    if sample:
        labelled = labelled[labelled["sample"]]
    train, valid = labelled[labelled["split"] == "train"], labelled[labelled["split"] == "valid"]
    if not len(train) or not len(valid):
        raise PodiumError(f"{plugin.name}: the probe needs training and validation rows "
                          f"(got {len(train)} and {len(valid)})")
    encoder = MetadataEncoder(plugin.metadata_columns).fit(train)
    y_train, y_valid = plugin.label_indices(train["label"]), plugin.label_indices(valid["label"])
    n_classes = len(plugin.classes)

    # Chance: the training class frequencies (add-one, so a class unseen in training is not infinitely wrong).
    prior = (np.bincount(y_train, minlength=n_classes) + 1.0) / (len(y_train) + n_classes)
    chance = np.tile(prior, (len(y_valid), 1))

    metadata = np.tile(prior, (len(y_valid), 1))
    seen = np.unique(y_train)
    if len(seen) > 1:
        model = LogisticRegression(C=1.0, max_iter=2000)
        model.fit(encoder.transform(train), y_train)
        metadata = np.full((len(y_valid), n_classes), 1e-6)
        metadata[:, model.classes_] = model.predict_proba(encoder.transform(valid))
        metadata /= metadata.sum(axis=1, keepdims=True)
    chance_loss, metadata_loss = log_loss(y_valid, chance), log_loss(y_valid, metadata)
    reduction = 1.0 - metadata_loss / chance_loss if chance_loss > 0 else 0.0
    return {
        "competition": plugin.name,
        "metadata": encoder.names,
        "train_rows": int(len(train)),
        "valid_rows": int(len(valid)),
        "metadata_log_loss": metadata_loss,
        "metadata_accuracy": float((metadata.argmax(axis=1) == y_valid).mean()),
        "chance_log_loss": chance_loss,
        "chance_accuracy": float((prior.argmax() == y_valid).mean()),
        "log_loss_reduction": float(reduction),
        "threshold": float(threshold),
        "leak": bool(reduction >= threshold),
    }


def image_model_scores(run_dir: Path) -> dict:
    """val_log_loss, val_accuracy and whether it took metadata, from a finished run."""
    from podium.core.rundir import load_run

    config, metrics = load_run(run_dir)
    if "val_log_loss" not in metrics:
        raise PodiumError(f"{run_dir} has no val_log_loss in metrics.json (did the run finish?)")
    return {"run": str(run_dir), "val_log_loss": float(metrics["val_log_loss"]),
            "val_accuracy": float(metrics.get("val_accuracy", float("nan"))),
            "uses_metadata": bool(config["head"].get("metadata", False))}


def latest_run(runs_root: Path, competition: str, data_dir: Path) -> Path | None:
    """The newest finished run of `competition` on `data_dir` under `runs_root`, if any."""
    from podium.core.rundir import INCOMPLETE
    from podium.files import read_json

    folder = Path(runs_root) / competition
    if not folder.is_dir():
        return None
    wanted = str(Path(data_dir).resolve())
    finished = [run for run in folder.iterdir()
                if (run / "metrics.json").is_file() and (run / "run.json").is_file() and not (run / INCOMPLETE).exists()
                and read_json(run / "run.json").get("data_dir") == wanted
                and "val_log_loss" in read_json(run / "metrics.json")]
    return max(finished, key=lambda run: (run / "metrics.json").stat().st_mtime) if finished else None


def report(result: dict, image: dict | None = None) -> str:
    """The probe as a small table, plus a plain warning when the metadata leaks the label."""
    names = result["metadata"]
    shown = ", ".join(names[:6]) + (f", ... ({len(names)} in all)" if len(names) > 6 else "")
    lines = [f"leakage probe for {result['competition']}: metadata {shown}",
             f"validation: {result['valid_rows']} rows (model fitted on {result['train_rows']} training rows)",
             "",
             f"  {'model':36s} {'val_log_loss':>12s} {'val_accuracy':>12s}",
             f"  {'chance (training class frequencies)':36s} {result['chance_log_loss']:12.4f} "
             f"{result['chance_accuracy']:12.4f}",
             f"  {'metadata alone':36s} {result['metadata_log_loss']:12.4f} {result['metadata_accuracy']:12.4f}"]
    if image is not None:
        label = "image model" + (" (+ metadata)" if image["uses_metadata"] else "")
        lines.append(f"  {label:36s} {image['val_log_loss']:12.4f} {image['val_accuracy']:12.4f}")
        lines.append(f"  (image model: {image['run']})")
    else:
        lines.append("  (no finished run on this data to compare with; give --run RUN_DIR)")
    lines.append("")
    share = result["log_loss_reduction"]
    if result["leak"]:
        lines.append(f"warning: the metadata alone predicts the label far above chance (it removes {share:.0%} of "
                     f"chance's log loss; threshold {result['threshold']:.0%}). A model can score well by learning "
                     "the metadata instead of the images. That holds only while the test set shares it (e.g. the "
                     "same boats); compare a run with head.metadata=false, and validate with data.split=group "
                     "when the table's group column names what leaks.")
    else:
        lines.append(f"no leak found: the metadata alone removes {share:.0%} of chance's log loss "
                     f"(threshold {result['threshold']:.0%}).")
    return "\n".join(textwrap.fill(line, 110, subsequent_indent="  ") if len(line) > 110 else line for line in lines)
