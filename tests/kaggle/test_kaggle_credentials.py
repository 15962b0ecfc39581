"""Credentials and Kaggle's errors: one clear line each, and the key never shown or stored."""
import json
from pathlib import Path

import pytest
from kaggle_fake_server import KEY, USERNAME, fake_kaggle, write_kaggle_json, zip_bytes

from podium.cli.main import main

SLUG = "dogs-vs-cats-redux-kernels-edition"
ARCHIVE = zip_bytes({"train/cat.0.jpg": b"c", "train/dog.0.jpg": b"d", "test/1.jpg": b"t",
                     "sample_submission.csv": b"id,label\n1,0.5\n"})


@pytest.fixture
def kaggle(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with fake_kaggle(monkeypatch, tmp_path) as server:
        server.add_competition(SLUG, ARCHIVE)
        yield server


def error_line(capfd) -> str:
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("podium ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_missing_credentials_say_exactly_where_to_put_them(kaggle, tmp_path, capfd):
    kaggle_json = tmp_path / "kaggle-config" / "kaggle.json"
    kaggle_json.unlink()

    assert main(["download", "dogs-vs-cats-redux"]) == 2

    line = error_line(capfd)
    assert line.startswith("podium download: error: no Kaggle credentials")
    assert f"save the kaggle.json it gives you as {kaggle_json}" in line
    assert "KAGGLE_USERNAME and KAGGLE_KEY" in line
    assert kaggle.requests == []


def test_credentials_from_the_environment_are_used(kaggle, tmp_path, monkeypatch):
    (tmp_path / "kaggle-config" / "kaggle.json").unlink()
    monkeypatch.setenv("KAGGLE_USERNAME", USERNAME)
    monkeypatch.setenv("KAGGLE_KEY", KEY)

    assert main(["download", "dogs-vs-cats-redux", "--to", "d"]) == 0
    assert Path("d/train/cat.0.jpg").read_bytes() == b"c"


@pytest.mark.parametrize("argv, method, status, message, headers, expected", [
    (["download", "dogs-vs-cats-redux"], "DownloadDataFiles", 403,
     "You must accept this competition's rules before you'll be able to download files", {},
     f"(HTTP 403: You must accept this competition's rules before you'll be able to download files); "
     f"accept the competition's rules at https://www.kaggle.com/competitions/{SLUG}/rules and retry"),
    (["submissions", "dogs-vs-cats-redux"], "ListSubmissions", 429, "Too many requests", {"Retry-After": "30"},
     "Kaggle is rate limiting requests (HTTP 429) while trying to list the submissions to "
     f"{SLUG}; retry in 30 s"),
    (["submit", "dogs-vs-cats-redux", "sub.csv", "-m", "m"], "CreateSubmission", 400,
     "Submission not allowed: your team has used its daily allowance (5)", {},
     f"Kaggle answered HTTP 400 while trying to submit sub.csv to {SLUG}: "
     "Submission not allowed: your team has used its daily allowance (5)"),
])
def test_kaggle_errors_are_one_clear_line(kaggle, capfd, argv, method, status, message, headers, expected):
    Path("sub.csv").write_text("id,label\n1,0.4\n")
    kaggle.failures[method] = (status, message, headers)

    assert main(argv) == 2

    line = error_line(capfd)
    assert line.startswith(f"podium {argv[0]}: error: ") and line.endswith(expected)
    assert method in kaggle.api_calls()
    assert not Path("data").exists() and not Path("runs").exists()  # nothing half-written


def test_a_wrong_key_is_reported_as_rejected_credentials(kaggle, capfd):
    kaggle.credentials = (USERNAME, "a-different-key-entirely")

    assert main(["submissions", "dogs-vs-cats-redux"]) == 2
    assert "Kaggle rejected the credentials (HTTP 401)" in error_line(capfd)


def test_an_unreachable_kaggle_is_one_clear_line(kaggle, monkeypatch, capfd):
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there

    assert main(["submissions", "dogs-vs-cats-redux"]) == 2
    assert f"error: cannot reach Kaggle to list the submissions to {SLUG}: " in error_line(capfd)


def test_the_key_never_shows_in_output_or_records(kaggle, tmp_path, capfd):
    write_kaggle_json(tmp_path / "kaggle-config", mode=0o644)  # readable by others: warned about
    Path("sub.csv").write_text("id,label\n1,0.4\n")

    assert main(["download", "dogs-vs-cats-redux"]) == 0
    assert main(["submit", "dogs-vs-cats-redux", "sub.csv", "-m", "first"]) == 0
    assert main(["submissions", "dogs-vs-cats-redux"]) == 0
    kaggle.failures["DownloadDataFiles"] = (500, f"internal error for key {KEY}", {})
    assert main(["download", "dogs-vs-cats-redux", "--force"]) == 2

    captured = capfd.readouterr()
    output = captured.out + captured.err
    assert "kaggle.json holds your Kaggle key and is readable by other users; run `chmod 600" in output
    assert "internal error for key ***" in output
    assert KEY not in output
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "kaggle.json"]
    assert Path("runs/dogs-vs-cats-redux/submissions.jsonl") in [p.relative_to(tmp_path) for p in written]
    assert not [p for p in written if KEY.encode() in p.read_bytes()]
    assert json.loads(Path("runs/dogs-vs-cats-redux/submissions.jsonl").read_text())["message"] == "first"
