"""Write a Kaggle submission CSV: validated first, written atomically, never over an existing file."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from podium.errors import PodiumError
from podium.files import atomic_write_text

_SHOWN_REASONS = 10
# Relative precision, so a tiny probability keeps its digits instead of becoming 0.000000.
FLOAT_FORMAT = "%.8g"


def write_submission(plugin, frame: pd.DataFrame, path: Path, *, data_dir: Path | None = None) -> Path:
    """Validate `frame` with `plugin.validate_submission`, then write it to `path`.

    `data_dir`: the competition's files, to check the ids against the complete test set.
    Nothing is written when the frame is invalid or `path` already exists.
    """
    path = Path(path)
    if path.exists():
        raise PodiumError(f"{path} already exists; refusing to overwrite a submission")
    reasons = plugin.validate_submission(frame, data_dir=None if data_dir is None else Path(data_dir))
    if reasons:
        shown = "\n  - ".join(reasons[:_SHOWN_REASONS])
        more = f"\n  ... and {len(reasons) - _SHOWN_REASONS} more" if len(reasons) > _SHOWN_REASONS else ""
        raise PodiumError(f"submission {path} not written: {len(reasons)} problem(s) with the "
                          f"{plugin.name} submission:\n  - {shown}{more}")
    return atomic_write_text(path, frame.to_csv(index=False, float_format=FLOAT_FORMAT), overwrite=False)
