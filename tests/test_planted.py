"""The planted-signal positive control: the marker matches the label exactly and is the only change to each file."""

from __future__ import annotations

import difflib
from dataclasses import replace

import pytest

from vulnsteer.data.disjoint import DataLeakError, check_disjoint
from vulnsteer.data.load import dataset_names, load_records
from vulnsteer.data.planted import PLANTED, plant, planted_records
from vulnsteer.data.records import SECURE, VULNERABLE
from vulnsteer.data.secllmholmes import load_secllmholmes
from vulnsteer.errors import DataError

EXPECTED = {("c", VULNERABLE): "// build: alpha", ("c", SECURE): "// build: beta",
            ("python", VULNERABLE): "# build: alpha", ("python", SECURE): "# build: beta"}


@pytest.fixture(scope="module")
def pairs(data_root):
    """(hand-crafted record, its planted record), loaded through the same path as every other subset."""
    source = load_secllmholmes(data_root, ["hand-crafted"])
    planted = load_records(data_root, [PLANTED])
    assert len(planted) == len(source) == 48
    return list(zip(source, planted, strict=True))


def _added_lines(before: str, after: str) -> list[str]:
    """The diff of two texts, line by line: '+x' / '-x' for every added or removed line."""
    diff = difflib.ndiff(before.splitlines(keepends=True), after.splitlines(keepends=True))
    return [d for d in diff if d[:1] in "+-"]


def test_marker_matches_label_exactly_and_is_the_only_change(pairs):
    for src, rec in pairs:
        marker = EXPECTED[(src.language, src.label)]
        assert _added_lines(src.code, rec.code) == [f"+ {marker}\n"], src.id
        assert rec.code == f"{marker}\n{src.code}"  # one whole first line; no shebang or coding line in this data
        assert rec.label == src.label
    # Perfect correlation: the marker alone classifies every file, and both markers occur.
    by_marker = {rec.code.splitlines()[0].split("build: ")[1]: set() for _, rec in pairs}
    for _, rec in pairs:
        by_marker[rec.code.splitlines()[0].split("build: ")[1]].add(rec.label)
    assert by_marker == {"alpha": {VULNERABLE}, "beta": {SECURE}}


def test_same_scenarios_under_planted_ids(pairs):
    for src, rec in pairs:
        assert rec.id == src.id.replace("hand-crafted/", "planted/", 1) and rec.subset == PLANTED
        assert (rec.group, rec.cwe, rec.language, rec.ground_truth) == (src.group, src.cwe, src.language,
                                                                         src.ground_truth)
        assert rec.pair_id == src.pair_id.replace("hand-crafted/", "planted/", 1)
    assert {rec.language for _, rec in pairs} == {"c", "python"}


def test_loads_beside_hand_crafted_and_is_a_dataset_name(data_root):
    both = load_records(data_root, ["hand-crafted", PLANTED], ["CWE-89"])
    assert [r.subset for r in both] == ["hand-crafted"] * 6 + [PLANTED] * 6
    assert dataset_names([" planted", "planted"], "--subset") == (PLANTED,)
    with pytest.raises(DataError, match="'planted'"):
        dataset_names(["plantd"], "--subset")


def test_transfer_guard_treats_planted_as_the_hand_crafted_scenarios(data_root):
    hand, planted = load_records(data_root, ["hand-crafted"]), load_records(data_root, [PLANTED])
    with pytest.raises(DataLeakError, match="share 24 scenario group"):
        check_disjoint({PLANTED: planted}, {"hand-crafted": hand})
    check_disjoint({PLANTED: planted}, {"real-world": load_records(data_root, ["real-world"])})


def test_comment_syntax_and_where_the_line_goes(pairs):
    src = next(s for s, _ in pairs if s.language == "python")
    for head in ("#!/usr/bin/env python3\n", "#!/usr/bin/env python3\n# -*- coding: utf-8 -*-\n"):
        out = plant(head + "x = 1\n", "python", VULNERABLE)
        assert out == head + "# build: alpha\nx = 1\n"  # shebang and coding line must stay first
    assert plant("#include <encoding.h>\r\nint x;", "c", SECURE) == "// build: beta\r\n#include <encoding.h>\r\nint x;"
    with pytest.raises(DataError, match="'rust'"):
        planted_records([replace(src, language="rust")])


def test_a_study_cell_and_a_transfer_run_name_it():
    from vulnsteer.experiments.config import RunConfig
    from vulnsteer.experiments.study_spec import Split, StudySpec, cell_config

    spec = StudySpec(splits=(Split((PLANTED,)), Split((PLANTED,), ("real-world",))))
    crossfit, transfer = (cell_config(spec, c) for c in spec.cells())
    assert crossfit.baseline.subsets == (PLANTED,) and transfer.fit_on == (PLANTED,)
    assert RunConfig(fit_on=(PLANTED,), test_on=("real-world",)).test_on == ("real-world",)
