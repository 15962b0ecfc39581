"""What a report is built from: one finished run's files, read once, each missing one named; and the
sections of a report (tables, figures, thumbnails, text), each either filled or left out with its reason."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from podium.core.rundir import check_run
from podium.errors import PodiumError
from podium.files import read_json
from podium.kaggle.submit import run_records


class LeftOut(Exception):
    """A section cannot be built from this run's files; the message says why, for the reader."""


# What a section may fail on when a run is older, partial or copied without its data: left out, never a traceback.
SECTION_ERRORS = (LeftOut, PodiumError, OSError, ValueError, KeyError, IndexError, TypeError)


def cell(text, *, key: str = "", shade: float | None = None, number: bool = False, sub: str = "") -> dict:
    """One table cell: its text, the key of what it shows (a `data-key` for readers), a background shade in
    [0, 1], a second smaller line."""
    return {"text": str(text), "key": key, "shade": None if shade is None else round(float(shade), 3),
            "number": number, "sub": sub}


def fmt(value, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


@dataclass
class Section:
    """A report section: blocks rendered in order by the template, or `left_out` (why) instead."""

    id: str
    title: str
    blocks: list = field(default_factory=list)
    left_out: str = ""
    note: str = ""

    def table(self, header, rows, *, id: str = "", caption: str = "") -> None:
        rows = [[item if isinstance(item, dict) else cell(item) for item in row] for row in rows]
        self.blocks.append({"kind": "table", "id": id, "header": list(header), "rows": rows, "caption": caption})

    def image(self, src: str, *, alt: str, caption: str = "") -> None:
        self.blocks.append({"kind": "image", "src": src, "alt": alt, "caption": caption})

    def thumbnails(self, items: list) -> None:
        """items: {"src", "alt", "lines": [text, ...]}."""
        self.blocks.append({"kind": "thumbnails", "items": items})

    def text(self, text: str) -> None:
        self.blocks.append({"kind": "text", "text": text})

    def pre(self, text: str) -> None:
        self.blocks.append({"kind": "pre", "text": text})


def guarded(section_id: str, title: str, build, run) -> Section:
    """`build(run, section)` fills a section; what it cannot read leaves the section out with the reason."""
    section = Section(section_id, title)
    try:
        build(run, section)
    except SECTION_ERRORS as exc:
        reason = str(exc) if isinstance(exc, (LeftOut, PodiumError)) else f"{type(exc).__name__}: {exc}"
        return Section(section_id, title, left_out=reason or type(exc).__name__)
    return section


class RunFiles:
    """A finished run's record, config and metrics (checked: one line if it is not a finished run), and
    its other files on demand, each missing one a `LeftOut` naming it."""

    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir)
        self.record = check_run(self.dir, keys=("competition", "pipeline"), metrics=True)
        self.config = read_json(self.dir / "config.json")
        self.metrics = read_json(self.dir / "metrics.json")
        self.id = self.dir.name
        self._plugin = self._table = None

    @property
    def plugin(self):
        if self._plugin is None:
            from podium.competitions import get

            self._plugin = get(self.record["competition"])
        return self._plugin

    def path(self, name: str, *, why: str = "") -> Path:
        path = self.dir / name
        if not path.is_file():
            raise LeftOut(f"the run has no {name}" + (f" ({why})" if why else ""))
        return path

    def csv(self, name: str, *, why: str = "") -> pd.DataFrame:
        path = self.path(name, why=why)
        try:
            return pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise LeftOut(f"{name} cannot be read: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")

    def json(self, name: str, *, why: str = ""):
        try:
            return json.loads(self.path(name, why=why).read_text())
        except ValueError as exc:
            raise LeftOut(f"{name} is not valid JSON: {exc}")

    def table(self) -> pd.DataFrame:
        """The canonical table of the run's data folder (paths of the photos, groups, ratings): the data
        is read where the run was trained; a run copied without its data gets these sections left out."""
        if self._table is None:
            data_dir = Path(self.record.get("data_dir") or "")
            if not self.record.get("data_dir") or not data_dir.is_dir():
                raise LeftOut(f"the run's data folder {data_dir} is not on this machine")
            self._table = self.plugin.read_table(data_dir)
        return self._table

    def submissions(self) -> list[dict]:
        """The Kaggle submissions `podium submit` recorded from this run, oldest first."""
        return run_records(self.dir)
