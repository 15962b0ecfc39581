"""`podium report` and `podium runs` on the runs of a `podium demo`: the sections each plugin's report has,
the numbers in them, what a damaged or moved run gets, and the leaderboard of runs."""
import json
import shutil

import pandas as pd
import pytest

from podium.cli.main import main
from podium.competitions import get
from podium.report.page import report_after_run
from report_pages import copy_run, expected_confusion, keyed_cells

SECTIONS = {
    "dogs-vs-cats-redux": ["metrics", "learning-curves", "confusion", "calibration", "per-class", "top-losses", "config"],
    "state-farm": ["metrics", "learning-curves", "confusion", "calibration", "per-class", "per-group", "top-losses",
                   "pseudo-labels", "config"],
    "fisheries": ["metrics", "learning-curves", "confusion", "calibration", "per-class", "top-losses", "boxes", "config"],
    "movielens": ["metrics", "learning-curves", "rmse-by-count", "analysis", "recommendations", "config"],
}


def sections_of(html: str) -> dict:
    """section id -> whether it was left out."""
    found = {}
    for part in html.split('<section id="')[1:]:
        name, body = part.split('"', 1)
        found[name] = body.split("</h2>", 1)[1].lstrip().startswith('<p class="left-out">')
    return found


@pytest.mark.parametrize("competition", sorted(SECTIONS))
def test_the_demo_writes_a_small_self_contained_report_with_each_section(demo_runs, competition):
    report = demo_runs[competition] / "report.html"
    html = report.read_text()
    found = sections_of(html)
    left_out = [name for name in SECTIONS[competition] if found.get(name, True)]
    assert not left_out, f"{competition}: sections missing or left out: {left_out}"
    assert report.stat().st_size < 2_000_000
    assert "src=\"http" not in html and "href=\"http" not in html  # opens from disk, no network
    assert html.count('src="data:image/') >= 3


@pytest.mark.parametrize("competition", ["state-farm", "fisheries", "dogs-vs-cats-redux"])
def test_confusion_matrix_and_metrics_table_hold_the_run_s_numbers(demo_runs, competition):
    run_dir = demo_runs[competition]
    cells = keyed_cells((run_dir / "report.html").read_text()).tables
    assert cells["confusion-matrix"] == expected_confusion(run_dir, get(competition).classes)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    table = cells["metrics-table"]
    for key in ("val_log_loss", "oof_log_loss", "oof_log_loss_calibrated", "val_accuracy"):
        assert table[key] == f"{metrics[key]:.4f}", key


def test_movielens_report_scores_every_validation_rating(demo_runs):
    run_dir = demo_runs["movielens"]
    cells = keyed_cells((run_dir / "report.html").read_text()).tables
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert cells["metrics-table"]["val_rmse"] == f"{metrics['val_rmse']:.4f}"
    html = (run_dir / "report.html").read_text()
    rows = pd.read_csv(run_dir / "valid_predictions.csv")
    # Every validation rating falls in one activity bin: the bins' counts add up to them.
    by_user = html.split('id="rmse-by-userId"')[1].split("</table>")[0]
    counts = [int(part.split("<")[0]) for part in by_user.split('<td class="number">')[1::2]]
    assert sum(counts) == len(rows)


def test_report_command_on_a_run_without_its_data_or_oof_files_leaves_sections_out(demo_runs, tmp_path, capfd):
    run_dir = shutil.copytree(demo_runs["state-farm"], tmp_path / "copied-run")
    record = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**record, "data_dir": str(tmp_path / "elsewhere")}))
    for name in ("oof_predictions.csv", "calibration.json", "report.html"):
        (run_dir / name).unlink()
    assert main(["report", str(run_dir)]) == 0
    out = capfd.readouterr().out
    assert "left out Top losses: the run's data folder" in out and "is not on this machine" in out
    assert "left out Reliability before and after calibration: the run has no calibration.json" in out
    html = (run_dir / "report.html").read_text()
    found = sections_of(html)
    assert found["confusion"] is False and "hold-out predictions (valid_predictions.csv" in html  # the fallback
    assert found["top-losses"] is True and found["per-group"] is True

    (run_dir / "valid_predictions.csv").unlink()
    out_file = tmp_path / "elsewhere.html"
    assert main(["report", str(run_dir), "--out", str(out_file)]) == 0
    assert "left out Confusion matrix: the run has no valid_predictions.csv" in capfd.readouterr().out
    assert sections_of(out_file.read_text())["confusion"] is True


