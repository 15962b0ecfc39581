"""Small file helpers: atomic writes, never-overwrite paths, and the operating system's faults in one line.

`os_fault` is the one place that turns an OSError (a name too long, a read-only or full file system, no
permission, a missing folder) into a PodiumError naming the path and the option that set it: the CLI
names each path option it parsed (`name_option`) and routes every OSError of those kinds through it.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path

from podium.errors import PodiumError

__all__ = ["atomic_save", "atomic_write_bytes", "atomic_write_text", "check_output_file", "current_umask",
           "ensure_folder", "file_mode", "name_option", "os_fault", "os_faults", "read_json", "unused_path",
           "visible_entries", "write_json"]

_OPTIONS: dict[str, str] = {}  # absolute path -> the option (or config key) that named it, for messages


def name_option(path, option: str):
    """Remember that `option` (e.g. "--out", "paths.cache") named `path`: a fault under it names the option."""
    if path is not None and str(path) != "":
        _OPTIONS[os.path.abspath(os.fsdecode(path))] = option
    return path


def _option_for(path: str) -> tuple[str, str] | None:
    """(option, the path it named) for `path` or the nearest folder above it that an option named."""
    path = os.path.abspath(path)
    while True:
        if path in _OPTIONS:
            return _OPTIONS[path], path
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


def _free_space(path: str) -> str:
    """Free space on the file system of `path` (or its nearest existing folder), as text."""
    folder = os.path.abspath(path)
    while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return "free space unknown"
    return f"{free / 2**20:,.1f} MiB free"


def _missing_part(path: str) -> str:
    folder = os.path.dirname(os.path.abspath(path))
    while folder and not os.path.exists(folder) and os.path.dirname(folder) != folder:
        missing, folder = folder, os.path.dirname(folder)
        if os.path.exists(folder):
            return f"its folder {missing} does not exist"
    return "no such file or folder"


def _reason(exc: OSError, path: str) -> str | None:
    code = exc.errno
    if code == errno.ENAMETOOLONG:
        longest = max((len(os.fsencode(part)) for part in Path(path).parts), default=0)
        return (f"the name is longer than the file system allows (its longest part has {longest} bytes; "
                f"at most 255 a name, {len(os.fsencode(path))} of at most 4096 in all)")
    if code == errno.EROFS:
        return "the file system is read-only"
    if code in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the device ({_free_space(path)})"
    if code == errno.EFBIG:
        return "the file would exceed the largest file allowed (the process's file-size limit or the file system's)"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied (not writable, or not readable, by this user)"
    if code == errno.ENOENT:
        return _missing_part(path)
    if code == errno.ENOTDIR:
        return "a part of it is a file, not a folder"
    if code == errno.EISDIR:
        return "it is a folder, not a file"
    return None


def os_fault(exc: OSError, *, path=None, option: str | None = None) -> PodiumError | None:
    """A one-line PodiumError for an operating-system fault on a path (None for kinds that are no user's
    doing): the option that set the path (`option`, else the one `name_option` recorded), the path, what
    went wrong."""
    target = os.fsdecode(path if path is not None else (exc.filename if exc.filename is not None else ""))
    reason = _reason(exc, target or ".")
    if reason is None:
        return None
    named = _option_for(target) if target else None
    if option is not None:
        named = (option, named[1] if named else target)
    if named is None:
        return PodiumError(f"{target or 'a file'}: {reason}")
    name, where = named
    inside = "" if os.path.abspath(where) == os.path.abspath(target or where) else f" ({target})"
    return PodiumError(f"{name} {where}{inside}: {reason}")


@contextlib.contextmanager
def os_faults(*, path=None, option: str | None = None):
    """Inside: an OSError of a known kind becomes the one-line PodiumError of `os_fault`."""
    try:
        yield
    except OSError as exc:
        fault = os_fault(exc, path=path, option=option)
        if fault is None:
            raise
        raise fault from None


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
        raise (os_fault(exc, path=path, option=None if _option_for(str(path)) else what)
               or PodiumError(f"{what} {path} cannot be created: {exc.strerror or exc}")) from None
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
    with os_faults(path=path):  # the fault names the file being written, not its temporary name
        _write_whole(path, data, overwrite=overwrite)
    return path


def _write_whole(path: Path, data: bytes, *, overwrite: bool) -> None:
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


def atomic_save(path: Path, write) -> Path:
    """`write(temporary_path)` (e.g. Keras's `model.save`), then rename the whole file to `path`.

    The temporary file sits beside `path` (same file system: the rename is atomic), keeps its suffix
    (Keras picks the format from it) and is hidden; a failed or interrupted write leaves nothing."""
    path = Path(path)
    suffixes = "".join(path.suffixes)  # all of them: Keras wants ".weights.h5", not ".h5"
    tmp = path.with_name(f".{path.name[:len(path.name) - len(suffixes)]}.{os.getpid()}.tmp{suffixes}")
    try:
        with os_faults(path=path):
            write(tmp)
            os.chmod(tmp, file_mode())
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
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


def visible_entries(folder: Path) -> list[Path]:
    """The entries of `folder`, sorted, without hidden ones: `.DS_Store`, macOS's `._name` twins of copied
    files, `.ipynb_checkpoints` are no part of a data set's layout."""
    return sorted(path for path in Path(folder).iterdir() if not path.name.startswith("."))


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
