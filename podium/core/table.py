"""Raw files -> canonical table with its validation split and sample set."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

import numpy as np

from podium.errors import PodiumError
from podium.core.imagefiles import BAD_IMAGE_COLUMN, SKIP_HINT
from podium.core.split import assign_sample
from podium.core.submission_format import id_text

# Columns every canonical table has; plugins add their metadata columns after these.
TABLE_COLUMNS = ("id", "path", "label", "group", "split")


def prepare_table(plugin, data_dir: Path, config: dict) -> pd.DataFrame:
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise PodiumError(f"data folder {data_dir} not found")
    table = check_table(plugin.read_table(data_dir), plugin)
    if BAD_IMAGE_COLUMN in table.columns and table[BAD_IMAGE_COLUMN].any():
        bad = table[table[BAD_IMAGE_COLUMN].astype(bool)]
        if not config["data"]["skip_bad_images"]:
            raise PodiumError(f"cannot read image {bad['path'].iloc[0]}"
                              + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "") + f"; {SKIP_HINT}")
        print(f"{plugin.name}: {len(bad)} unreadable images (data.skip_bad_images): labelled ones are left out, "
              "test ones predicted from a blank image")
    table = plugin.split(table, config)
    return assign_sample(table, config)


def check_table(table: pd.DataFrame, plugin: Competition) -> pd.DataFrame:
    """Raise a clear error if a plugin's table breaks the canonical contract."""
    missing = [c for c in (*TABLE_COLUMNS, *plugin.metadata_columns) if c not in table.columns]
    if missing:
        raise PodiumError(f"{plugin.name}: canonical table lacks columns {missing}")
    bad_split = sorted(set(table["split"]) - {"train", "valid", "test"})
    if bad_split:
        raise PodiumError(f"{plugin.name}: unknown split values {bad_split}")
    empty = [row for row, value in enumerate(table["id"]) if id_text(value) is None]
    if empty:
        raise PodiumError(f"{plugin.name}: {len(empty)} rows have an empty id, first {_row_text(table, empty[0])}")
    duplicated = table.loc[table["split"] == "test", "id"].duplicated()
    if duplicated.any():
        raise PodiumError(f"{plugin.name}: duplicate test ids, e.g. {table.loc[duplicated[duplicated].index, 'id'].iloc[0]!r}")
    check_submitted_ids(table, plugin)
    return table


def _row_text(table: pd.DataFrame, position: int) -> str:
    row = table.iloc[position]
    return f"row {position + 1} ({row['path']})" if "path" in table.columns else f"row {position + 1}"


def check_submitted_ids(table: pd.DataFrame, plugin) -> None:
    """Test ids must stay distinct as the submission writes them (e.g. `1.jpg` and `01.jpg` are both id 1
    once written as numbers): found here, before any training, not when the submission is refused."""
    if plugin.task != "classification" or not len(plugin.classes):
        return
    test = table[table["split"] == "test"]
    if not len(test):
        return
    ids = test["id"].tolist()
    uniform = np.full((len(ids), len(plugin.classes)), 1.0 / len(plugin.classes))
    try:
        frame = plugin.submission_frame(ids, uniform)
    except (ValueError, TypeError) as exc:
        raise PodiumError(f"{plugin.name}: a test id cannot be written in the submission: {exc}") from None
    written = [id_text(value) for value in frame.iloc[:, 0]]
    first: dict = {}
    for position, value in enumerate(written):
        if value in first:
            a, b = test.iloc[first[value]], test.iloc[position]
            where = (f" ({a['path']} and {b['path']})" if "path" in test.columns else "")
            raise PodiumError(f"{plugin.name}: test ids {a['id']!r} and {b['id']!r} are both written as id "
                              f"{value!r} in the submission{where}; rename one")
        first[value] = position
