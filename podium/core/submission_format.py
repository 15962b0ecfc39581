"""Every reason Kaggle would reject a submission frame: header, ids, values, rows that sum to one.

Rows in messages are counted from 1 over the data rows (the header is not a row),
so "row 3" is line 4 of the CSV.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

SUM_TOLERANCE = 1e-3
SHOWN_IDS = 5  # ids listed in one message; the count says how many there are in all
NAN_TEXT = frozenset({"nan", "-nan", "+nan"})


def id_text(value) -> str | None:
    """An id as Kaggle compares it: text, so 1, 1.0 and "1" are the same id; None when empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    text = str(value).strip()
    return text or None


def validate_frame(frame: pd.DataFrame, header, *, expected_ids=None, rows_sum_to_one: bool = False,
                   value_range: tuple[float, float] | None = (0.0, 1.0)) -> list[str]:
    """Every reason `frame` is not a valid submission with columns `header` (id column first).

    `expected_ids`: the complete set of test ids (checked when given). `rows_sum_to_one`:
    the value columns are class probabilities of one row. `value_range`: inclusive bounds
    of every value, or None to skip that check.
    """
    header = [str(name) for name in header]
    columns = [str(name) for name in frame.columns]
    reasons = _header_reasons(columns, header)
    if len(frame) == 0:
        return reasons + ["the submission has no rows"]
    if expected_ids is not None and len(frame) != len(expected_ids):
        reasons.append(f"{len(frame)} rows, expected {len(expected_ids)} (one per test id)")

    # First occurrence of each column; a duplicated name is already a header reason.
    position = {name: columns.index(name) for name in header if name in columns}
    ids = None
    if header[0] in position:
        ids = [id_text(value) for value in frame.iloc[:, position[header[0]]]]
        reasons += _id_reasons(ids, header[0], expected_ids)
    values = {name: frame.iloc[:, position[name]] for name in header[1:] if name in position}
    numeric = {}
    for name, series in values.items():
        column_reasons, numeric[name] = _value_reasons(series, name, ids, value_range)
        reasons += column_reasons
    if rows_sum_to_one and len(numeric) == len(header) - 1 and numeric:
        reasons += _sum_reasons(np.column_stack(list(numeric.values())), ids)
    return reasons


def _header_reasons(columns: list[str], header: list[str]) -> list[str]:
    if columns == header:
        return []
    got, want = ",".join(columns), ",".join(header)
    missing = [name for name in header if name not in columns]
    extra = [name for name in columns if name not in header]
    duplicated = sorted({name for name in columns if columns.count(name) > 1})
    details = []
    if missing:
        details.append(f"missing {missing}")
    if extra:
        details.append(f"unexpected {extra}")
    if duplicated:
        details.append(f"repeated {duplicated}")
    if not details:
        details.append("same columns in the wrong order")
    hint = ""
    if columns and columns[0].startswith("Unnamed: 0"):
        hint = "; the first column is a pandas index: write the CSV with index=False"
    return [f"header is '{got}', expected '{want}' ({'; '.join(details)}){hint}"]


def _id_reasons(ids: list[str | None], column: str, expected_ids) -> list[str]:
    reasons = []
    empty = [row for row, value in enumerate(ids) if value is None]
    if empty:
        reasons.append(f"column '{column}': {len(empty)} empty ids, first at row {empty[0] + 1}")
    first_row: dict[str, int] = {}
    repeats = []
    for row, value in enumerate(ids):
        if value is None:
            continue
        if value in first_row:
            repeats.append((row, value))
        else:
            first_row[value] = row
    if repeats:
        row, value = repeats[0]
        reasons.append(f"column '{column}': {len(repeats)} duplicate ids, first {value!r} at rows "
                       f"{first_row[value] + 1} and {row + 1}")
    if expected_ids is not None:
        expected = [id_text(value) for value in expected_ids]
        expected_set = set(expected)
        missing = [value for value in expected if value not in first_row]
        if missing:
            reasons.append(f"column '{column}': {len(missing)} test ids missing, e.g. {_listing(missing)}")
        unexpected = [(row, value) for value, row in first_row.items() if value not in expected_set]
        if unexpected:
            row, value = unexpected[0]
            reasons.append(f"column '{column}': {len(unexpected)} ids are not test ids, first {value!r} at row "
                           f"{row + 1}, e.g. {_listing([v for _, v in unexpected])}")
    return reasons


def _value_reasons(series: pd.Series, column: str, ids, value_range):
    """(reasons, float array with NaN where a value is unusable) for one value column."""
    numeric = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    unparsed = np.isnan(numeric) & series.notna().to_numpy()
    looks_nan = series.astype(str).str.strip().str.lower().isin(NAN_TEXT).to_numpy()
    non_numeric = unparsed & ~looks_nan
    reasons = []
    if non_numeric.any():
        row = int(np.flatnonzero(non_numeric)[0])
        reasons.append(f"column '{column}': {int(non_numeric.sum())} non-numeric values, first "
                       f"{series.iloc[row]!r} at {_where(row, ids)}")
    missing = np.isnan(numeric) & ~non_numeric
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        reasons.append(f"column '{column}': {int(missing.sum())} missing/NaN values, first at {_where(row, ids)}")
    infinite = np.isinf(numeric)
    if infinite.any():
        row = int(np.flatnonzero(infinite)[0])
        reasons.append(f"column '{column}': {int(infinite.sum())} infinite values, first at {_where(row, ids)}")
    if value_range is not None:
        lo, hi = value_range
        finite = np.isfinite(numeric)
        outside = np.zeros(len(numeric), dtype=bool)
        outside[finite] = (numeric[finite] < lo) | (numeric[finite] > hi)
        if outside.any():
            row = int(np.flatnonzero(outside)[0])
            reasons.append(f"column '{column}': {int(outside.sum())} values outside [{lo:g}, {hi:g}], first "
                           f"{numeric[row]:g} at {_where(row, ids)}")
    return reasons, numeric


def _sum_reasons(matrix: np.ndarray, ids) -> list[str]:
    complete = np.isfinite(matrix).all(axis=1)
    sums = matrix.sum(axis=1)
    off = complete & (np.abs(sums - 1.0) > SUM_TOLERANCE)
    if not off.any():
        return []
    row = int(np.flatnonzero(off)[0])
    return [f"{int(off.sum())} rows do not sum to 1 (tolerance {SUM_TOLERANCE:g}), first {_where(row, ids)} "
            f"sums to {sums[row]:.6g}"]


def _where(row: int, ids) -> str:
    if ids is not None and ids[row] is not None:
        return f"row {row + 1} (id {ids[row]!r})"
    return f"row {row + 1}"


def _listing(values: list[str]) -> str:
    shown = ", ".join(repr(value) for value in values[:SHOWN_IDS])
    return shown + (", ..." if len(values) > SHOWN_IDS else "")
