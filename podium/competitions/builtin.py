"""Imports every built-in plugin so that each registers itself."""
from podium.competitions import dogs_vs_cats  # noqa: F401
from podium.competitions import fisheries  # noqa: F401
from podium.competitions import movielens  # noqa: F401
from podium.competitions import state_farm  # noqa: F401
