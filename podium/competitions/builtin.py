"""Imports every built-in plugin so that each registers itself."""
from . import dogs_vs_cats  # noqa: F401
from . import fisheries  # noqa: F401
from . import movielens  # noqa: F401
from . import state_farm  # noqa: F401
