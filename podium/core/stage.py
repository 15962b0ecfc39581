"""Techniques as ordered stages over one run state.

A stage declares its name, its place in the order, the config sections it reads, which other stages it
cannot run with (and why), and `run(state)`. A pipeline runs the enabled stages of its registry in order;
conflicts and each stage's own settings are checked before a run directory or any feature is made.
Adding a technique is one module with a `@register_stage` class.
"""
from __future__ import annotations

import abc
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from podium.errors import PodiumError

__all__ = ["RunState", "Stage", "check_stages", "register_stage", "registered_stages", "run_stages"]

_REGISTRY: dict[str, dict[str, type]] = {}  # pipeline name -> stage name -> class
logger = logging.getLogger("podium")


class Stage(abc.ABC):
    """One technique of a pipeline. Subclasses set the class attributes and implement `run`."""

    name: ClassVar[str]
    order: ClassVar[int]  # lower runs first
    pipeline: ClassVar[str] = "image_classification"
    reads: ClassVar[tuple[str, ...]] = ()  # config sections (or dotted keys) the stage reads
    conflicts: ClassVar[dict[str, str]] = {}  # other stage name -> why the two cannot run together
    requires: ClassVar[tuple[str, ...]] = ()  # stages that must run too
    on_predict: ClassVar[bool] = False  # also runs when a finished run predicts again (`podium predict`)
    # Files (glob patterns relative to the run directory) the stage leaves that predicting needs: they join the
    # run's manifest (`podium.core.manifest`), which `podium predict` checks before loading anything.
    leaves: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def enabled(cls, config: dict) -> bool:
        """Whether the config switches this stage on; a stage that always runs keeps the default."""
        return True

    @classmethod
    def check(cls, plugin, config: dict, data_dir: Path | None = None) -> None:
        """Raise PodiumError for settings this stage refuses (called before anything is created)."""

    @abc.abstractmethod
    def run(self, state: "RunState") -> None:
        """Do the technique's work on `state`: train or replace the learner, add metrics, write files."""


def register_stage(cls: type) -> type:
    """Class decorator: add a Stage subclass to its pipeline's registry."""
    if not (isinstance(cls, type) and issubclass(cls, Stage)):
        raise TypeError(f"{cls!r} is not a Stage")
    stages = _REGISTRY.setdefault(cls.pipeline, {})
    if cls.name in stages and stages[cls.name] is not cls:
        raise TypeError(f"stage {cls.name!r} is registered twice for {cls.pipeline}")
    stages[cls.name] = cls
    return cls


def registered_stages(pipeline: str) -> list[type]:
    """Every stage registered for `pipeline`, in order."""
    return sorted(_REGISTRY.get(pipeline, {}).values(), key=lambda cls: (cls.order, cls.name))


def check_stages(plugin, config: dict, pipeline: str, *, data_dir: Path | None = None) -> list[type]:
    """The enabled stages of `pipeline` in order, after checking their settings and conflicts."""
    enabled = [cls for cls in registered_stages(pipeline) if cls.enabled(config)]
    names = {cls.name for cls in enabled}
    for cls in enabled:
        for other, why in cls.conflicts.items():
            if other in names:
                raise PodiumError(f"stages {cls.name!r} and {other!r} cannot run together: {why}")
        missing = [name for name in cls.requires if name not in names]
        if missing:
            raise PodiumError(f"stage {cls.name!r} needs {', '.join(repr(m) for m in missing)} "
                              f"(switch {'it' if len(missing) == 1 else 'them'} on too)")
        cls.check(plugin, config, data_dir)
    return enabled


def run_stages(stages, state: "RunState", *, predicting: bool = False) -> "RunState":
    """Each stage in order; its name and rows are logged as it starts, its wall time, peak anonymous memory
    (while a `MemorySampler` runs) and disk written under the run and cache folders go to
    `state.metrics["stages"]`, one entry a stage, in order."""
    import time

    from podium.core.resources import MemorySampler, disk_bytes

    folders = [Path(state.run_dir)]
    cache = (state.config.get("paths") or {}).get("cache") if isinstance(state.config, dict) else None
    if cache and getattr(state.plugin, "name", None):
        folders.append(Path(cache) / state.plugin.name)
    costs = state.metrics.setdefault("stages", [])
    for cls in stages:
        if predicting and not cls.on_predict:
            continue
        logger.info("stage %s%s", cls.name, _rows_text(state.data))
        started, disk = time.perf_counter(), disk_bytes(folders)
        cls().run(state)
        state.completed.append(cls.name)
        sampler = MemorySampler.active
        costs.append({"stage": cls.name, "seconds": round(time.perf_counter() - started, 2),
                      "disk_mib": round((disk_bytes(folders) - disk) / 2**20, 1),
                      **({"peak_rss_mib": round(sampler.lap(), 1)} if sampler is not None else {})})
    return state


def _rows_text(data) -> str:
    """': 22,424 labelled and 79,726 test rows' for a task's data that has such tables, else ''."""
    parts = [f"{len(table):,} {name}" for name in ("labelled", "test")
             if hasattr(table := getattr(data, name, None), "__len__")]
    return (": " + " and ".join(parts) + " rows") if parts else ""


@dataclass
class RunState:
    """What the stages of one run share: the plugin and config, the task's data, the current learner,
    and what has been measured and written so far."""

    plugin: object
    config: dict
    data_dir: Path
    run_dir: Path
    sample: bool = False
    callbacks: list = field(default_factory=list)  # extra Keras callbacks for the main training stage
    data: object = None  # the task's data (rows, split, cached features)
    learner: object = None  # what predicts now; a stage that trains replaces it
    metrics: dict = field(default_factory=dict)
    # name suffix -> (learner, data) of further predictions written beside the main ones (e.g. "_crop")
    alternatives: dict = field(default_factory=dict)
    files_suffix: str = ""  # suffix of the prediction and submission files (e.g. "_tta4" when predicting again)
    out: Path | None = None  # where `podium predict --out` wants the submission copied
    completed: list = field(default_factory=list)
    manifest: dict | None = None  # when predicting again: the finished run's checked manifest

    def left_by(self, stage: str) -> list[Path]:
        """The files the finished run's `stage` left, as its manifest records them (predicting again)."""
        files = (self.manifest or {}).get("files", {})
        return [Path(self.run_dir) / name for name, entry in sorted(files.items()) if entry.get("stage") == stage]
