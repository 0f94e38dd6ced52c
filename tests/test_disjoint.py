"""Fit-on data that shares a scenario group or a byte-identical file with the test-on data is refused, with
the dataset pair and a count; disjoint data passes."""

from __future__ import annotations

import json

import pytest

from vulnsteer.data.disjoint import DataLeakError, check_disjoint, load_fit_on
from vulnsteer.data.load import dataset_names, load_records
from vulnsteer.data.records import Record
from vulnsteer.errors import DataError


def _record(id: str, group: str, code: str, label: int = 1) -> Record:
    return Record(id=id, subset="pairs", cwe="CWE-787", language="c", label=label, group=group, pair_id=None,
                  code=code, source_path="x")


def test_a_shared_group_or_identical_code_is_refused_and_counted():
    fit = {"a": [_record("a/1", "g1", "int a;"), _record("a/2", "g2", "int b;")]}
    check_disjoint(fit, {"b": [_record("b/1", "h1", "int c;")]})
    with pytest.raises(DataLeakError, match=r"--fit-on a and --test-on b share 2 scenario group\(s\) \(e.g. 'g1'\)"):
        check_disjoint(fit, {"b": [_record("b/1", "g1", "x"), _record("b/2", "g2", "y")]})
    with pytest.raises(DataLeakError, match=r"--fit-on a and --test-on b hold 1 byte-identical file\(s\) \(e.g. b/9 = a/2\)"):
        check_disjoint(fit, {"b": [_record("b/9", "h9", "int b;")]})


def test_augmented_files_share_their_scenarios_groups(data_root):
    with pytest.raises(DataLeakError, match="augmented-trivial and --test-on hand-crafted share 6 scenario group"):
        load_fit_on(data_root, ["augmented-trivial"], ["hand-crafted"], None)
    with pytest.raises(DataLeakError, match="hand-crafted and --test-on hand-crafted share 24"):
        load_fit_on(data_root, ["hand-crafted"], ["hand-crafted"], None)


def test_hand_crafted_and_augmented_may_be_fit_on_for_real_world(data_root):
    names = ["hand-crafted", "augmented-trivial", "augmented-non-trivial"]
    fit = load_fit_on(data_root, names, ["real-world"], None)
    assert len(fit) == len(load_records(data_root, names))
    assert [r.subset for r in fit][:48] == ["hand-crafted"] * 48  # in --fit-on order


def test_cwe_restriction_applies_to_the_fit_on_side(small_root):
    fit = load_fit_on(small_root, ["sven"], ["hand-crafted"], ["CWE-787"])
    assert fit and {r.cwe for r in fit} == {"CWE-787"}
    with pytest.raises(DataError, match="--fit-on sven has no records of CWE-77"):
        load_fit_on(small_root, ["sven"], ["hand-crafted"], ["CWE-77"])


def test_a_pairs_file_holding_a_test_file_is_refused(data_root, tmp_path):
    hand = load_records(data_root, ["hand-crafted"])
    pairs = tmp_path / "copies.jsonl"
    pairs.write_text(json.dumps({"vulnerable": hand[0].code, "secure": "int main(void) { return 0; }\n",
                                 "cwe": hand[0].cwe, "language": "c"}) + "\n")
    with pytest.raises(DataLeakError, match=f"--fit-on {pairs} and --test-on hand-crafted hold 1 byte-identical"):
        load_fit_on(data_root, [str(pairs)], ["hand-crafted"], None)


def test_dataset_names_are_checked_and_deduplicated(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("")
    assert dataset_names(["sven", " real-world", "sven", str(path)], "--fit-on") == ("sven", "real-world", str(path))
    with pytest.raises(DataError, match="--test-on 'svn': not a dataset"):
        dataset_names(["svn"], "--test-on")
    with pytest.raises(DataError, match="no such file"):
        dataset_names([str(tmp_path / "missing.jsonl")], "--fit-on")
