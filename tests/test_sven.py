"""SVEN loader: two records per line, commit groups, normalised CWEs; malformed lines."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from vulnsteer.data.records import SECURE, VULNERABLE
from vulnsteer.data.sven import SAME_CODE_FLAG, language_from_path, load_sven
from vulnsteer.errors import DataError


@pytest.fixture(scope="module")
def records(data_root):
    if not (data_root / "sven" / "train").is_dir():
        pytest.skip(f"SVEN not under {data_root}: put SVEN's data_train_val/train/*.jsonl in {data_root}/sven/train "
                    "(docs/DATA_FORMAT.md)")
    return load_sven(data_root)


def test_two_records_per_line(records):
    assert len(records) == 1440
    pairs = Counter(r.pair_id for r in records)
    assert len(pairs) == 720 and set(pairs.values()) == {2}
    for before, after in zip(records[::2], records[1::2]):
        assert before.pair_id == after.pair_id and before.group == after.group
        assert (before.label, after.label) == (VULNERABLE, SECURE)
        assert before.id.endswith("/before") and after.id.endswith("/after")


def test_cwes_normalised_and_languages(records):
    assert {r.cwe for r in records} == {f"CWE-{n}" for n in (22, 78, 79, 89, 125, 190, 416, 476, 787)}
    assert {r.language for r in records} == {"c", "cpp", "python"}
    first = records[0]
    assert first.id == "sven/cwe-022:1/before" and first.cwe == "CWE-22"
    assert first.source_path.endswith("cwe-022.jsonl:1")


def test_groups_are_commits(records):
    assert len({r.group for r in records}) == 510
    assert records[0].group.startswith("sven/github.com/")


def test_identical_before_after_flagged(records):
    flagged = [r for r in records if SAME_CODE_FLAG in r.flags]
    assert len(flagged) == 8
    assert all(r.code == other.code for r in flagged for other in flagged if other.pair_id == r.pair_id)


def test_language_from_path():
    assert language_from_path("src/a.cc") == "cpp"
    assert language_from_path("lib/x.H") == "c"
    assert language_from_path("app/views.py") == "python"
    assert language_from_path("main.rs") == "rs"


def _line(**over):
    base = {
        "func_src_before": "int f() { return 0; }",
        "func_src_after": "int f() { return 1; }",
        "vul_type": "cwe-078",
        "file_name": "a.c",
        "commit_link": "github.com/x/y/commit/1",
    }
    return json.dumps({**base, **over})


def test_fake_file(tmp_path):
    folder = tmp_path / "sven" / "train"
    folder.mkdir(parents=True)
    (folder / "cwe-078.jsonl").write_text(_line() + "\n\n" + _line(file_name="b.py") + "\n")
    recs = load_sven(tmp_path)
    assert [r.id for r in recs] == [
        "sven/cwe-078:1/before", "sven/cwe-078:1/after", "sven/cwe-078:3/before", "sven/cwe-078:3/after"
    ]
    assert recs[0].cwe == "CWE-78" and recs[2].language == "python"


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="no \\*.jsonl files"):
        load_sven(tmp_path)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"func_src_before": "x"}), "missing field 'func_src_after'"),
        (_line(vul_type="sql"), "field 'vul_type' is not one CWE id"),
        (_line(func_src_after=""), "field 'func_src_after' must be a non-empty string"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, line, message):
    folder = tmp_path / "sven" / "train"
    folder.mkdir(parents=True)
    (folder / "cwe-078.jsonl").write_text(_line() + "\n" + line + "\n")
    with pytest.raises(DataError, match=message) as err:
        load_sven(tmp_path)
    assert f"{folder / 'cwe-078.jsonl'}:2:" in str(err.value)
