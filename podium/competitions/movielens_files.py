"""GroupLens MovieLens files as users have them, read into plain frames.

Two layouts, chosen by which ratings file the folder holds:

- `ratings.csv` (`userId,movieId,rating,timestamp`, the ml-latest-small layout), with optional
  `movies.csv` (`movieId,title,genres`, genres `|`-separated) and `users.csv`
  (`userId,age,gender,occupation[,zip]`);
- ML-100K's `u.data` (tab-separated `user item rating timestamp`, no header), with optional
  `u.item` (`|`-separated, latin-1, 19 genre flags) and `u.user` (`id|age|gender|occupation|zip`).

Beside either, an optional `to_predict.csv` (`userId,movieId[,timestamp]`) lists pairs to predict.
A malformed row is one PodiumError naming the file and its line (counted from 1, header included).
Ids are whole numbers read exactly from their text: one beyond int64 is an error naming its line,
never a silently wrapped or rounded id.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from podium.errors import PodiumError
from podium.files import visible_entries

PAIRS_FILE = "to_predict.csv"
# The genre flags of u.item, in file order (ML-100K's u.genre).
ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                 "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
                 "War", "Western")
_YEAR_IN_TITLE = re.compile(r"\((\d{4})\)\s*$")
_FIELDS_ERROR = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


@dataclass
class MovieLensFiles:
    """Which files of a MovieLens folder are read; None where the optional file is absent."""

    ratings: Path
    movies: Path | None
    users: Path | None
    pairs: Path | None  # PAIRS_FILE: the pairs to predict, the competition's "test set"


def find_files(data_dir: Path) -> MovieLensFiles:
    """The files of `data_dir`, or of its one subfolder holding ratings (GroupLens zips unpack into ml-100k/)."""
    data_dir = Path(data_dir)
    folder = data_dir
    if not _has_ratings(data_dir):
        inside = [p for p in visible_entries(data_dir) if p.is_dir() and _has_ratings(p)] if data_dir.is_dir() else []
        if not inside:
            raise PodiumError(f"no ratings in {data_dir}: expected ratings.csv (userId,movieId,rating,timestamp) "
                              "or ML-100K's u.data")
        if len(inside) > 1:
            raise PodiumError(f"{data_dir} holds several MovieLens folders ({', '.join(p.name for p in inside)}); "
                              "give one of them as --data")
        folder = inside[0]
    names = ("ratings.csv", "movies.csv", "users.csv") if (folder / "ratings.csv").is_file() else \
        ("u.data", "u.item", "u.user")
    ratings, movies, users = (folder / name for name in names)
    pairs = folder / PAIRS_FILE
    return MovieLensFiles(ratings, *(path if path.is_file() else None for path in (movies, users, pairs)))


def _has_ratings(folder: Path) -> bool:
    return (folder / "ratings.csv").is_file() or (folder / "u.data").is_file()


def read_ratings(path: Path) -> pd.DataFrame:
    """userId, movieId (int64), rating (float64), timestamp (int64; 0 when the file has none), line."""
    path = Path(path)
    if path.name == "u.data":
        frame = _read_text_table(path, sep="\t", names=["userId", "movieId", "rating", "timestamp"])
    else:
        frame = _read_text_table(path, sep=",", required=["userId", "movieId", "rating"])
        if "timestamp" not in frame.columns:
            frame["timestamp"] = "0"
    out = pd.DataFrame({
        "userId": _ids(frame, "userId", path),
        "movieId": _ids(frame, "movieId", path),
        "rating": _numbers(frame, "rating", path),
        "timestamp": _integers(frame, "timestamp", path),
        "line": frame["line"].to_numpy(),
    })
    if out.empty:
        raise PodiumError(f"{path} holds no ratings")
    repeated = out.duplicated(["userId", "movieId"], keep=False)
    if repeated.any():
        user, movie = (int(out.loc[repeated, column].iloc[0]) for column in ("userId", "movieId"))
        lines = out.loc[(out["userId"] == user) & (out["movieId"] == movie), "line"]
        raise PodiumError(f"{path}, line {lines.iloc[1]}: user {user} rates movie {movie} again "
                          f"(first on line {lines.iloc[0]}); keep one rating per user and movie")
    return out


def check_rating_scale(ratings: pd.DataFrame, scale, path: Path) -> None:
    """One error naming the file and line of the first rating outside `scale` (low, high), both included."""
    low, high = scale
    outside = ((ratings["rating"] < low) | (ratings["rating"] > high)).to_numpy()
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise PodiumError(f"{path}, line {ratings['line'].iloc[row]}: rating {ratings['rating'].iloc[row]:g} is outside "
                          f"the rating scale {low:g}-{high:g}; if the data uses another scale, declare it with "
                          f"--set data.rating_scale=[low,high]")


def read_pairs(path: Path) -> pd.DataFrame:
    """userId, movieId (int64), timestamp (int64; 0 = unknown when the file has none), line: the (user, movie)
    pairs of a CSV with those columns (others ignored)."""
    path = Path(path)
    if not path.is_file():
        raise PodiumError(f"pairs file {path} not found")
    frame = _read_text_table(path, sep=",", required=["userId", "movieId"])
    timestamps = _integers(frame, "timestamp", path) if "timestamp" in frame.columns else np.zeros(len(frame), np.int64)
    return pd.DataFrame({"userId": _ids(frame, "userId", path), "movieId": _ids(frame, "movieId", path),
                         "timestamp": timestamps, "line": frame["line"].to_numpy()})


def read_movies(path: Path) -> pd.DataFrame:
    """movieId, title, genres (`|`-separated, "" when none), year (float, NaN when unknown)."""
    path = Path(path)
    if path.name == "u.item":
        names = ["movieId", "title", "release", "video_release", "url", *ML100K_GENRES]
        frame = _read_text_table(path, sep="|", names=names, encoding="latin-1")
        flags = np.column_stack([_integers(frame, genre, path) for genre in ML100K_GENRES]).astype(bool)
        genres = ["|".join(g for g, on in zip(ML100K_GENRES, row) if on and g != "unknown") for row in flags]
        release_year = frame["release"].str.extract(r"(\d{4})\s*$")[0]
    else:
        frame = _read_text_table(path, sep=",", required=["movieId", "title"])
        genres = frame["genres"].fillna("") if "genres" in frame.columns else pd.Series("", index=frame.index)
        genres = [("" if g.strip() == "(no genres listed)" else g.strip()) for g in genres]
        release_year = pd.Series(np.nan, index=frame.index)
    titles = frame["title"].fillna("").str.strip()
    year = titles.str.extract(_YEAR_IN_TITLE)[0].fillna(release_year)
    return pd.DataFrame({"movieId": _ids(frame, "movieId", path), "title": titles.to_numpy(),
                         "genres": genres, "year": pd.to_numeric(year, errors="coerce").to_numpy(dtype=float)})


def read_users(path: Path) -> pd.DataFrame:
    """userId, age (int64), gender, occupation."""
    path = Path(path)
    if path.name == "u.user":
        frame = _read_text_table(path, sep="|", names=["userId", "age", "gender", "occupation", "zip"])
    else:
        frame = _read_text_table(path, sep=",", required=["userId", "age", "gender", "occupation"])
    return pd.DataFrame({"userId": _ids(frame, "userId", path), "age": _integers(frame, "age", path),
                         "gender": frame["gender"].fillna("").str.strip().to_numpy(),
                         "occupation": frame["occupation"].fillna("").str.strip().to_numpy()})


def _read_text_table(path: Path, *, sep: str, names=None, required=(), encoding: str = "utf-8") -> pd.DataFrame:
    """Every field as text, plus `line` (the 1-based line of each row); blank lines are skipped."""
    header_lines = 0 if names else 1
    try:
        frame = pd.read_csv(path, sep=sep, header=None if names else 0, names=names, dtype=str,
                            keep_default_na=False, na_values=[""], skip_blank_lines=False, encoding=encoding,
                            quoting=3 if sep != "," else 0)  # csv.QUOTE_NONE: `|` and tab files quote nothing
    except pd.errors.EmptyDataError:
        raise PodiumError(f"{path} is empty") from None
    except pd.errors.ParserError as exc:
        match = _FIELDS_ERROR.search(str(exc))
        if match:
            expected, line, seen = match.groups()
            raise PodiumError(f"{path}, line {line}: {seen} fields, expected {expected}") from None
        raise PodiumError(f"{path} cannot be parsed: {str(exc).strip()}") from None
    except UnicodeDecodeError as exc:
        raise PodiumError(f"{path} is not {encoding} text: {exc.reason} at byte {exc.start}") from None
    frame.columns = [str(column).strip() for column in frame.columns]
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise PodiumError(f"{path}, line 1: header lacks {missing} (has {list(frame.columns)})")
    frame["line"] = np.arange(len(frame)) + header_lines + 1
    blank = frame.drop(columns="line").isna().all(axis=1)
    return frame[~blank].reset_index(drop=True)


def _integers(frame: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    return _whole(_numbers(frame, column, path), frame, column, path)


def _whole(values: np.ndarray, frame: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    fractional = values != np.round(values)
    if fractional.any():
        row = int(np.flatnonzero(fractional)[0])
        raise PodiumError(f"{path}, line {frame['line'].iloc[row]}: {column} {frame[column].iloc[row]!r} "
                          "is not a whole number")
    return values.astype(np.int64)


def _ids(frame: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    """Whole numbers in int64, exact: floats only see 53 bits, so long ids are converted from their text."""
    numbers = _numbers(frame, column, path)
    # Beyond 2**53 the float reading may be rounded, and beyond 2**63 it would wrap: the text is the truth there.
    long = np.abs(numbers) >= 2.0 ** 53
    values = _whole(np.where(long, 0.0, numbers), frame, column, path)
    for row in np.flatnonzero(long):
        text = str(frame[column].iloc[row]).strip()
        try:
            exact = int(text)
        except ValueError:
            raise PodiumError(f"{path}, line {frame['line'].iloc[row]}: {column} {text!r} is too large to be read "
                              "exactly unless written as plain digits") from None
        if not -2 ** 63 <= exact < 2 ** 63:
            raise PodiumError(f"{path}, line {frame['line'].iloc[row]}: {column} {text!r} has {len(text)} digits, "
                              "beyond the 64-bit integers podium keeps ids in (at most 19 digits)")
        values[row] = exact
    return values


def _numbers(frame: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    text = frame[column]
    values = pd.to_numeric(text.str.strip(), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raw = text.iloc[row]
        what = f"{column} is missing" if pd.isna(raw) or not str(raw).strip() else \
            f"{column} {raw!r} is not a number"
        raise PodiumError(f"{path}, line {frame['line'].iloc[row]}: {what}")
    return values
