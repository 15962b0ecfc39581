"""Bounding-box annotations as the canonical table carries them, and the box files they come from.

A plugin with boxes adds `BOX_COLUMNS` to its canonical table: the largest box of each labelled
image as Pascal VOC corners (x0, y0, x1, y1) in the image's own pixels, NaN where it has none.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from podium.errors import PodiumError

BOX_COLUMNS = ("bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1")
BOX_FIELDS = ("x", "y", "width", "height")


def read_box_file(path: Path, *, notes: list | None = None) -> dict[str, list[tuple]]:
    """File name -> its boxes (x0, y0, x1, y1) from a JSON list of
    `{"filename": ..., "annotations": [{"x", "y", "width", "height"}, ...]}` (the Fisheries forum format).

    An entry with an empty annotation list is an image without a box. A malformed entry is one
    error naming the file, the entry's index and what is wrong. A box with a negative width or
    height (drawn right to left or bottom to top) keeps its area: its corners are swapped, and
    one line per file saying how many is appended to `notes`; so is a count of zero-size boxes, ignored.
    """
    path = Path(path)
    try:
        entries = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise PodiumError(f"{path} is not UTF-8 JSON text (is it a box file?)") from None
    except OSError as exc:
        raise PodiumError(f"{path} cannot be read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise PodiumError(f"{path} is not valid JSON: {exc}") from None
    flipped, first_flipped, empty, first_empty = 0, "", 0, ""
    if not isinstance(entries, list):
        raise PodiumError(f"{path}: expected a JSON list of entries, got {type(entries).__name__}")
    boxes: dict[str, list[tuple]] = {}
    for index, entry in enumerate(entries):
        where = f"{path}: entry {index}"
        if not isinstance(entry, dict) or not isinstance(entry.get("filename"), str) or not entry["filename"].strip():
            raise PodiumError(f"{where} needs a 'filename' text, got {short_json(entry)}")
        where = f"{where} ({entry['filename']})"
        annotations = entry.get("annotations")
        if not isinstance(annotations, list):
            raise PodiumError(f"{where}: 'annotations' must be a list (empty for no fish), got {short_json(annotations)}")
        # Some box files name images with their folders; the file name is what identifies them.
        found = boxes.setdefault(entry["filename"].replace("\\", "/").rsplit("/", 1)[-1], [])
        for number, annotation in enumerate(annotations):
            if not isinstance(annotation, dict):
                raise PodiumError(f"{where}, annotation {number}: expected an object with x, y, width, height, "
                                  f"got {short_json(annotation)}")
            values = []
            for name in BOX_FIELDS:
                value = annotation.get(name)
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise PodiumError(f"{where}, annotation {number}: '{name}' must be a number, got {short_json(value)}")
                values.append(float(value))
            x, y, width, height = values
            if width == 0 or height == 0:
                empty += 1
                first_empty = first_empty or f"{where}, annotation {number}"
                continue
            if width < 0 or height < 0:
                flipped += 1
                first_flipped = first_flipped or f"{where}, annotation {number}"
            found.append((min(x, x + width), min(y, y + height), max(x, x + width), max(y, y + height)))
    if flipped and notes is not None:
        notes.append(f"{path}: {flipped} boxes with a negative width or height (first: {first_flipped}) "
                     "were read with their corners swapped")
    if empty and notes is not None:
        notes.append(f"{path}: {empty} boxes of zero width or height (first: {first_empty}) were ignored")
    return boxes


def short_json(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def largest_box(boxes, width: float, height: float) -> tuple | None:
    """The largest of `boxes` once clipped to the image; None when none keeps any area
    (no box, or only boxes outside the image or of zero size)."""
    best, best_area = None, 0.0
    for x0, y0, x1, y1 in boxes:
        x0, x1 = min(max(x0, 0.0), width), min(max(x1, 0.0), width)
        y0, y1 = min(max(y0, 0.0), height), min(max(y1, 0.0), height)
        area = (x1 - x0) * (y1 - y0) if x1 > x0 and y1 > y0 else 0.0
        if area > best_area:
            best, best_area = (x0, y0, x1, y1), area
    return best
