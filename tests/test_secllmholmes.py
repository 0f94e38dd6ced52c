"""SecLLMHolmes loader: counts, groups, pairs, flags on the real data; bad files on tiny fake trees."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from vulnsteer.data.records import SECURE, VULNERABLE
from vulnsteer.data.secllmholmes import (
    SUBSETS,
    cwe_definition,
    cwe_names,
    load_secllmholmes,
    natural_key,
    select,
)
from vulnsteer.errors import DataError


@pytest.fixture(scope="module")
def records(data_root):
    return load_secllmholmes(data_root)


def by_id(records):
    return {r.id: r for r in records}


def test_counts_and_labels_per_subset(records):
    counts = Counter((r.subset, r.label) for r in records)
    expected = {
        "hand-crafted": (24, 24),
        "augmented-trivial": (42, 42),
        "augmented-non-trivial": (72, 60),
        "real-world": (15, 15),
        "few-shot": (8, 8),
    }
    assert {s: (counts[(s, VULNERABLE)], counts[(s, SECURE)]) for s in SUBSETS} == expected


def test_ids_unique_and_order_deterministic(records, data_root):
    assert len({r.id for r in records}) == len(records)
    again = load_secllmholmes(data_root, list(reversed(SUBSETS)))
    assert [r.id for r in again] == [r.id for r in records]
    assert [r.subset for r in records] == sorted((r.subset for r in records), key=SUBSETS.index)


def test_hand_crafted_record(records):
    rec = by_id(records)["hand-crafted/CWE-22/p_1"]
    assert (rec.label, rec.group, rec.pair_id, rec.language, rec.variant) == (
        SECURE, "CWE-22/1", "hand-crafted/CWE-22/1", "c", ""
    )  # fmt: skip
    assert rec.source_path.endswith("hand-crafted/dataset/CWE-22/p_1.c")
    assert rec.code == Path(rec.source_path).read_text()
    assert "sanitized" in rec.ground_truth
    assert by_id(records)["hand-crafted/CWE-79/1"].language == "python"


def test_augmentations_join_their_hand_crafted_group(records):
    ids = by_id(records)
    assert ids["augmented-trivial/A3/CWE-787/p_2"].group == "CWE-787/2"
    assert ids["augmented-non-trivial/A1_1/CWE-416/3"].group == "CWE-416/3"
    assert ids["augmented-non-trivial/A1_1/CWE-416/3"].variant == "A1_1"
    hand_groups = {r.group for r in records if r.subset == "hand-crafted"}
    assert {r.group for r in records if r.subset.startswith("augmented")} <= hand_groups


def test_pairs_hold_one_vulnerable_and_one_secure(records):
    pairs: dict[str, list[int]] = {}
    for r in records:
        if r.pair_id is not None:
            pairs.setdefault(r.pair_id, []).append(r.label)
    assert all(sorted(labels) == [SECURE, VULNERABLE] for labels in pairs.values())
    assert len({p for p in pairs if p.startswith("hand-crafted/")}) == 24
    assert len({p for p in pairs if p.startswith("real-world/")}) == 15
    # A2 non-trivial holds only p_* files: nothing to pair with.
    assert by_id(records)["augmented-non-trivial/A2_0/CWE-89/p_1"].pair_id is None


def test_real_world_cwe_from_cve_details(records, data_root):
    details = json.loads((data_root / "secllmholmes/real-world/cve_details.json").read_text())
    for rec in (r for r in records if r.subset == "real-world"):
        project, cve = rec.id.split("/")[1:3]
        assert rec.cwe == "CWE-" + details[project][cve]["cwe"].split("-")[1].lstrip("0")
        assert rec.group == rec.pair_id == f"real-world/{project}/{cve}"
    assert by_id(records)["real-world/gpac/CVE-2023-1452/vuln"].cwe == "CWE-787"


def test_few_shot_pairs_and_reasoning(records):
    rec = by_id(records)["few-shot/CWE-22/cwe-22-p"]
    assert (rec.label, rec.group, rec.pair_id) == (SECURE, "few-shot/CWE-22", "few-shot/CWE-22")
    assert all(r.ground_truth for r in records)


def test_identical_to_hand_crafted(records):
    ids = by_id(records)
    flagged = [(r, f) for r in records for f in r.flags if f.startswith("identical-to:")]
    assert len(flagged) == 56
    for rec, flag in flagged:
        assert rec.subset == "augmented-non-trivial" and rec.variant.endswith("_0")
        assert ids[flag.removeprefix("identical-to:")].code == rec.code
    assert not any(f.startswith("identical-to:") for r in records if r.variant.endswith("_1") for f in r.flags)


def test_identical_to_is_set_without_loading_hand_crafted(data_root):
    only = load_secllmholmes(data_root, ["augmented-non-trivial"])
    assert sum(any(f.startswith("identical-to:") for f in r.flags) for r in only) == 56


def test_known_label_problems_flagged(records):
    ids = by_id(records)
    assert "label-doubtful:ground-truth-says-vulnerable" in ids["augmented-non-trivial/A6_1/CWE-787/p_3"].flags
    assert "label-doubtful:does-not-compile" in ids["augmented-non-trivial/A6_0/CWE-22/p_1"].flags
    assert "label-doubtful:does-not-compile" not in ids["augmented-non-trivial/A6_0/CWE-22/p_2"].flags
    assert "label-doubtful:gets-overflow-not-path-traversal" in ids["augmented-non-trivial/A6_1/CWE-22/p_2"].flags
    assert "label-doubtful:ground-truth-describes-oob-write" in ids["augmented-non-trivial/A4_1/CWE-416/1"].flags
    assert not any(f.startswith("label-doubtful") for f in ids["augmented-non-trivial/A4_0/CWE-416/1"].flags)
    doubtful = [r for r in records if any(f.startswith("label-doubtful") for f in r.flags)]
    assert len(doubtful) == 6 + 6 + 18  # A6 CWE-787 p_*, A6 CWE-22 p_*, CWE-416 A1_0/A1_1/A4_1
    for rec in doubtful:
        if "oob-write" in " ".join(rec.flags):
            assert "out-of-bound" in rec.ground_truth  # the flag reflects what the file says
    assert not any(r.flags for r in records if r.subset == "hand-crafted")


def test_subset_choice_and_unknown_subset(data_root):
    assert len(load_secllmholmes(data_root, ["few-shot"])) == 16
    with pytest.raises(DataError, match="unknown SecLLMHolmes subset 'handcrafted'"):
        load_secllmholmes(data_root, ["handcrafted"])


def test_cwe_names_and_definitions(data_root):
    names = cwe_names(data_root)
    assert names["CWE-22"] == "path traversal" and names["CWE-787"] == "out-of-bounds write"
    assert cwe_definition(data_root, "cwe-022").startswith("Path Traversal:")
    with pytest.raises(DataError, match="no MITRE definition for 'CWE-125'"):
        cwe_definition(data_root, "125")


def test_select(records):
    assert {r.cwe for r in select(records, ["22", "cwe-079"])} == {"CWE-22", "CWE-79"}
    assert select(records, None) == records
    with pytest.raises(DataError) as err:
        select(records, ["CWE-999"])
    assert str(err.value).startswith("unknown CWE 'CWE-999'; known: CWE-22, CWE-77, CWE-79, CWE-89, CWE-190")
    with pytest.raises(DataError, match="not a CWE id"):
        select(records, ["sql"])


def test_natural_key():
    assert sorted(["CWE-787", "CWE-22", "CWE-190"], key=natural_key) == ["CWE-22", "CWE-190", "CWE-787"]


# --- tiny fake trees for bad input ---------------------------------------------------------------


def fake_root(tmp_path: Path) -> Path:
    base = tmp_path / "data" / "secllmholmes"
    code = base / "hand-crafted" / "dataset" / "CWE-22"
    truth = base / "hand-crafted" / "ground-truth" / "CWE-22"
    code.mkdir(parents=True)
    truth.mkdir(parents=True)
    (code / "1.c").write_text("int main(void) { return 0; }\n")
    (code / "p_1.c").write_text("int main(void) { return 1; }\n")
    (truth / "1.txt").write_text("bad")
    cve = base / "real-world" / "proj" / "CVE-1"
    cve.mkdir(parents=True)
    (cve / "vuln.c").write_text("v")
    (cve / "patch.c").write_text("p")
    (base / "real-world" / "cve_details.json").write_text('{"proj": {"CVE-1": {"cwe": "cwe-0787"}}}')
    return tmp_path / "data"


def test_fake_tree_loads(tmp_path):
    recs = load_secllmholmes(fake_root(tmp_path), ["hand-crafted", "real-world"])
    assert [r.id for r in recs] == [
        "hand-crafted/CWE-22/1", "hand-crafted/CWE-22/p_1", "real-world/proj/CVE-1/vuln", "real-world/proj/CVE-1/patch"
    ]  # fmt: skip
    assert recs[0].ground_truth == "bad" and recs[1].ground_truth == ""
    assert recs[2].cwe == "CWE-787"


def test_subset_without_hand_crafted_folder(tmp_path):
    root = fake_root(tmp_path)
    shutil.rmtree(root / "secllmholmes/hand-crafted")
    assert len(load_secllmholmes(root, ["real-world"])) == 2


def test_missing_root(tmp_path):
    with pytest.raises(DataError, match="secllmholmes: folder missing"):
        load_secllmholmes(tmp_path)


def test_missing_subset_folder(tmp_path):
    with pytest.raises(DataError, match="few-shot"):
        load_secllmholmes(fake_root(tmp_path), ["few-shot"])


def test_empty_code_file(tmp_path):
    root = fake_root(tmp_path)
    target = root / "secllmholmes/hand-crafted/dataset/CWE-22/p_1.c"
    target.write_text("  \n")
    with pytest.raises(DataError, match="empty code file") as err:
        load_secllmholmes(root, ["hand-crafted"])
    assert str(target) in str(err.value)


def test_non_utf8_code_file(tmp_path):
    root = fake_root(tmp_path)
    target = root / "secllmholmes/hand-crafted/dataset/CWE-22/1.c"
    target.write_bytes("/* caf\xe9 */ int x;".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8") as err:
        load_secllmholmes(root, ["hand-crafted"])
    assert str(target) in str(err.value) and "re-save it as UTF-8" in str(err.value)


def test_unexpected_code_file_name(tmp_path):
    root = fake_root(tmp_path)
    (root / "secllmholmes/hand-crafted/dataset/CWE-22/helper.c").write_text("x")
    with pytest.raises(DataError, match="helper.c: unexpected file name"):
        load_secllmholmes(root, ["hand-crafted"])


def test_real_world_without_cwe_entry(tmp_path):
    root = fake_root(tmp_path)
    (root / "secllmholmes/real-world/cve_details.json").write_text("{}")
    with pytest.raises(DataError, match="no 'cwe' for proj/CVE-1"):
        load_secllmholmes(root, ["real-world"])


# --- dangling links: reported, never silently dropped ------------------------------------------


def test_dangling_code_link_is_reported_not_dropped(tmp_path):
    root = fake_root(tmp_path)
    target = root / "secllmholmes/hand-crafted/dataset/CWE-22/p_1.c"
    target.unlink()
    target.symlink_to(tmp_path / "gone.c")
    # Dropping it would leave 1.c loaded with pair_id None: a silent change of the pair count.
    with pytest.raises(DataError, match="dangling symbolic link") as err:
        load_secllmholmes(root, ["hand-crafted"])
    assert str(err.value).startswith(f"{target}: ") and "gone.c" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "rel",
    ["hand-crafted/ground-truth/CWE-22/p_1.txt", "real-world/proj/CVE-1/vuln.c", "real-world/proj/CVE-2"],
    ids=["ground-truth", "real-world-code", "folder"],
)
def test_dangling_links_elsewhere(tmp_path, rel):
    root = fake_root(tmp_path)
    link = root / "secllmholmes" / rel
    if link.exists():
        link.unlink()
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(DataError, match=re.escape(f"{link}: dangling symbolic link")):
        load_secllmholmes(root, ["hand-crafted", "real-world"])
