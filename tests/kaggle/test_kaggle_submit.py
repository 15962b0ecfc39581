"""`podium submit` and `podium submissions` against a fake Kaggle on 127.0.0.1, with the real client."""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kaggle_fake_server import fake_kaggle

from podium.cli.main import main

SLUG = "dogs-vs-cats-redux-kernels-edition"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def kaggle(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with fake_kaggle(monkeypatch, tmp_path) as server:
        yield server


def make_run(root: Path, data_dir: Path, run_id: str = "20260101-120000-s0") -> Path:
    """A run directory as the pipeline leaves it, with a valid submission for the 40 test images."""
    run_dir = root / "dogs-vs-cats-redux" / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"seed": 0}))
    (run_dir / "run.json").write_text(json.dumps({"competition": "dogs-vs-cats-redux", "data_dir": str(data_dir)}))
    rows = "".join(f"{i},{0.1 + 0.8 * (i % 2):.2f}\n" for i in range(1, 41))
    (run_dir / "submission.csv").write_text("id,label\n" + rows)
    return run_dir


def test_submit_sends_the_exact_file_and_records_it_in_its_run(kaggle, tmp_path, redux_data, capfd):
    run_dir = make_run(tmp_path / "runs", redux_data)
    submission = run_dir / "submission.csv"

    assert main(["submit", "dogs-vs-cats-redux", str(submission), "-m", "vgg16 head, 2 TTA views"]) == 0

    assert "kaggle: Successfully submitted to Fake Competition" in capfd.readouterr().out
    assert kaggle.api_calls() == ["StartSubmissionUpload", "CreateSubmission"]
    start = kaggle.body_of("StartSubmissionUpload")
    assert (start["competitionName"], start["fileName"], start["contentLength"]) == (SLUG, "submission.csv", submission.stat().st_size)
    assert kaggle.blobs == {"blob-1": submission.read_bytes()}
    assert kaggle.created == [{"competitionName": SLUG, "blobFileTokens": "blob-1",
                               "submissionDescription": "vgg16 head, 2 TTA views"}]
    [record] = [json.loads(line) for line in (run_dir / "submissions.jsonl").read_text().splitlines()]
    assert record["sha256"] == hashlib.sha256(submission.read_bytes()).hexdigest()
    assert record["run_id"] == run_dir.name
    assert record["message"] == "vgg16 head, 2 TTA views"
    assert record["kaggle"] == "Successfully submitted to Fake Competition"
    assert record["competition"] == "dogs-vs-cats-redux" and record["time"]

    # The listing shows Kaggle's scores and which run each submission came from.
    kaggle.submissions.append({"ref": 7, "date": "2025-12-31T23:00:00.000Z", "status": "COMPLETE",
                               "publicScore": "0.06123", "privateScore": "0.06345",
                               "description": "an older try", "fileName": "old.csv"})
    kaggle.submissions.append({"ref": 6, "date": "2025-12-30T23:00:00.000Z", "status": "ERROR",
                               "errorDescription": "Could not parse the header", "description": "broken"})
    assert main(["submissions", "dogs-vs-cats-redux"]) == 0
    lines = capfd.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["date", "status", "public", "private"]
    [new] = [line for line in lines if "vgg16 head" in line]
    assert "pending" in new and run_dir.name in new
    [old] = [line for line in lines if "an older try" in line]
    assert "complete" in old and "0.06123" in old and "0.06345" in old
    [broken] = [line for line in lines if "broken" in line]
    assert "error" in broken and "(error: Could not parse the header)" in broken

    # Once Kaggle has scored it, the listing keeps the scores in the run's record (its report shows them offline).
    ours = next(item for item in kaggle.submissions if item.get("description") == "vgg16 head, 2 TTA views")
    ours.update({"status": "COMPLETE", "publicScore": "0.05432", "privateScore": "0.05501"})
    assert main(["submissions", "dogs-vs-cats-redux"]) == 0
    [record] = [json.loads(line) for line in (run_dir / "submissions.jsonl").read_text().splitlines()]
    assert (record["public_score"], record["private_score"]) == ("0.05432", "0.05501")
    assert record["sha256"] == hashlib.sha256(submission.read_bytes()).hexdigest()  # the rest kept as it was


def test_a_file_outside_any_run_is_recorded_under_the_runs_root(kaggle, tmp_path, redux_data):
    loose = tmp_path / "elsewhere" / "blend.csv"
    loose.parent.mkdir()
    loose.write_bytes((make_run(tmp_path / "runs", redux_data) / "submission.csv").read_bytes())

    assert main(["submit", "dogs-vs-cats-redux", str(loose), "-m", "blend", "--runs", "other-runs"]) == 0

    [record] = [json.loads(line) for line in Path("other-runs/dogs-vs-cats-redux/submissions.jsonl").read_text().splitlines()]
    assert record["run_id"] is None and record["message"] == "blend"
    assert kaggle.blobs == {"blob-1": loose.read_bytes()}


def test_a_failed_upload_submits_nothing_and_records_nothing(kaggle, tmp_path, redux_data, capfd):
    run_dir = make_run(tmp_path / "runs", redux_data)
    kaggle.failures["upload"] = (403, "signed URL expired", {})

    assert main(["submit", "dogs-vs-cats-redux", str(run_dir / "submission.csv"), "-m", "try"]) == 2

    assert "the upload of" in capfd.readouterr().err
    assert "CreateSubmission" not in kaggle.api_calls()
    assert not (run_dir / "submissions.jsonl").exists()


def test_an_invalid_file_is_refused_before_any_request(kaggle, tmp_path, redux_data, capfd):
    run_dir = make_run(tmp_path / "runs", redux_data)
    bad = run_dir / "submission.csv"
    bad.write_text("id,dog\n1,0.5\n1,1.5\n")
    (tmp_path / "kaggle-config" / "kaggle.json").unlink()  # the check needs no credentials either

    assert main(["submit", "dogs-vs-cats-redux", str(bad), "-m", "oops"]) == 2

    err = capfd.readouterr().err
    assert err.startswith(f"podium submit: error: {bad} is not a valid dogs-vs-cats-redux submission")
    assert "header is 'id,dog', expected 'id,label'" in err
    assert "test ids missing" in err  # checked against the run's data folder
    assert kaggle.requests == []
    assert not (run_dir / "submissions.jsonl").exists()


def test_commands_that_do_not_talk_to_kaggle_never_import_the_client(tmp_path, redux_data):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,label\n1,2.0\n")
    script = (
        "import sys\n"
        "from podium.cli.main import main\n"
        f"main(['competitions'])\n"
        f"main(['validate', 'dogs-vs-cats-redux', {str(bad)!r}])\n"
        f"main(['submit', 'dogs-vs-cats-redux', {str(bad)!r}, '-m', 'x', '--data', {str(redux_data)!r}])\n"
        "print('loaded:', sorted(m for m in sys.modules if m.split('.')[0] in ('kaggle', 'kagglesdk')))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_")}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env={**env, "PYTHONPATH": str(REPO)},
                            capture_output=True, text=True, timeout=120)
    assert "podium submit: error:" in result.stderr, result.stderr
    assert result.stdout.splitlines()[-1] == "loaded: []"
