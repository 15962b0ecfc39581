"""Raw files -> canonical table with its validation split and sample set."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..competitions.base import check_table
from ..errors import PodiumError
from .split import assign_sample


def prepare_table(plugin, data_dir: Path, config: dict) -> pd.DataFrame:
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise PodiumError(f"data folder {data_dir} not found")
    table = check_table(plugin.read_table(data_dir), plugin)
    table = plugin.split(table, config)
    return assign_sample(table, config)
