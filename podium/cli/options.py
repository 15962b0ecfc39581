"""Arguments that many commands share, spelled once."""
from pathlib import Path


def add_competition_arguments(parser) -> None:
    parser.add_argument("competition", help="a registered competition (see `podium competitions`)")
    parser.add_argument("--data", required=True, type=Path, help="folder with the competition's raw files")


def add_config_arguments(parser) -> None:
    parser.add_argument("--config", action="append", default=[], type=Path, metavar="FILE",
                        help="config file (.toml or .json); repeatable, later files win")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="sets",
                        help="override one config value, e.g. --set train.lr=0.001; repeatable")
