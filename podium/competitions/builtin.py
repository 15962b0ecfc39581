"""Imports every built-in plugin so that each registers itself."""
from . import dogs_vs_cats  # noqa: F401
