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
    of every value, or None to skip that check. (A file too big for memory: `SubmissionCheck`, chunk by chunk.)
    """
    check = SubmissionCheck(header, [str(name) for name in frame.columns], expected_ids=expected_ids,
                            rows_sum_to_one=rows_sum_to_one, value_range=value_range)
    check.add(frame)
    return check.reasons(lambda rows: [check.last_ids[row] for row in rows])


def normalise_ids(series: pd.Series) -> list | np.ndarray:
    """`id_text` of every value; vectorised for the text a CSV reader gives, value by value otherwise."""
    if series.dtype == object and all(isinstance(v, str) for v in series.iloc[:64].dropna()):
        if series.map(lambda v: isinstance(v, str) or v is None or (isinstance(v, float) and math.isnan(v))).all():
            text = series.str.strip()
            return np.where(text.isna() | (text == ""), None, text).astype(object)
    return np.array([id_text(value) for value in series], dtype=object)


class SubmissionCheck:
    """The checks of `validate_frame`, fed chunk by chunk: memory holds one chunk plus 8 bytes per row
    (a hash of its id, for duplicates across chunks) and the expected ids, never the whole file."""

    def __init__(self, header, columns, *, expected_ids=None, rows_sum_to_one: bool = False,
                 value_range: tuple[float, float] | None = (0.0, 1.0)):
        self.header = [str(name) for name in header]
        self.columns = [str(name) for name in columns]
        self.rows_sum_to_one, self.value_range = rows_sum_to_one, value_range
        self.header_reasons = _header_reasons(self.columns, self.header)
        # First occurrence of each column; a duplicated name is already a header reason.
        self.position = {name: self.columns.index(name) for name in self.header if name in self.columns}
        self.rows = 0
        self.hashes: list[np.ndarray] = []  # per chunk: each row's id hash
        self.present: list[np.ndarray] = []  # per chunk: rows with a non-empty id
        self.empty = [0, None]  # count, first row
        self.values = {name: _ValueTally() for name in self.header[1:] if name in self.position}
        self.sums = _ValueTally()
        self.last_ids = None
        self.expected = None
        if expected_ids is not None:
            self.expected = pd.Index(list(dict.fromkeys(id_text(value) for value in expected_ids)))
            self.expected_count = len(expected_ids)
            self.seen = np.zeros(len(self.expected), dtype=bool)
            self.unexpected_hashes: list[np.ndarray] = []
            self.unexpected_first: dict[str, int] = {}  # the first few, in order of first occurrence

    def add(self, chunk: pd.DataFrame) -> None:
        offset, n = self.rows, len(chunk)
        self.rows += n
        ids = None
        if self.header[0] in self.position:
            ids = normalise_ids(chunk.iloc[:, self.position[self.header[0]]])
            self.last_ids = ids
            present = np.array([value is not None for value in ids], dtype=bool)
            if not present.all() and self.empty[1] is None:
                self.empty[1] = offset + int(np.flatnonzero(~present)[0])
            self.empty[0] += int((~present).sum())
            hashes = np.zeros(n, dtype=np.uint64)
            if present.any():
                hashes[present] = pd.util.hash_array(ids[present].astype(object))
            # Empty ids keep hash 0 and are left out of the duplicate search by `present`.
            self.hashes.append(hashes)
            self.present.append(present)
            if self.expected is not None:
                where = self.expected.get_indexer(pd.Index(ids[present].astype(object)))
                self.seen[where[where >= 0]] = True
                unknown_rows = np.flatnonzero(present)[where < 0]
                if len(unknown_rows):
                    self.unexpected_hashes.append(hashes[unknown_rows])
                    for row in unknown_rows:
                        if len(self.unexpected_first) >= SHOWN_IDS:
                            break
                        self.unexpected_first.setdefault(ids[row], offset + int(row))
        numeric = {}
        for name, tally in self.values.items():
            numeric[name] = tally.add(chunk.iloc[:, self.position[name]], offset, ids, self.value_range)
        if self.rows_sum_to_one and len(numeric) == len(self.header) - 1 and numeric:
            matrix = np.column_stack(list(numeric.values()))
            complete = np.isfinite(matrix).all(axis=1)
            sums = matrix.sum(axis=1)
            off = complete & (np.abs(sums - 1.0) > SUM_TOLERANCE)
            self.sums.note("sum", off, offset, ids, sums)

    def reasons(self, texts_of_rows) -> list[str]:
        """Every reason, in `validate_frame`'s order. `texts_of_rows(rows)`: the id texts at those rows
        (read again only when hashes suggest duplicates, which are then confirmed exactly)."""
        reasons = list(self.header_reasons)
        if self.rows == 0:
            return reasons + ["the submission has no rows"]
        if self.expected is not None and self.rows != self.expected_count:
            reasons.append(f"{self.rows} rows, expected {self.expected_count} (one per test id)")
        column = self.header[0]
        if column in self.position:
            if self.empty[0]:
                reasons.append(f"column '{column}': {self.empty[0]} empty ids, first at row {self.empty[1] + 1}")
            reasons += self._duplicate_reasons(column, texts_of_rows)
            if self.expected is not None:
                missing = [value for value, seen in zip(self.expected, self.seen) if not seen]
                if missing:
                    reasons.append(f"column '{column}': {len(missing)} test ids missing, e.g. {_listing(missing)}")
                if self.unexpected_hashes:
                    count = len(np.unique(np.concatenate(self.unexpected_hashes)))
                    value, row = next(iter(self.unexpected_first.items()))
                    reasons.append(f"column '{column}': {count} ids are not test ids, first {value!r} at row "
                                   f"{row + 1}, e.g. {_listing(list(self.unexpected_first))}")
        for name, tally in self.values.items():
            reasons += tally.reasons(name)
        reasons += self.sums.reasons("")
        return reasons

    def _duplicate_reasons(self, column: str, texts_of_rows) -> list[str]:
        hashes = np.concatenate(self.hashes)
        present = np.concatenate(self.present)
        rows = np.flatnonzero(present)
        order = rows[np.argsort(hashes[rows], kind="stable")]
        sorted_hashes = hashes[order]
        repeated = np.zeros(len(order), dtype=bool)
        repeated[1:] = sorted_hashes[1:] == sorted_hashes[:-1]
        if not repeated.any():
            return []
        # Rows in a group of equal hashes: confirm with their texts (a 64-bit hash collision is not a duplicate).
        in_group = repeated.copy()
        in_group[:-1] |= repeated[1:]
        candidates = np.sort(order[in_group])
        texts = texts_of_rows(candidates.tolist())
        first_row: dict[str, int] = {}
        repeats = []
        for row, value in zip(candidates.tolist(), texts):
            if value in first_row:
                repeats.append((row, value))
            else:
                first_row[value] = row
        if not repeats:
            return []
        row, value = repeats[0]
        return [f"column '{column}': {len(repeats)} duplicate ids, first {value!r} at rows "
                f"{first_row[value] + 1} and {row + 1}"]


class _ValueTally:
    """Counts and first offending row of each kind of bad value in one column, across chunks."""

    def __init__(self):
        self.kinds: dict[str, list] = {}  # kind -> [count, first row, first value, where text]

    def note(self, kind: str, mask: np.ndarray, offset: int, ids, values) -> None:
        if not mask.any():
            return
        row = int(np.flatnonzero(mask)[0])
        if kind not in self.kinds:
            self.kinds[kind] = [0, offset + row, values[row] if values is not None else None, _where_at(row, offset, ids)]
        self.kinds[kind][0] += int(mask.sum())

    def add(self, series: pd.Series, offset: int, ids, value_range) -> np.ndarray:
        numeric = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        unparsed = np.isnan(numeric) & series.notna().to_numpy()
        non_numeric = unparsed.copy()
        if unparsed.any():
            looks_nan = series[unparsed].astype(str).str.strip().str.lower().isin(NAN_TEXT).to_numpy()
            non_numeric[np.flatnonzero(unparsed)[looks_nan]] = False
        self.note("non_numeric", non_numeric, offset, ids, series.to_numpy())
        self.note("missing", np.isnan(numeric) & ~non_numeric, offset, ids, None)
        self.note("infinite", np.isinf(numeric), offset, ids, None)
        if value_range is not None:
            lo, hi = value_range
            finite = np.isfinite(numeric)
            outside = np.zeros(len(numeric), dtype=bool)
            outside[finite] = (numeric[finite] < lo) | (numeric[finite] > hi)
            self.note("outside", outside, offset, ids, numeric)
            self.range = value_range
        return numeric

    def reasons(self, column: str) -> list[str]:
        reasons = []
        for kind in ("non_numeric", "missing", "infinite", "outside", "sum"):
            if kind not in self.kinds:
                continue
            count, _, value, where = self.kinds[kind]
            if kind == "non_numeric":
                reasons.append(f"column '{column}': {count} non-numeric values, first {value!r} at {where}")
            elif kind == "missing":
                reasons.append(f"column '{column}': {count} missing/NaN values, first at {where}")
            elif kind == "infinite":
                reasons.append(f"column '{column}': {count} infinite values, first at {where}")
            elif kind == "outside":
                lo, hi = self.range
                reasons.append(f"column '{column}': {count} values outside [{lo:g}, {hi:g}], first "
                               f"{value:g} at {where}")
            else:
                reasons.append(f"{count} rows do not sum to 1 (tolerance {SUM_TOLERANCE:g}), first {where} "
                               f"sums to {value:.6g}")
        return reasons


def _where_at(row: int, offset: int, ids) -> str:
    if ids is not None and ids[row] is not None:
        return f"row {offset + row + 1} (id {ids[row]!r})"
    return f"row {offset + row + 1}"


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






def _listing(values: list[str]) -> str:
    shown = ", ".join(repr(value) for value in values[:SHOWN_IDS])
    return shown + (", ..." if len(values) > SHOWN_IDS else "")
