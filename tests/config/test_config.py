import json

import pytest

from podium.errors import PodiumError
from podium.config import IMAGE_DEFAULTS, parse_set, resolve


def test_set_overrides_are_typed_and_nested():
    config = resolve(IMAGE_DEFAULTS, sets=["train.lr=0.01", "head.kind=dense", "image.size=[96,128]", "train.epochs=3"])
    assert config["train"]["lr"] == 0.01
    assert config["head"]["kind"] == "dense"
    assert config["image"]["size"] == [96, 128]
    assert config["train"]["epochs"] == 3
    assert IMAGE_DEFAULTS["train"]["lr"] == 1e-3  # defaults untouched


def test_ints_widen_to_floats_but_strings_do_not_become_numbers():
    assert resolve(IMAGE_DEFAULTS, sets=["train.lr=1"])["train"]["lr"] == 1.0
    with pytest.raises(PodiumError, match="train.epochs"):
        resolve(IMAGE_DEFAULTS, sets=["train.epochs=many"])


def test_unknown_key_is_named():
    with pytest.raises(PodiumError, match="unknown config key 'train.lrate'"):
        resolve(IMAGE_DEFAULTS, sets=["train.lrate=0.1"])


def test_files_then_sets_in_order(tmp_path):
    toml = tmp_path / "a.toml"
    toml.write_text('seed = 7\n[train]\nlr = 0.5\nepochs = 2\n')
    js = tmp_path / "b.json"
    js.write_text(json.dumps({"train": {"epochs": 9}}))
    config = resolve(IMAGE_DEFAULTS, files=[toml, js], sets=["train.lr=0.25"])
    assert (config["seed"], config["train"]["epochs"], config["train"]["lr"]) == (7, 9, 0.25)


def test_bad_file_and_bad_set_syntax_are_clear(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\n")
    with pytest.raises(PodiumError, match="bad.toml"):
        resolve(IMAGE_DEFAULTS, files=[bad])
    with pytest.raises(PodiumError, match="not found"):
        resolve(IMAGE_DEFAULTS, files=[tmp_path / "missing.toml"])
    with pytest.raises(PodiumError, match="key=value"):
        parse_set("train.lr")


def test_a_free_section_is_replaced_whole_by_each_file(tmp_path):
    defaults = {"seed": 0, "tune": {"space": {"__free__": True, "train.lr": {"low": 1e-4}}}}
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({"tune": {"space": {"head.dropout": {"low": 0.1}}}}))
    second.write_text(json.dumps({"tune": {"space": {"train.epochs": {"low": 2}}}}))
    space = resolve(defaults, files=[first, second])["tune"]["space"]
    assert set(space) - {"__free__"} == {"train.epochs"}
