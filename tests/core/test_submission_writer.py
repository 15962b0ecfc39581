"""The writer validates before writing, never leaves a partial file, never overwrites."""
import numpy as np
import pandas as pd
import pytest

from podium.competitions import get
from podium.errors import PodiumError
from podium.submission.validate import validate_file
from podium.core.writer import write_submission

PLUGIN = get("dogs-vs-cats-redux")


def write_competition(folder, n_test=4):
    (folder / "train").mkdir(parents=True)
    (folder / "test").mkdir()
    for kind in ("cat", "dog"):
        (folder / "train" / f"{kind}.0.jpg").write_bytes(b"")
    for n in range(1, n_test + 1):
        (folder / "test" / f"{n}.jpg").write_bytes(b"")
    return folder


def probabilities(p_dog):
    p_dog = np.asarray(p_dog, dtype=float)
    return np.column_stack([1 - p_dog, p_dog])


def test_writes_a_valid_submission_with_precise_values(tmp_path):
    data = write_competition(tmp_path / "data")
    frame = PLUGIN.submission_frame(["1", "2", "3", "4"], probabilities([0.05, 0.123456789, 1e-7, 0.95]))
    path = write_submission(PLUGIN, frame, tmp_path / "out" / "submission.csv", data_dir=data)
    lines = path.read_text().splitlines()
    assert lines[0] == "id,label" and len(lines) == 5
    assert lines[1] == "1,0.05" and lines[2] == "2,0.12345679"
    assert float(lines[3].split(",")[1]) == pytest.approx(1e-7)  # tiny probabilities keep their digits
    assert validate_file(PLUGIN, path, data) == []
    assert sorted(p.name for p in path.parent.iterdir()) == ["submission.csv"]


def test_invalid_frame_is_refused_and_nothing_is_written(tmp_path):
    path = tmp_path / "submission.csv"
    frame = pd.DataFrame({"id": [1, 2, 2], "label": [0.5, np.nan, 1.5]})
    with pytest.raises(PodiumError) as error:
        write_submission(PLUGIN, frame, path)
    message = str(error.value)
    assert str(path) in message and "not written" in message
    assert "duplicate ids" in message and "NaN" in message and "outside [0, 1]" in message
    assert list(tmp_path.iterdir()) == []


def test_missing_test_id_is_refused_only_with_the_data_folder(tmp_path):
    data = write_competition(tmp_path / "data")
    frame = PLUGIN.submission_frame(["1", "2", "3"], probabilities([0.2, 0.4, 0.6]))
    with pytest.raises(PodiumError, match="'4'"):
        write_submission(PLUGIN, frame, tmp_path / "checked.csv", data_dir=data)
    assert not (tmp_path / "checked.csv").exists()
    assert write_submission(PLUGIN, frame, tmp_path / "unchecked.csv").is_file()


def test_many_reasons_are_cut_to_the_first_ten(tmp_path):
    frame = pd.DataFrame({"id": [1, 2], "label": [0.5, 0.5]})
    reasons = [f"reason {n}" for n in range(25)]

    class Picky(type(PLUGIN)):
        def validate_submission(self, frame, data_dir=None):
            return reasons

    with pytest.raises(PodiumError) as error:
        write_submission(Picky(), frame, tmp_path / "s.csv")
    message = str(error.value)
    assert "25 problem(s)" in message and "reason 9" in message and "reason 10" not in message
    assert "15 more" in message


def test_existing_file_is_never_overwritten(tmp_path):
    path = tmp_path / "submission.csv"
    path.write_text("my precious submission\n")
    frame = PLUGIN.submission_frame(["1", "2"], probabilities([0.3, 0.7]))
    with pytest.raises(PodiumError, match="already exists"):
        write_submission(PLUGIN, frame, path)
    assert path.read_text() == "my precious submission\n"
    assert list(tmp_path.iterdir()) == [path]
