"""The reports of the demo runs in a real browser (headless Chromium, driven from its command line): no console
error, every image loaded, the confusion matrix and metrics table as the run's files say; a screenshot of
each plugin's report is kept (folder: $PODIUM_SCREENSHOTS, else the test's tmp folder) and its path printed.
Skipped, with the reason, where no Chromium is installed (.ci/run installs Debian's `chromium`)."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from podium.cli.main import main
from podium.competitions import get
from report_pages import copy_run, expected_confusion, keyed_cells

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason=f"no headless browser installed (looked for {', '.join(BROWSERS)}; "
                                                       "Debian: apt-get install chromium)")


def chromium(page: Path, profile: Path, *flags, anchor: str = "") -> subprocess.CompletedProcess:
    """Open `page` (+ `anchor`) headless; console messages go to stderr (`--enable-logging=stderr`)."""
    command = [BROWSER, "--headless", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
               "--no-first-run", "--enable-logging=stderr", "--v=0", f"--user-data-dir={profile}",
               "--virtual-time-budget=10000", *flags, page.resolve().as_uri() + anchor]
    if os.geteuid() == 0:
        command.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    folder = Path(os.environ.get("PODIUM_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize("competition", ["dogs-vs-cats-redux", "state-farm", "fisheries", "movielens"])
def test_report_loads_in_chromium_with_every_image_and_the_run_s_numbers(demo_runs, competition, tmp_path, screenshots):
    run_dir = demo_runs[competition]
    page = run_dir / "report.html"
    opened = chromium(page, tmp_path / "profile", "--dump-dom")
    assert opened.returncode == 0, opened.stderr[-2000:]
    assert not console_lines(opened.stderr), console_lines(opened.stderr)
    dom = keyed_cells(opened.stdout)
    assert dom.check.get("state") == "ok", dom.check  # written by the page's own script once loaded
    assert int(dom.check["images"]) >= 3 and dom.check["broken"] == "0" and dom.check["errors"] == "0"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    main_key = "val_rmse" if competition == "movielens" else "val_log_loss"
    assert dom.tables["metrics-table"][main_key] == f"{metrics[main_key]:.4f}"
    if competition != "movielens":
        assert dom.tables["confusion-matrix"] == expected_confusion(run_dir, get(competition).classes)

    shot = screenshots / f"report-{competition}.png"
    taken = chromium(page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,6000")
    assert taken.returncode == 0 and shot.stat().st_size > 20_000, taken.stderr[-2000:]
    print(f"screenshot of the {competition} report: {shot}")


def test_runs_page_loads_links_each_run_s_report_and_sorts(demo_runs, tmp_path, screenshots, capfd):
    root = tmp_path / "runs" / "state-farm"
    root.mkdir(parents=True)
    for name, lr, loss in (("20260101-000000-a", 0.01, 0.9), ("20260101-000001-b", 0.003, 0.5), ("20260101-000002-c", 0.03, 0.7)):
        copy_run(demo_runs["state-farm"], root, name, config={"train.lr": lr}, metrics={"oof_log_loss_calibrated_clipped": loss})
    (copy_run(demo_runs["state-farm"], root, "20260101-000003-stopped") / "INCOMPLETE").write_text("started\n")
    page = tmp_path / "runs.html"
    assert main(["runs", "state-farm", "--out", str(tmp_path / "runs"), "--html", str(page)]) == 0
    capfd.readouterr()
    opened = chromium(page, tmp_path / "profile", "--dump-dom")
    assert opened.returncode == 0 and not console_lines(opened.stderr), opened.stderr[-2000:]
    links = [part.split('"')[0] for part in opened.stdout.split('<a href="')[1:]]
    assert [Path(link).parent.name for link in links] == ["20260101-000001-b", "20260101-000002-c", "20260101-000000-a"]
    assert all((page.parent / link).resolve().is_file() for link in links)
    # The page's own sort (a click on the header, here through the address): by train.lr, smallest first.
    page_sorted = chromium(Path(str(page)), tmp_path / "profile", "--dump-dom", anchor="#sort=train.lr")
    links = [part.split('"')[0] for part in page_sorted.stdout.split('<a href="')[1:]]
    assert [Path(link).parent.name for link in links] == ["20260101-000001-b", "20260101-000000-a", "20260101-000002-c"]
    shot = screenshots / "runs-state-farm.png"
    assert chromium(page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,420").returncode == 0
    print(f"screenshot of the runs page: {shot}")
