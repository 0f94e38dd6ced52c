from __future__ import annotations

import json

import pytest

from vulnsteer.errors import DataError
from vulnsteer.experiments.context import RunDir, load_records


def test_run_dir_writes_valid_json_with_nan_as_null(tmp_path):
    run = RunDir.create(tmp_path / "r", "test", {"x": 1})
    run.write_json("a/b.json", {"v": float("nan"), "w": [1.0, float("inf")]})
    assert json.loads((tmp_path / "r" / "a" / "b.json").read_text()) == {"v": None, "w": [1.0, None]}
    run.write_jsonl("c.jsonl", [{"a": 1}, {"a": float("nan")}])
    assert [json.loads(x) for x in (tmp_path / "r" / "c.jsonl").read_text().splitlines()] == [{"a": 1}, {"a": None}]
    run.stage("load", 1.234)
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["stages"] == {"load": 1.23} and config["command"] == "test" and config["x"] == 1
    assert not list((tmp_path / "r").rglob("*.tmp"))


def test_load_records_by_subset_name_and_path(data_root, tmp_path):
    assert len(load_records(data_root, ["hand-crafted"])) == 48
    assert len(load_records(data_root, ["hand-crafted"], ["CWE-787"])) == 6
    pairs = tmp_path / "mine.jsonl"
    pairs.write_text(json.dumps({"id": "a", "cwe": "CWE-79", "language": "python", "vulnerable": "x = 1",
                                 "secure": "x = 2"}) + "\n")
    assert len(load_records(data_root, [str(pairs)])) == 2
    with pytest.raises(DataError, match="unknown subset"):
        load_records(data_root, ["handcrafted"])
