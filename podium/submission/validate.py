"""Check a submission file the way Kaggle would: read it, then the plugin's checks of the frame."""
from __future__ import annotations

from pathlib import Path

import pandas as pd


def validate_file(plugin, path: Path, data_dir: Path | None = None) -> list[str]:
    """Every reason the CSV at `path` would be rejected for `plugin`'s competition."""
    return inspect_file(plugin, path, data_dir)[1]


def inspect_file(plugin, path: Path, data_dir: Path | None = None) -> tuple[int, list[str]]:
    """(data rows read, reasons) for the CSV at `path`; 0 rows when it cannot be read."""
    frame, reason = read_submission(path)
    if frame is None:
        return 0, [reason]
    return len(frame), plugin.validate_submission(frame, data_dir=None if data_dir is None else Path(data_dir))


def read_submission(path: Path) -> tuple[pd.DataFrame | None, str]:
    """(frame, "") or (None, why the file cannot be read). Ids are read as text, exactly as written."""
    path = Path(path)
    if not path.is_file():
        return None, f"{path} not found" if not path.exists() else f"{path} is not a file"
    try:
        id_column = pd.read_csv(path, nrows=0).columns[0]
        # Ids stay text so leading zeros and big numbers survive; values are parsed by the checks.
        return pd.read_csv(path, dtype={id_column: str}), ""
    except pd.errors.EmptyDataError:
        return None, f"{path} is empty (no header, no rows)"
    except pd.errors.ParserError as exc:
        return None, f"{path} cannot be parsed as CSV: {str(exc).strip()}"
    except UnicodeDecodeError:
        return None, f"{path} is not UTF-8 text (is it a CSV file?)"
    except OSError as exc:
        return None, f"{path} cannot be read: {exc.strerror or exc}"
