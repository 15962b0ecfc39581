"""The one exception the CLI turns into a single clear line and a non-zero exit."""


class PodiumError(Exception):
    """A user-facing problem: bad input, a missing file, an invalid option."""
