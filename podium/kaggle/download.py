"""Fetch a competition's files (or a plugin's Kaggle dataset) and unpack every archive, nested ones
too, into the raw layout the plugins read.

The downloaded archive is unpacked into the folder. An archive found inside is unpacked beside itself
when all its members sit under one name (train.zip holding train/ gives train/, x.csv.zip gives
x.csv), else into a folder named after it, as Kaggle shows it (imgs.zip holding train/ and test/
gives imgs/train and imgs/test). Unpacked archives are removed.
"""
from __future__ import annotations

import shutil
import tarfile
import time
import zipfile
from pathlib import Path, PurePosixPath

from podium.errors import PodiumError
from podium.files import read_json, write_json

MARKER = ".podium-download.json"  # written last; with all its files present the download is complete
STAGING = ".podium-download"  # the client's download folder, kept after a failure so a rerun resumes
UNPACKING = ".podium-unpack"  # archives are unpacked here, then moved into place
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_SKIPPED_TOP = "__MACOSX"  # resource forks some archives carry; never data
_SHOWN = 5


def source_of(plugin) -> str:
    """What a plugin downloads, as recorded in the marker: a competition or a dataset."""
    return f"dataset:{plugin.kaggle_dataset}" if plugin.kaggle_dataset else f"competition:{plugin.slug}"


def completed(folder: Path, source: str) -> dict | None:
    """The marker of a finished download of `source` into `folder` whose files are all intact, else None."""
    marker_path = Path(folder) / MARKER
    if not marker_path.is_file():
        return None
    marker = read_json(marker_path)
    if marker.get("source") != source:
        return None
    for relative, size in marker.get("files", {}).items():
        path = Path(folder) / relative
        if not path.is_file() or path.stat().st_size != size:
            return None
    return marker


def download(plugin, folder: Path, *, force: bool = False) -> tuple[dict, bool]:
    """Download and unpack `plugin`'s files into `folder`: (the marker, whether anything was downloaded)."""
    folder = Path(folder)
    source = source_of(plugin)
    if not force:
        marker = completed(folder, source)
        if marker is not None:
            return marker, False
    staging = folder / STAGING
    if force:
        shutil.rmtree(staging, ignore_errors=True)
    archive = fetch(plugin, staging)
    # Files of an earlier download of the same source are ours to replace; anything else is the user's.
    replace = force or _marker_source(folder) == source
    work = folder / UNPACKING
    try:
        files = unpack(archive, work)
        _move_into_place(work, folder, replace=replace)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    marker = {"source": source, "archive": archive.name, "archive_bytes": archive.stat().st_size,
              "downloaded": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "files": files}
    write_json(folder / MARKER, marker)
    shutil.rmtree(staging)
    return marker, True


def fetch(plugin, staging: Path) -> Path:
    """The archive of `plugin`'s files, downloaded by the official client into `staging`."""
    from podium.kaggle.client import client, kaggle_errors

    api = client()
    # Without force the client skips a complete earlier copy and resumes a partial one.
    if plugin.kaggle_dataset:
        stem = plugin.kaggle_dataset.split("/")[1]
        with kaggle_errors(f"download the dataset {plugin.kaggle_dataset}"):
            api.dataset_download_files(plugin.kaggle_dataset, path=str(staging), quiet=False)
    else:
        stem = plugin.slug
        with kaggle_errors(f"download the files of {plugin.slug}", competition=plugin.slug):
            api.competition_download_files(plugin.slug, path=str(staging), quiet=False)
    found = [path for path in staging.iterdir()
             if path.is_file() and path.name.startswith(f"{stem}.") and not path.name.endswith(".kaggle-partial")]
    if len(found) != 1:
        raise PodiumError(f"expected one downloaded archive {stem}.* in {staging}, found {len(found)}")
    return found[0]


