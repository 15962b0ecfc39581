"""Every way a Kaggle submission is rejected is caught, with a message that says where."""
import math

import numpy as np
import pandas as pd

from podium.competitions import get
from podium.cli.main import main
from podium.core.submission_format import validate_frame
from podium.submission.validate import validate_file

HEADER = ["id", "label"]
MULTI = ["img", "c0", "c1", "c2"]


def binary(ids, values):
    return pd.DataFrame({"id": ids, "label": values})


def multi(rows):
    frame = pd.DataFrame(rows, columns=MULTI[1:])
    frame.insert(0, "img", [f"img_{n}.jpg" for n in range(len(rows))])
    return frame


def test_valid_frame_has_no_reasons_and_ids_match_as_text():
    frame = binary([1, 2, 3], [0.1, 0.5, 1.0])
    assert validate_frame(frame, HEADER, expected_ids=["3", "1", "2"]) == []
    rows = [[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]]
    assert validate_frame(multi(rows), MULTI, expected_ids=["img_0.jpg", "img_1.jpg"], rows_sum_to_one=True) == []


def test_header_in_the_wrong_order():
    frame = binary([1, 2], [0.1, 0.2])[["label", "id"]]
    reasons = validate_frame(frame, HEADER)
    assert len(reasons) == 1
    assert "'label,id'" in reasons[0] and "'id,label'" in reasons[0] and "wrong order" in reasons[0]


def test_header_with_pandas_index_column_names_the_fix():
    frame = binary([1, 2], [0.1, 0.2]).reset_index().rename(columns={"index": "Unnamed: 0"})
    reasons = validate_frame(frame, HEADER)
    assert any("unexpected ['Unnamed: 0']" in r and "index=False" in r for r in reasons)


def test_missing_column_is_named():
    frame = pd.DataFrame({"id": [1, 2]})
    assert any("missing ['label']" in r for r in validate_frame(frame, HEADER))


def test_missing_id_is_named_with_the_row_count():
    reasons = validate_frame(binary([1, 2, 3, 4], [0.5] * 4), HEADER, expected_ids=[1, 2, 3, 4, 5])
    assert any("4 rows, expected 5" in r for r in reasons)
    assert any("1 test ids missing" in r and "'5'" in r for r in reasons)


def test_unexpected_id_is_named_with_its_row():
    reasons = validate_frame(binary([1, 2, 99], [0.5] * 3), HEADER, expected_ids=["1", "2", "3"])
    assert any("not test ids" in r and "'99'" in r and "row 3" in r for r in reasons)
    assert any("'3'" in r and "missing" in r for r in reasons)


def test_duplicate_id_names_both_rows():
    reasons = validate_frame(binary([1, 2, 2, 4], [0.5] * 4), HEADER, expected_ids=[1, 2, 3, 4])
    assert any("1 duplicate ids" in r and "'2'" in r and "rows 2 and 3" in r for r in reasons)
    assert any("'3'" in r and "missing" in r for r in reasons)


def test_nan_and_infinite_values():
    reasons = validate_frame(binary([1, 2, 3], [0.5, math.nan, math.inf]), HEADER, value_range=None)
    assert any("1 missing/NaN" in r and "row 2 (id '2')" in r for r in reasons)
    assert any("1 infinite" in r and "row 3 (id '3')" in r for r in reasons)


def test_non_numeric_value_is_quoted():
    reasons = validate_frame(binary([1, 2], ["0.5", "dog"]), HEADER)
    assert reasons == ["column 'label': 1 non-numeric values, first 'dog' at row 2 (id '2')"]


def test_values_outside_the_range():
    reasons = validate_frame(binary([1, 2, 3], [0.5, 1.5, -0.1]), HEADER)
    assert reasons == ["column 'label': 2 values outside [0, 1], first 1.5 at row 2 (id '2')"]
    assert validate_frame(binary([1, 2], [3.5, 5.0]), HEADER, value_range=None) == []
    assert validate_frame(binary([1, 2], [3.5, 6.0]), HEADER, value_range=(0.5, 5.0))


def test_wrong_row_count_alone():
    reasons = validate_frame(binary([1, 2], [0.5, 0.5]), HEADER, expected_ids=[1, 2, 2])
    assert "2 rows, expected 3 (one per test id)" in reasons


def test_rows_not_summing_to_one():
    rows = [[0.2, 0.3, 0.5], [0.2, 0.3, 0.3], [0.3333, 0.3333, 0.3333]]
    reasons = validate_frame(multi(rows), MULTI, rows_sum_to_one=True)
    assert reasons == ["1 rows do not sum to 1 (tolerance 0.001), first row 2 (id 'img_1.jpg') sums to 0.8"]
    assert validate_frame(multi(rows[:1] + rows[2:]), MULTI, rows_sum_to_one=True) == []


def test_empty_frame():
    assert validate_frame(binary([], []), HEADER) == ["the submission has no rows"]


def write_competition(folder, n_test=5):
    (folder / "train").mkdir(parents=True)
    (folder / "test").mkdir()
    for n in range(2):
        (folder / "train" / f"cat.{n}.jpg").write_bytes(b"")
        (folder / "train" / f"dog.{n}.jpg").write_bytes(b"")
    for n in range(1, n_test + 1):
        (folder / "test" / f"{n}.jpg").write_bytes(b"")
    return folder


def test_validate_file_reads_csv_and_checks_against_the_test_folder(tmp_path):
    plugin = get("dogs-vs-cats-redux")
    data = write_competition(tmp_path / "data")
    good = tmp_path / "good.csv"
    binary(range(1, 6), np.linspace(0.1, 0.9, 5)).to_csv(good, index=False)
    assert validate_file(plugin, good) == []
    assert validate_file(plugin, good, data) == []
    short = tmp_path / "short.csv"
    binary(range(1, 5), [0.5] * 4).to_csv(short, index=False)
    assert validate_file(plugin, short) == []  # without the data folder the id set cannot be known
    assert any("'5'" in r for r in validate_file(plugin, short, data))


def test_validate_file_unreadable_files_name_the_file(tmp_path):
    plugin = get("dogs-vs-cats-redux")
    missing = tmp_path / "nope.csv"
    assert validate_file(plugin, missing) == [f"{missing} not found"]
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert validate_file(plugin, empty) == [f"{empty} is empty (no header, no rows)"]
    binary_file = tmp_path / "zipped.csv"
    binary_file.write_bytes(b"PK\x03\x04\xff\xfe\x00\x81")
    [reason] = validate_file(plugin, binary_file)
    assert str(binary_file) in reason


def test_cli_validate_exit_codes(tmp_path, capsys):
    data = write_competition(tmp_path / "data")
    good = tmp_path / "good.csv"
    good.write_text("id,label\n1,0.1\n2,0.2\n3,0.3\n4,0.4\n5,0.5\n")
    assert main(["validate", "dogs-vs-cats-redux", str(good), "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert f"valid: {good} (5 rows)" in out and "not checked" not in out

    assert main(["validate", "dogs-vs-cats-redux", str(good)]) == 0
    assert "ids were not checked" in capsys.readouterr().out

    bad = tmp_path / "bad.csv"
    bad.write_text("label,id\n0.1,1\n7,2\n")
    assert main(["validate", "dogs-vs-cats-redux", str(bad), "--data", str(data)]) == 1
    out = capsys.readouterr().out
    assert f"invalid: {bad}" in out and "wrong order" in out and "outside [0, 1]" in out and "missing" in out

    assert main(["validate", "no-such-competition", str(good)]) == 2
    assert "unknown competition" in capsys.readouterr().err
