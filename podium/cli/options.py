"""Arguments that many commands share, spelled once, and the checks of paths made before any work."""
import argparse
from pathlib import Path


def add_competition_arguments(parser) -> None:
    parser.add_argument("competition", help="a registered competition (see `podium competitions`)")
    parser.add_argument("--data", required=True, type=Path, help="folder with the competition's raw files")


def add_config_arguments(parser) -> None:
    parser.add_argument("--config", action="append", default=[], type=Path, metavar="FILE",
                        help="config file (.toml or .json); repeatable, later files win")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="sets",
                        help="override one config value, e.g. --set train.lr=0.001; repeatable")


def count(low: int):
    """An argparse type: a whole number >= `low` (argparse prints one usage line and exits 2 otherwise)."""
    def parse(text: str) -> int:
        digits = text.strip().removeprefix("-")
        if not (digits.isascii() and digits.isdigit()):  # int() also takes "٣", "1_000" and " 3"
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    return parse


def record_id(text: str) -> int:
    """An argparse type: an id as the ratings file keeps them, a whole number within 64 bits."""
    digits = text.strip().removeprefix("-")
    if not (digits.isascii() and digits.isdigit()):
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise argparse.ArgumentTypeError(f"{text} is beyond the 64-bit integers ids are kept in")
    return value


def check_folder(path: Path, option: str) -> Path:
    """Refuse, before any work, a folder option that names a file (or lies under one)."""
    from podium.errors import PodiumError

    from podium.files import name_option, os_faults

    path = name_option(Path(path), option)
    with os_faults(option=option):  # e.g. a name longer than the file system allows
        for part in (path, *path.parents):
            if part.exists() and not part.is_dir():
                raise PodiumError(f"{option} {path}: {part} is a file; name a folder")
    return path


def check_config_paths(config: dict) -> dict:
    """The config's folders (paths.cache), checked before any work."""
    paths = config.get("paths") or {}
    if isinstance(paths.get("cache"), str):
        check_folder(Path(paths["cache"]), "paths.cache")
    return config