def unpack(archive: Path, work: Path) -> dict[str, int]:
    """Unpack `archive` into a fresh `work` folder, then every archive that came out of it;
    return {relative path: size} of the files left."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    pending = _extract(archive, work, archive.name, nested=False)
    while pending:
        nested = pending.pop()
        pending += _extract(nested, nested.parent, nested.relative_to(work).as_posix(), nested=True)
        nested.unlink()
    return {path.relative_to(work).as_posix(): path.stat().st_size
            for path in sorted(work.rglob("*")) if path.is_file()}


def unsafe_member(name: str) -> bool:
    """Whether an archive member would land outside the folder it is extracted into (zip slip)."""
    path = name.replace("\\", "/")
    return path.startswith("/") or ".." in PurePosixPath(path).parts or (len(path) > 1 and path[1] == ":")


def _extract(archive: Path, dest: Path, label: str, *, nested: bool) -> list[Path]:
    """Extract every member of `archive` into `dest` (or, when `nested` and its members have several
    top-level names, into a folder named after it), refusing it whole if any member is unsafe;
    return the extracted archives still to unpack."""
    from tqdm import tqdm  # the official client's progress bars; installed with it

    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as bundle:
                members = [m for m in bundle.infolist() if not _skipped(m.filename)]
                dest = _destination(archive, dest, [m.filename for m in members], label, nested)
                for member in tqdm(members, desc=f"unpacking {label}", unit="file"):
                    bundle.extract(member, dest)
                names = [m.filename for m in members if not m.is_dir()]
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as bundle:
                members = [m for m in bundle.getmembers() if not _skipped(m.name)]
                dest = _destination(archive, dest, [m.name for m in members], label, nested)
                for member in tqdm(members, desc=f"unpacking {label}", unit="file"):
                    # The "data" filter also refuses links that point outside `dest`.
                    bundle.extract(member, dest, filter="data")
                names = [m.name for m in members if m.isfile()]
        else:
            raise PodiumError(f"{label} is not a zip or tar archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise PodiumError(f"{label} is damaged or incomplete ({exc}); run the download again with --force") from None
    return [dest / name for name in names if name.lower().endswith(_ARCHIVE_SUFFIXES)]


def _destination(archive: Path, dest: Path, names: list[str], label: str, nested: bool) -> Path:
    """Where `archive`'s members go; raise, naming them, if any would land outside it."""
    unsafe = [name for name in names if unsafe_member(name)]
    if unsafe:
        shown = ", ".join(repr(name) for name in unsafe[:_SHOWN]) + (", ..." if len(unsafe) > _SHOWN else "")
        raise PodiumError(f"{label}: refused to unpack it, {len(unsafe)} member(s) would be written outside the "
                          f"download folder (absolute path or '..'): {shown}; nothing was unpacked")
    tops = {PurePosixPath(name.replace("\\", "/")).parts[0] for name in names if name.strip("/")}
    if nested and len(tops) > 1:
        return dest / _stem(archive.name)
    return dest


def _stem(name: str) -> str:
    return next(name[: -len(suffix)] for suffix in _ARCHIVE_SUFFIXES if name.lower().endswith(suffix))


def _skipped(name: str) -> bool:
    return PurePosixPath(name.replace("\\", "/")).parts[:1] == (_SKIPPED_TOP,)


def _marker_source(folder: Path) -> str | None:
    marker_path = folder / MARKER
    return read_json(marker_path).get("source") if marker_path.is_file() else None


def _move_into_place(work: Path, folder: Path, *, replace: bool) -> None:
    """Move what `work` holds into `folder`; check every clash before moving anything."""
    entries = sorted(work.iterdir())
    clashes = [folder / entry.name for entry in entries if (folder / entry.name).exists()]
    if clashes and not replace:
        raise PodiumError(f"{clashes[0]} already exists and was not written by `podium download`; "
                          "move it away or pass --force to replace it")
    # The old marker goes first: a move cut short must not look like a complete download.
    (folder / MARKER).unlink(missing_ok=True)
    for entry in entries:
        target = folder / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        entry.rename(target)
