"""A finished run's manifest: every file its stages left that predicting needs, with its size and checksum.

Each stage declares the files it leaves (`Stage.leaves`, glob patterns relative to the run directory;
a pipeline without stages names its own in `LEAVES`), so a new stage's files join the manifest without
editing this module. When a run finishes, `write_manifest` records the files those patterns match, which
stages ran and which of them `podium predict` replays. `check_manifest` is what predict does before it
loads anything: every recorded file present, non-empty and unchanged, no extra file matching a stage's
pattern (a stray `oof/fold9.keras` would otherwise join the bag), every replayed stage known.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from podium.errors import PodiumError
from podium.files import read_json, write_json

__all__ = ["MANIFEST", "RECORD_FILES", "check_manifest", "file_digest", "write_manifest"]

MANIFEST = "manifest.json"
FORMAT = 1
RECORD_FILES = ("config.json", "run.json")  # what every prediction reads first: the settings and the data folder
_CHUNK = 1 << 20


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read in chunks (a fine-tuned model is tens of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(run_dir: Path, stages=(), *, leaves: tuple[str, ...] = ()) -> dict:
    """Record the files `stages` (Stage classes, in the order they ran) left in `run_dir`, and `leaves`
    (patterns of a pipeline without stages), as `manifest.json`."""
    run_dir = Path(run_dir)
    patterns = {"run": list(RECORD_FILES)}
    if leaves:
        patterns["pipeline"] = list(leaves)
    for cls in stages:
        if cls.leaves:
            patterns.setdefault(cls.name, []).extend(cls.leaves)
    files: dict[str, dict] = {}
    for stage, globs in patterns.items():
        for pattern in globs:
            for path in sorted(run_dir.glob(pattern)):
                if path.is_file() and not path.name.startswith("."):
                    # A later stage that rewrites a file (pseudo-labels retrain head.keras) owns it.
                    files[path.relative_to(run_dir).as_posix()] = {
                        "stage": stage, "bytes": path.stat().st_size, "sha256": file_digest(path)}
    manifest = {"format": FORMAT, "stages": [cls.name for cls in stages],
                "replay": [cls.name for cls in stages if cls.on_predict], "patterns": patterns, "files": files,
                "counts": {stage: sum(1 for f in files.values() if f["stage"] == stage) for stage in patterns}}
    write_json(run_dir / MANIFEST, manifest)
    return manifest


def check_manifest(run_dir: Path) -> dict:
    """The run's manifest after checking the run against it; one line naming the first file that is
    missing, empty, changed or extra."""
    run_dir = Path(run_dir)
    path = run_dir / MANIFEST
    if not path.is_file():
        raise PodiumError(f"run {run_dir} has no {MANIFEST} (it was made by an older podium, or its manifest was "
                          "deleted): predict cannot tell whether it is whole; train it again with `podium run`")
    manifest = read_json(path)
    if (not isinstance(manifest, dict) or manifest.get("format") != FORMAT
            or not isinstance(manifest.get("files"), dict) or not isinstance(manifest.get("patterns"), dict)):
        raise PodiumError(f"{path} is damaged or of another podium version; train the run again")
    counts = manifest.get("counts", {})
    for name, entry in sorted(manifest["files"].items()):
        target = run_dir / name
        stage = entry.get("stage", "?")
        left = f"the {stage} stage left {counts.get(stage, '?')} file(s)"
        if not target.is_file():
            raise PodiumError(f"run {run_dir}: {name} is missing ({left}); restore it or train the run again")
        size = target.stat().st_size
        if size == 0:
            raise PodiumError(f"run {run_dir}: {name} is empty (the run wrote {entry.get('bytes')} bytes); "
                              "restore it or train the run again")
        if size != entry.get("bytes") or file_digest(target) != entry.get("sha256"):
            raise PodiumError(f"run {run_dir}: {name} is damaged or changed since the run wrote it ({size} bytes, "
                              f"the run wrote {entry.get('bytes')}; checksum differs); restore it or train again")
    for stage, globs in sorted(manifest["patterns"].items()):
        for pattern in globs:
            for found in sorted(run_dir.glob(pattern)):
                name = found.relative_to(run_dir).as_posix()
                if found.is_file() and not found.name.startswith(".") and name not in manifest["files"]:
                    raise PodiumError(f"run {run_dir}: {name} is not part of this run ({_stage_files(manifest, stage)}); "
                                      "remove it, or it would be used as one")
    return manifest


def _stage_files(manifest: dict, stage: str) -> str:
    names = sorted(name for name, entry in manifest["files"].items() if entry.get("stage") == stage)
    return f"the {stage} stage left {len(names)}: {', '.join(names) if names else 'none'}"