@pytest.mark.parametrize("damage, message", [
    ("incomplete", "did not finish"), ("no-metrics", "no metrics.json"), ("not-a-run", "not a podium run directory"),
    ("bad-json", "metrics.json"),
])
def test_a_run_that_is_not_finished_is_one_line(demo_runs, tmp_path, capfd, damage, message):
    run_dir = shutil.copytree(demo_runs["dogs-vs-cats-redux"], tmp_path / "run")
    if damage == "incomplete":
        (run_dir / "INCOMPLETE").write_text("started\n")
    elif damage == "no-metrics":
        (run_dir / "metrics.json").unlink()
    elif damage == "not-a-run":
        (run_dir / "config.json").unlink()
    else:
        (run_dir / "metrics.json").write_text('{"val_log_loss": ')
    assert main(["report", str(run_dir)]) == 2
    err = capfd.readouterr().err
    assert err.startswith("podium report: error:") and message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_an_older_run_with_other_columns_and_keys_gets_a_report(demo_runs, tmp_path):
    run_dir = shutil.copytree(demo_runs["fisheries"], tmp_path / "old-run")
    frame = pd.read_csv(run_dir / "oof_predictions.csv").drop(columns=["ALB"])
    frame.to_csv(run_dir / "oof_predictions.csv", index=False)
    config = json.loads((run_dir / "config.json").read_text())
    config.pop("report")
    (run_dir / "config.json").write_text(json.dumps(config))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    (run_dir / "metrics.json").write_text(json.dumps({"val_log_loss": metrics["val_log_loss"], "a_new_key": 3.5}))
    for history in run_dir.glob("history*.csv"):
        history.unlink()
    path = report_after_run(run_dir, config)
    html = path.read_text()
    found = sections_of(html)
    assert found["confusion"] is True and "oof_predictions.csv lacks the columns ALB" in html
    assert found["learning-curves"] is True and found["metrics"] is False
    assert keyed_cells(html).tables["other-metrics"]["a_new_key"] == "3.5000"
    assert "(absent: an older podium)" in html  # report.enabled, in the config differences


def test_report_enabled_false_writes_no_report(demo_runs, tmp_path):
    run_dir = shutil.copytree(demo_runs["dogs-vs-cats-redux"], tmp_path / "run")
    (run_dir / "report.html").unlink()
    assert report_after_run(run_dir, {"report": {"enabled": False}}) is None
    assert not (run_dir / "report.html").exists()


def test_report_enabled_is_a_checked_config_key(redux_data, capfd):
    assert main(["run", "dogs-vs-cats-redux", "--data", str(redux_data), "--set", "report.enabled=3"]) == 2
    assert "'report.enabled' must be bool" in capfd.readouterr().err


def test_runs_lists_finished_runs_best_first_with_what_differed(demo_runs, tmp_path, capfd):
    source, root = demo_runs["state-farm"], tmp_path / "runs" / "state-farm"
    root.mkdir(parents=True)
    best = copy_run(source, root, "20260101-000000-best", config={"train.lr": 0.01},
                    metrics={"oof_log_loss_calibrated_clipped": 0.5},
                    records=[{"time": "2026-01-01T00:00:00", "message": "try", "public_score": "0.61234"}])
    copy_run(source, root, "20260101-000001-worse", config={"train.lr": 0.003}, metrics={"oof_log_loss_calibrated_clipped": 0.9})
    broken = copy_run(source, root, "20260101-000002-broken")
    (broken / "INCOMPLETE").write_text("started\n")
    (root / "tuning").mkdir()  # a study folder is not a run

    assert main(["runs", "state-farm", "--out", str(tmp_path / "runs"), "--html", str(tmp_path / "runs.html")]) == 0
    out = capfd.readouterr().out.splitlines()
    header = out[0].split()
    assert header[:3] == ["run", "time", "train.lr"] and "oof_log_loss_calibrated_clipped" in header
    rows = [line for line in out if line.startswith("2026")]
    assert [row.split()[0] for row in rows] == ["20260101-000000-best", "20260101-000001-worse"]
    assert "0.61234" in rows[0] and "0.5000" in rows[0]
    assert out[out.index("unfinished (not compared):") + 1].split()[0] == "20260101-000002-broken"
    page = (tmp_path / "runs.html").read_text()
    assert 'href="runs/state-farm/20260101-000000-best/report.html"' in page and "Unfinished runs" in page

    assert main(["runs", "state-farm", "--out", str(tmp_path / "runs"), "--sort", "train.lr"]) == 0
    rows = [line for line in capfd.readouterr().out.splitlines() if line.startswith("2026")]
    assert [row.split()[0] for row in rows] == ["20260101-000001-worse", "20260101-000000-best"]
    # The run's own report shows the public score of its recorded submission.
    assert main(["report", str(best)]) == 0
    assert keyed_cells((best / "report.html").read_text()).tables["metrics-table"]["public_score"] == "0.61234"


def test_runs_refuses_an_unknown_sort_key_and_a_competition_without_runs(demo_runs, tmp_path, capfd):
    root = tmp_path / "runs" / "state-farm"
    root.mkdir(parents=True)
    copy_run(demo_runs["state-farm"], root, "one")
    assert main(["runs", "state-farm", "--out", str(tmp_path / "runs"), "--sort", "nonsense"]) == 2
    assert "--sort nonsense: not a column" in capfd.readouterr().err
    assert main(["runs", "fisheries", "--out", str(tmp_path / "runs")]) == 2
    assert "no runs of fisheries" in capfd.readouterr().err
