"""Raw files -> canonical table with its validation split and sample set."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from podium.errors import PodiumError
from podium.core.split import assign_sample

# Columns every canonical table has; plugins add their metadata columns after these.
TABLE_COLUMNS = ("id", "path", "label", "group", "split")


def prepare_table(plugin, data_dir: Path, config: dict) -> pd.DataFrame:
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise PodiumError(f"data folder {data_dir} not found")
    table = check_table(plugin.read_table(data_dir), plugin)
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
    duplicated = table.loc[table["split"] == "test", "id"].duplicated()
    if duplicated.any():
        raise PodiumError(f"{plugin.name}: duplicate test ids, e.g. {table.loc[duplicated[duplicated].index, 'id'].iloc[0]!r}")
    return table
