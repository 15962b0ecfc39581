"""Check a submission file the way Kaggle would: read it, then the plugin's checks of the frame.

A plugin that keeps the shared checks (`Competition.validate_submission`) has its file streamed in
chunks (`SubmissionCheck`), so a 10-million-row file is checked in a few hundred MB; a plugin with
its own `validate_submission` gets the whole frame.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from podium.competitions.base import Competition
from podium.core.submission_format import SubmissionCheck

CHUNK_ROWS = 500_000


def validate_file(plugin, path: Path, data_dir: Path | None = None) -> list[str]:
    """Every reason the CSV at `path` would be rejected for `plugin`'s competition."""
    return inspect_file(plugin, path, data_dir)[1]


def inspect_file(plugin, path: Path, data_dir: Path | None = None) -> tuple[int, list[str]]:
    """(data rows read, reasons) for the CSV at `path`; 0 rows when it cannot be read."""
    if type(plugin).validate_submission is Competition.validate_submission:
        return _inspect_streaming(plugin, Path(path), data_dir)
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


def _inspect_streaming(plugin, path: Path, data_dir: Path | None) -> tuple[int, list[str]]:
    """`Competition.validate_submission`'s checks, one chunk of rows in memory at a time."""
    reason = _unreadable(path)
    if reason:
        return 0, [reason]
    header = plugin.submission_header()
    try:
        columns = pd.read_csv(path, nrows=0).columns
        expected = plugin.expected_test_ids(Path(data_dir)) if data_dir is not None else None
        check = SubmissionCheck(header, [str(c) for c in columns], expected_ids=expected,
                                rows_sum_to_one=len(header) > 2)
        for chunk in _chunks(path, columns[0]):
            check.add(chunk)

        def texts_of_rows(rows):
            wanted, found = set(rows), {}
            for start, chunk in _numbered_chunks(path, columns[0]):
                ids = check_ids(chunk)
                for offset in range(len(chunk)):
                    if start + offset in wanted:
                        found[start + offset] = ids[offset]
            return [found[row] for row in rows]

        def check_ids(chunk):
            from podium.core.submission_format import normalise_ids

            return normalise_ids(chunk.iloc[:, check.position[header[0]]])

        return check.rows, check.reasons(texts_of_rows)
    except pd.errors.EmptyDataError:
        return 0, [f"{path} is empty (no header, no rows)"]
    except pd.errors.ParserError as exc:
        return 0, [f"{path} cannot be parsed as CSV: {str(exc).strip()}"]
    except UnicodeDecodeError:
        return 0, [f"{path} is not UTF-8 text (is it a CSV file?)"]
    except OSError as exc:
        return 0, [f"{path} cannot be read: {exc.strerror or exc}"]


def _unreadable(path: Path) -> str:
    if not path.is_file():
        return f"{path} not found" if not path.exists() else f"{path} is not a file"
    return ""


def _chunks(path: Path, id_column):
    # Ids stay text so leading zeros and big numbers survive; values are parsed by the checks.
    yield from pd.read_csv(path, dtype={id_column: str}, chunksize=CHUNK_ROWS)


def _numbered_chunks(path: Path, id_column):
    start = 0
    for chunk in _chunks(path, id_column):
        yield start, chunk
        start += len(chunk)
