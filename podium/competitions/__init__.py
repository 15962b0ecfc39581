"""Competition plugins. A new competition is one new module registered with `@register`.

Importing this package registers every built-in plugin (`builtin`), so `get` and `names` see them all.
"""
from podium.competitions import builtin  # noqa: F401  (registers the built-in plugins)
from podium.competitions.base import Competition
from podium.competitions.registry import get, names, register

__all__ = ["Competition", "get", "names", "register"]
