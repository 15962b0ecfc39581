"""The one registry of competitions: `@register` on a plugin class adds it."""
from __future__ import annotations

from podium.errors import PodiumError

_PLUGINS: dict[str, type] = {}


def register(cls):
    """Class decorator: make a Competition subclass available by its `name`."""
    if not getattr(cls, "name", None):
        raise TypeError(f"{cls.__name__} needs a `name` to be registered")
    if cls.name in _PLUGINS and _PLUGINS[cls.name] is not cls:
        raise TypeError(f"competition {cls.name!r} is registered twice")
    _PLUGINS[cls.name] = cls
    return cls


def names() -> list[str]:
    return sorted(_PLUGINS)


def get(name: str):
    """An instance of the plugin called `name` (or whose Kaggle slug is `name`)."""
    if name in _PLUGINS:
        return _PLUGINS[name]()
    for cls in _PLUGINS.values():
        if cls.slug == name:
            return cls()
    raise PodiumError(f"unknown competition {name!r}; registered: {', '.join(sorted(_PLUGINS))}")

