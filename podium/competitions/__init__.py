"""Competition plugins. A new competition is one new module registered with `@register`."""
from .base import Competition
from .registry import get, names, register

__all__ = ["Competition", "get", "names", "register"]
