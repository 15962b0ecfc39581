"""Small file helpers: atomic writes and never-overwrite paths."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from podium.errors import PodiumError


def current_umask() -> int:
    """The process umask (reading it means setting it; set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a plain `open(path, "w")` would give: 0o666 less the user's umask."""
    return 0o666 & ~current_umask()


def ensure_folder(path: Path, what: str = "folder") -> Path:
    """Create `path` (and parents) as a folder; one line when a file stands in the way."""
    path = Path(path)
    for part in (path, *path.parents):
        if part.exists() and not part.is_dir():
            raise PodiumError(f"{what} {path}: {part} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PodiumError(f"{what} {path} cannot be created: {exc.strerror or exc}") from None
    return path


def check_output_file(path: Path, what: str = "output file", *, overwrite: bool = False) -> Path:
    """Refuse, before any work, an output path that is a folder, sits under a file, or exists (unless `overwrite`)."""
    path = Path(path)
    if path.is_dir():
        raise PodiumError(f"{what} {path} is a folder; name a file")
    if path.exists() and not overwrite:
        raise PodiumError(f"{what} {path} already exists; refusing to overwrite it")
    for part in path.parents:
        if part.exists() and not part.is_dir():
            raise PodiumError(f"{what} {path}: {part} is a file, not a folder")
    return path


def atomic_write_bytes(path: Path, data: bytes, *, overwrite: bool = True) -> Path:
    """Write to a temp file beside `path`, then rename, so readers never see half a file.

    The file gets the mode a plain write would (0o666 less the umask), not mkstemp's 0o600,
    so a shared cache or runs folder stays readable to a team-mate."""
    path = Path(path)
    if path.is_dir():
        raise PodiumError(f"{path} is a folder; cannot write a file there")
    ensure_folder(path.parent)
    if not overwrite and path.exists():
        raise PodiumError(f"{path} already exists; refusing to overwrite it")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, file_mode())
        if overwrite:
            os.replace(tmp, path)
        else:
            # link() fails if the target appeared meanwhile: no silent overwrite.
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise PodiumError(f"{path} already exists; refusing to overwrite it") from None
            os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: Path, text: str, *, overwrite: bool = True) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def write_json(path: Path, data, *, overwrite: bool = True) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", overwrite=overwrite)


def read_json(path: Path):
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise PodiumError(f"{path} not found") from None
    except json.JSONDecodeError as exc:
        raise PodiumError(f"{path} is not valid JSON: {exc}") from None


def unused_path(path: Path) -> Path:
    """`path` if free, else `stem-2.ext`, `stem-3.ext`, ...: never clobber a user's file."""
    path = Path(path)
    if not path.exists():
        return path
    n = 2
    while True:
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        if not candidate.exists():
            return candidate
        n += 1
