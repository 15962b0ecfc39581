"""Search spaces as data: dotted config key -> distribution; a trial's values become config overrides.

    {"train.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
     "head.units": {"type": "int", "low": 64, "high": 512, "step": 64},
     "train.batch_size": {"type": "categorical", "choices": [32, 64, 128]}}

Each entry is suggested with `trial.suggest_<type>` under its dotted key, and the suggested
values override the run's config exactly as `--set train.lr=...` would, type-checked.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from podium.errors import PodiumError

__all__ = ["Param", "SearchSpace", "overrides_from_params", "config_value"]

_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Param:
    """One searched hyper-parameter: a dotted config key and its distribution."""

    key: str
    kind: str  # "float", "int" or "categorical"
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()

    @classmethod
    def from_spec(cls, key: str, spec, *, source: str) -> "Param":
        where = f"{source}: search space entry '{key}'"
        if not isinstance(spec, dict):
            raise PodiumError(f"{where} must be a table like {{type = \"float\", low = 0.0001, high = 0.01}}")
        kind = spec.get("type")
        allowed = {"float": {"type", "low", "high", "log", "step"}, "int": {"type", "low", "high", "log", "step"},
                   "categorical": {"type", "choices"}}
        if kind not in allowed:
            raise PodiumError(f"{where}: type must be float, int or categorical, got {kind!r}")
        unknown = sorted(set(spec) - allowed[kind])
        if unknown:
            raise PodiumError(f"{where}: unknown field(s) {unknown} for type {kind} (allowed: {sorted(allowed[kind])})")
        if kind == "categorical":
            choices = spec.get("choices")
            if not isinstance(choices, (list, tuple)) or not choices:
                raise PodiumError(f"{where}: choices must be a non-empty list")
            if not all(isinstance(c, _SCALARS) for c in choices):
                raise PodiumError(f"{where}: choices must be numbers, strings, booleans or null, got {list(choices)}")
            return cls(key=key, kind=kind, choices=tuple(choices))
        number = float if kind == "float" else int
        values = {}
        for field_name in ("low", "high", "step"):
            value = spec.get(field_name)
            if value is None and field_name == "step":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                    kind == "int" and value != int(value)) or not math.isfinite(value):
                raise PodiumError(f"{where}: {field_name} must be a{'n integer' if kind == 'int' else ' number'}, "
                                  f"got {value!r}")
            values[field_name] = number(value)
        log = spec.get("log", False)
        if not isinstance(log, bool):
            raise PodiumError(f"{where}: log must be true or false, got {log!r}")
        if not values["low"] < values["high"]:
            raise PodiumError(f"{where}: low ({values['low']}) must be below high ({values['high']})")
        if log and values["low"] <= 0:
            raise PodiumError(f"{where}: a log-scale range needs low > 0, got {values['low']}")
        if log and "step" in values:
            raise PodiumError(f"{where}: step and log cannot be combined")
        return cls(key=key, kind=kind, low=values["low"], high=values["high"], log=log, step=values.get("step"))

    def to_spec(self) -> dict:
        if self.kind == "categorical":
            return {"type": "categorical", "choices": list(self.choices)}
        spec = {"type": self.kind, "low": self.low, "high": self.high, "log": self.log}
        if self.step is not None:
            spec["step"] = self.step
        return spec

    def suggest(self, trial):
        if self.kind == "categorical":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.key, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def contains(self, value) -> bool:
        if self.kind == "categorical":
            return any(value == choice and type(value) is type(choice) for choice in self.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind == "int" and value != int(value):
            return False
        if not self.low <= value <= self.high:
            return False
        return self.step is None or abs((value - self.low) / self.step - round((value - self.low) / self.step)) < 1e-9

    def bounds(self) -> list:
        """The values the config must accept: both ends of a range, or every choice."""
        return list(self.choices) if self.kind == "categorical" else [self.low, self.high]


def config_value(config: dict, dotted: str):
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def overrides_from_params(params: dict) -> dict:
    """{"train.lr": 0.01, "head.units": 128} -> {"train": {"lr": 0.01}, "head": {"units": 128}}."""
    nested: dict = {}
    for dotted, value in params.items():
        node = nested
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


class SearchSpace:
    """The searched hyper-parameters, in a fixed order (the order trials suggest them in)."""

    def __init__(self, params):
        self.params = tuple(params)

    @classmethod
    def from_specs(cls, specs: dict, *, source: str) -> "SearchSpace":
        if not isinstance(specs, dict):
            raise PodiumError(f"{source}: a search space is a table of dotted config keys")
        return cls(Param.from_spec(key, spec, source=source) for key, spec in specs.items())

    @classmethod
    def combine(cls, declared: dict, overrides: dict, only=(), *, source: str) -> "SearchSpace":
        """The plugin's space with a config's entries replacing (or, given `false`, dropping) its own,
        then narrowed to the keys in `only` when that is not empty."""
        specs = dict(declared)
        for key, spec in overrides.items():
            if spec is False:
                if key not in specs:
                    raise PodiumError(f"{source}: cannot drop '{key}': it is not in the search space "
                                      f"({', '.join(specs) or 'empty'})")
                del specs[key]
            else:
                specs[key] = spec
        if only:
            missing = [key for key in only if key not in specs]
            if missing:
                raise PodiumError(f"{source}: tune.only names {missing}, not in the search space "
                                  f"({', '.join(specs) or 'empty'})")
            specs = {key: specs[key] for key in only}
        space = cls.from_specs(specs, source=source)
        if not space.params:
            raise PodiumError(f"{source}: the search space is empty; nothing to tune")
        return space

    def check_against(self, config: dict, *, source: str) -> None:
        """Every key must be a setting of `config` that accepts every value the space can suggest."""
        from podium.config import merge

        for param in self.params:
            try:
                current = config_value(config, param.key)
            except KeyError:
                raise PodiumError(f"{source}: search space key '{param.key}' is not a config setting") from None
            if isinstance(current, dict) and not current.get("__free__"):
                raise PodiumError(f"{source}: search space key '{param.key}' is a config section; "
                                  "name one setting in it")
            for value in param.bounds():
                merge(config, overrides_from_params({param.key: value}), source=f"{source}: search space")

    def fitted_to(self, config: dict, ranges: dict, *, source: str) -> "SearchSpace":
        """The space without the categorical choices `config`'s other settings refuse (e.g. 0 hidden units,
        which only a gap head takes: a dense head is searched over its own widths); a numeric range whose
        ends they refuse is one line naming the key. A choice outside its key's own range (a typo) stays:
        its trial fails and says why."""
        import dataclasses

        from podium.config import check_ranges, known_ranges, merge

        own = known_ranges(ranges)

        def accepted(key, value) -> str | None:
            try:
                check_ranges(merge(config, overrides_from_params({key: value}), source=source), ranges)
            except PodiumError as exc:
                return str(exc)
            return None

        def fits(key, value) -> bool:
            return (key in own and own[key].problem(value) is not None) or accepted(key, value) is None

        params = []
        for param in self.params:
            if param.kind == "categorical":
                kept = tuple(choice for choice in param.choices if fits(param.key, choice))
                if not kept:
                    raise PodiumError(f"{source}: no choice of '{param.key}' ({list(param.choices)}) suits this "
                                      f"config: {accepted(param.key, param.choices[0])}")
                params.append(dataclasses.replace(param, choices=kept))
                continue
            for end in (param.low, param.high):
                problem = accepted(param.key, end)
                if problem:
                    raise PodiumError(f"{source}: '{param.key}' range [{param.low}, {param.high}] does not suit this "
                                      f"config: {problem}")
            params.append(param)
        return SearchSpace(params)

    def suggest(self, trial) -> dict:
        return {param.key: param.suggest(trial) for param in self.params}

    def baseline(self, config: dict) -> dict:
        """The config's own values of the searched keys that lie inside the space (a first trial to beat)."""
        current = {param.key: config_value(config, param.key) for param in self.params}
        return {param.key: current[param.key] for param in self.params if param.contains(current[param.key])}

    def to_specs(self) -> dict:
        return {param.key: param.to_spec() for param in self.params}

    @property
    def keys(self) -> list[str]:
        return [param.key for param in self.params]
