"""Validation split and the seeded sample set.

`data.split` picks the strategy: "stratified" (by label, the default), "group" (no group,
e.g. a driver, in both train and valid) or "random". `data.folds` >= 2 makes the
validation set fold `data.fold` of a k-fold of that strategy instead of a hold-out of
`data.valid_fraction`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from podium.errors import PodiumError


def fold_indices(labels: np.ndarray, groups: np.ndarray, *, strategy: str, folds: int, seed: int,
                 setting: str = "data.folds"):
    """Yield (train_idx, valid_idx) pairs over labelled rows, for every fold; `setting` is the config key
    that asked for `folds`, named when the rows cannot make them."""
    from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold

    if folds > len(labels):
        raise PodiumError(f"{setting}={folds}: more folds than the {len(labels)} labelled rows; choose at most "
                          f"{len(labels)}")
    if strategy == "group":
        n_groups = len(set(groups))
        if n_groups < folds:
            raise PodiumError(f"{setting}={folds} with data.split=group needs at least {folds} groups, "
                              f"found {n_groups}")
        splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        return list(splitter.split(labels, labels, groups))
    if strategy == "stratified":
        counts = pd.Series(labels).value_counts()
        if counts.min() < folds:
            raise PodiumError(
                f"{setting}={folds} with data.split=stratified needs {folds} rows per class; "
                f"class {counts.idxmin()!r} has {counts.min()}"
            )
        return list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(labels, labels))
    if strategy == "random":
        return list(KFold(n_splits=folds, shuffle=True, random_state=seed).split(labels))
    raise PodiumError(f"data.split must be stratified, group or random, got {strategy!r}")


def assign_split(table: pd.DataFrame, config: dict) -> pd.DataFrame:
    """Return a copy of `table` where the chosen validation rows have split == "valid"."""
    data = config["data"]
    strategy, seed = data["split"], int(config["seed"])
    table = table.copy()
    labelled = np.flatnonzero(table["split"].isin(["train", "valid"]).to_numpy())
    table.iloc[labelled, table.columns.get_loc("split")] = "train"
    labels = table["label"].iloc[labelled].astype(str).to_numpy()
    groups = table["group"].iloc[labelled].astype(str).to_numpy()
    if int(data["folds"]) > 1:
        folds = fold_indices(labels, groups, strategy=strategy, folds=int(data["folds"]), seed=seed)
        fold = int(data["fold"])
        if not 0 <= fold < len(folds):
            raise PodiumError(f"data.fold must be in 0..{len(folds) - 1}, got {fold}")
        valid_positions = folds[fold][1]
    else:
        valid_positions = holdout_positions(labels, groups, strategy=strategy,
                                            fraction=float(data["valid_fraction"]), seed=seed)
    table.iloc[labelled[valid_positions], table.columns.get_loc("split")] = "valid"
    return table


def holdout_positions(labels, groups, *, strategy: str, fraction: float, seed: int) -> np.ndarray:
    """Positions (into `labels`) of a single hold-out validation set."""
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    if not 0.0 < fraction < 1.0:
        raise PodiumError(f"data.valid_fraction must be between 0 and 1, got {fraction}")
    positions = np.arange(len(labels))
    if strategy == "group":
        if len(set(groups)) < 2:
            raise PodiumError("data.split=group needs at least 2 groups in the table's group column")
        splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        _, valid = next(splitter.split(positions, labels, groups))
        return np.sort(valid)
    stratify = labels if strategy == "stratified" else None
    if strategy not in ("stratified", "random"):
        raise PodiumError(f"data.split must be stratified, group or random, got {strategy!r}")
    try:
        _, valid = train_test_split(positions, test_size=fraction, random_state=seed, stratify=stratify)
    except ValueError as exc:
        raise PodiumError(f"cannot make a {strategy} validation split: {exc}") from None
    return np.sort(valid)


def assign_sample(table: pd.DataFrame, config: dict) -> pd.DataFrame:
    """Add a boolean `sample` column: a seeded random subset of train and of valid rows."""
    data, seed = config["data"], int(config["seed"])
    table = table.copy()
    table["sample"] = False
    rng = np.random.default_rng(seed)
    for split, size in (("train", data["sample_train"]), ("valid", data["sample_valid"])):
        rows = np.flatnonzero((table["split"] == split).to_numpy())
        chosen = rng.choice(rows, size=min(int(size), len(rows)), replace=False)
        table.iloc[np.sort(chosen), table.columns.get_loc("sample")] = True
    return table
