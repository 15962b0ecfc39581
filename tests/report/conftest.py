"""One `podium demo` (every plugin, its reports written at the end of each run) shared by the report tests."""
import pytest


@pytest.fixture(scope="session")
def demo_runs(tmp_path_factory):
    """competition -> run directory of a `podium demo` run of every registered plugin."""
    from podium.cli.main import main
    from podium.competitions import names

    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--out", str(out)]) == 0
    return {name: next((out / "runs" / name).iterdir()) for name in names()}
