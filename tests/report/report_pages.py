"""Reading a report page back: its keyed table cells, its page check, the numbers a run's files say."""
import json
import shutil
from html.parser import HTMLParser


class KeyedCells(HTMLParser):
    """The text of every table cell with a data-key, by table id: {table id: {key: text}}; and the page check."""

    def __init__(self):
        super().__init__()
        self.tables, self.check, self._table, self._key, self._text = {}, {}, None, None, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = attrs.get("id") or ""
            self.tables.setdefault(self._table, {})
        elif tag == "td" and attrs.get("data-key"):
            self._key, self._text = attrs["data-key"], []
        elif tag == "small" and self._key:
            self.tables[self._table][self._key] = "".join(self._text).strip()
            self._key = None
        elif attrs.get("id") == "page-check":
            self.check = {name.removeprefix("data-"): value for name, value in attrs.items()}

    def handle_data(self, data):
        if self._key:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "td" and self._key:
            self.tables[self._table][self._key] = "".join(self._text).strip()
            self._key = None


def keyed_cells(html: str) -> KeyedCells:
    parser = KeyedCells()
    parser.feed(html)
    return parser


def expected_confusion(run_dir, classes) -> dict:
    """{"true|predicted": count} of a run's out-of-fold predictions, counted here from the CSV."""
    import pandas as pd

    frame = pd.read_csv(run_dir / "oof_predictions.csv")
    predicted = frame[list(classes)].to_numpy().argmax(axis=1)
    counts = {f"{t}|{p}": 0 for t in classes for p in classes}
    for true, guess in zip(frame["label"], predicted):
        counts[f"{true}|{classes[guess]}"] += 1
    return {key: str(value) for key, value in counts.items()}


def copy_run(source, root, name, *, config=None, metrics=None, records=()):
    """A copy of run `source` as `root/name`, with dotted config and metrics keys changed and submission records."""
    run_dir = shutil.copytree(source, root / name)
    for file, changes in (("config.json", config), ("metrics.json", metrics)):
        if changes:
            data = json.loads((run_dir / file).read_text())
            for dotted, value in changes.items():
                node = data
                *parents, last = dotted.split(".")
                for part in parents:
                    node = node[part]
                node[last] = value
            (run_dir / file).write_text(json.dumps(data))
    if records:
        (run_dir / "submissions.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    return run_dir
