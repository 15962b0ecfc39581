"""Studies in a database: a SQLite file in the runs folder by default, or any URL several machines share.

The study folder `<runs>/<competition>/tuning/<study>/` holds `study.db` (unless `--storage`
names another database), one run directory per trial under `trials/`, and the report.
Re-opening a study by name continues it; finished trials are never lost.
"""
from __future__ import annotations

import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from podium.errors import PodiumError
from podium.files import ensure_folder, os_faults

__all__ = ["StudyChanged", "StudyPaths", "study_paths", "display_url", "open_study", "load_study", "finished_count",
           "best_trial", "changed_settings", "free_study_name"]

_STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class StudyPaths:
    folder: Path  # the report, and the runs root of the trials (`trials/`)
    storage: str  # database URL

    @property
    def trials(self) -> Path:
        return self.folder / "trials"


def study_paths(runs_root: Path, competition: str, study: str, storage: str | None = None) -> StudyPaths:
    if not _STUDY_NAME.match(study):
        raise PodiumError(f"--study {study!r}: use letters, digits, '.', '_' and '-' (it names a folder)")
    folder = Path(runs_root) / competition / "tuning" / study
    return StudyPaths(folder=folder, storage=storage or f"sqlite:///{(folder / 'study.db').resolve()}")


def display_url(url: str) -> str:
    """The storage URL with any password masked, for messages and reports."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def _storage(url: str, *, heartbeat: int | None):
    import optuna
    from optuna.storages import RDBStorage

    if url.startswith("sqlite:///"):
        database = Path(url[len("sqlite:///"):])
        ensure_folder(database.parent, "study folder")
        with os_faults(path=database):  # a read-only folder or file: one line naming it, not SQLite's "unable to open"
            open(database, "ab").close()
        # Workers of one machine share the file; wait for a busy database instead of failing.
        engine = {"connect_args": {"timeout": 60}}
    else:
        engine = {"pool_pre_ping": True}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            lifecycle = {}
            if heartbeat:
                # A trial whose worker died (killed, machine lost) stops beating; after the grace period it
                # is marked failed and its parameters are tried once more.
                lifecycle = {"heartbeat_interval": int(heartbeat), "grace_period": 2 * int(heartbeat),
                             "heartbeat_stale_trial_callback":
                                 optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)}
            return _create_storage(RDBStorage, url, engine, lifecycle)
    except ModuleNotFoundError as exc:
        raise PodiumError(f"storage {display_url(url)} needs the database driver {exc.name!r}: install it, e.g. "
                          "pip install -e \".[postgres]\" (postgresql://...) or pymysql (mysql+pymysql://...)") from None
    except Exception as exc:  # SQLAlchemy raises many types for a bad URL or an unreachable server
        raise PodiumError(f"cannot open storage {display_url(url)}: {type(exc).__name__}: "
                          f"{display_url(str(exc)).splitlines()[0]}") from None


def _create_storage(storage_class, url: str, engine: dict, lifecycle: dict, *, attempts: int = 5):
    """The storage, retried a few times: machines started together race to create the database's tables,
    and the losers see a duplicate-key error that is gone once the winner has committed."""
    import sqlalchemy.exc

    for attempt in range(1, attempts + 1):
        try:
            return storage_class(url, engine_kwargs=engine, **lifecycle)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == attempts:
                raise
            time.sleep(0.5 * attempt)


def open_study(name: str, storage: str, *, competition: str, direction: str, metric: str, tune: dict,
               seed: int | None, attrs: dict | None = None):
    """Create the study or continue it, with this process's sampler and pruner.

    `seed` None seeds the sampler from fresh entropy: parallel workers (of one machine or several)
    must not propose the same random first points.
    """
    import optuna

    storage_object = _storage(storage, heartbeat=tune["heartbeat"])
    existing = {s.study_name: s for s in optuna.get_all_study_summaries(storage_object, include_best_trial=False)}
    # Offset by the trials so far: a resumed search must not propose its first points again.
    sampler_seed = None if seed is None else int(seed) + (existing[name].n_trials if name in existing else 0)
    sampler = optuna.samplers.TPESampler(seed=sampler_seed, n_startup_trials=int(tune["startup_trials"]),
                                         constant_liar=True)  # parallel workers avoid each other's running trials
    pruner = _pruner(tune)
    if name in existing:
        attributes = existing[name].user_attrs
        if attributes.get("competition", competition) != competition:
            raise PodiumError(f"study {name!r} in {display_url(storage)} tunes {attributes['competition']}, "
                              f"not {competition}; choose another --study")
        if attributes.get("metric", metric) != metric or existing[name].direction.name.lower() != direction:
            raise PodiumError(f"study {name!r} {existing[name].direction.name.lower()}s "
                              f"{attributes.get('metric')}; this search would {direction} {metric}: "
                              "choose another --study")
        changed = changed_settings(attributes.get("fingerprint"), (attrs or {}).get("fingerprint"))
        if changed:
            raise StudyChanged(f"study {name!r} in {display_url(storage)} was searched with other settings that "
                               f"its trials cannot change ({'; '.join(changed)}): its trials would not compare; "
                               "choose another --study, or add --new-study to start the next free name")
        if attrs and attributes.get("space", attrs.get("space")) != attrs.get("space"):
            print(f"note: study {name!r} searched another space before; its earlier trials still guide the "
                  "sampler (use a new --study for a fresh start)")
    study = optuna.create_study(study_name=name, storage=storage_object, direction=direction, sampler=sampler,
                                pruner=pruner, load_if_exists=True)
    if tune["heartbeat"]:
        # A worker killed earlier (SIGKILL, a lost machine) left its trial RUNNING: failed (and queued again
        # by the retry callback) now, not only once a later trial of this study starts.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
    for key, value in {"competition": competition, "metric": metric, **(attrs or {})}.items():
        study.set_user_attr(key, value)
    return study


class StudyChanged(PodiumError):
    """A study resumed with settings its trials cannot change (another data folder, backbone, size...)."""


def changed_settings(stored: dict | None, wanted: dict | None) -> list[str]:
    """'key: stored -> wanted' for each fingerprint key that differs (none when either is unknown)."""
    if not isinstance(stored, dict) or not isinstance(wanted, dict):
        return []
    return [f"{key}: {stored.get(key)!r} -> {wanted.get(key)!r}" for key in sorted(set(stored) | set(wanted))
            if stored.get(key) != wanted.get(key)]


def _pruner(tune: dict):
    import optuna

    if tune["pruner"] == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=int(tune["startup_trials"]),
                                           n_warmup_steps=int(tune["warmup_epochs"]))
    if tune["pruner"] == "hyperband":
        # The first rung after the warm-up epochs; the last at the trial's own epochs ("auto").
        return optuna.pruners.HyperbandPruner(min_resource=max(int(tune["warmup_epochs"]), 1), reduction_factor=3)
    return optuna.pruners.NopPruner()


def free_study_name(name: str, storage: str) -> str:
    """`name-2`, `name-3`, ...: the first name no study in `storage` has."""
    import optuna

    taken = set(optuna.get_all_study_names(_storage(storage, heartbeat=None)))
    return next(f"{name}-{n}" for n in range(2, 10_000) if f"{name}-{n}" not in taken)


def load_study(name: str, storage: str):
    import optuna

    storage_object = _storage(storage, heartbeat=None)
    if name not in optuna.get_all_study_names(storage_object):
        raise PodiumError(f"no study {name!r} in {display_url(storage)}; run `podium tune` first")
    return optuna.load_study(study_name=name, storage=storage_object)


def finished_count(study) -> int:
    """Complete and pruned trials: what `--trials` counts (failed ones are retried by the next run)."""
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def best_trial(study):
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise PodiumError(f"study {study.study_name!r} has no complete trial yet")
    return study.best_trial
