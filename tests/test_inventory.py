"""Inventory counts match the data README; the rich table carries the same numbers with totals."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from vulnsteer.data.inventory import inventory, inventory_table, subset_presence
from vulnsteer.data.records import SECURE, VULNERABLE, Record
from vulnsteer.data.secllmholmes import SUBSETS, load_secllmholmes
from vulnsteer.data.sven import load_sven
from vulnsteer.errors import DataError

# /work/shared/data/README.md: subset -> (vulnerable, secure)
README_COUNTS = {
    "hand-crafted": (24, 24),
    "augmented-trivial": (42, 42),
    "augmented-non-trivial": (72, 60),
    "real-world": (15, 15),
    "few-shot": (8, 8),
    "sven": (720, 720),
}


def _rec(subset: str, cwe: str, label: int, n: int) -> Record:
    return Record(id=f"{subset}/{cwe}/{label}/{n}", subset=subset, cwe=cwe, language="c", label=label,
                  group="g", pair_id=None, code="x", source_path="-")  # fmt: skip


def per_subset(rows):
    out: dict[str, tuple[int, int]] = {}
    for subset, _, vuln, safe in rows:
        v, s = out.get(subset, (0, 0))
        out[subset] = (v + vuln, s + safe)
    return out


def test_counts_match_readme(data_root):
    records = load_secllmholmes(data_root)
    if (data_root / "sven" / "train").is_dir():
        records += load_sven(data_root)
    expected = {k: v for k, v in README_COUNTS.items() if k != "sven" or any(r.subset == "sven" for r in records)}
    assert per_subset(inventory(records)) == expected
    hand = [row for row in inventory(records) if row[0] == "hand-crafted"]
    assert [row[1] for row in hand] == ["CWE-22", "CWE-77", "CWE-79", "CWE-89", "CWE-190", "CWE-416", "CWE-476", "CWE-787"]
    assert all(row[2:] == (3, 3) for row in hand)


def test_inventory_order_and_zero_cells():
    recs = [_rec("b", "CWE-787", VULNERABLE, 0), _rec("a", "CWE-22", SECURE, 1), _rec("b", "CWE-22", VULNERABLE, 2)]
    assert inventory(recs) == [("b", "CWE-22", 1, 0), ("b", "CWE-787", 1, 0), ("a", "CWE-22", 0, 1)]
    assert inventory([]) == []


def test_table_has_totals():
    recs = [_rec("s", "CWE-22", VULNERABLE, i) for i in range(3)] + [_rec("s", "CWE-79", SECURE, 9)]
    table = inventory_table(recs)
    assert table.row_count == 2 + 1 + 1  # two CWE rows, subset total, grand total
    console = Console(record=True, width=120)
    console.print(table)
    lines = [line.split() for line in console.export_text().splitlines()]
    cells = [[c for c in line if c not in "│┃"] for line in lines]
    assert ["s", "CWE-22", "3", "0", "3"] in cells
    assert ["s", "all", "3", "1", "4"] in cells
    assert ["all", "all", "3", "1", "4"] in cells


def test_table_columns():
    table = inventory_table([_rec("s", "CWE-22", VULNERABLE, 0)])
    assert [c.header for c in table.columns] == ["subset", "CWE", "vulnerable", "secure", "total"]


# --- a partial data root: list what is there, say what is not ----------------------------------


def _partial_root(tmp_path: Path) -> Path:
    code = tmp_path / "secllmholmes" / "hand-crafted" / "dataset" / "CWE-22"
    code.mkdir(parents=True)
    (code / "1.c").write_text("int a;\n")
    (code / "p_1.c").write_text("int b;\n")
    return tmp_path


def test_partial_root_lists_present_subsets_and_names_missing_ones(tmp_path):
    root = _partial_root(tmp_path)
    wanted = [*SUBSETS, "sven", "mine.jsonl"]
    found = subset_presence(root, wanted)
    assert found.present == ["hand-crafted", "mine.jsonl"]  # a file path is left to its loader to check
    assert found.missing == {
        "augmented-trivial": str(root / "secllmholmes/augmented/trivial"),
        "augmented-non-trivial": str(root / "secllmholmes/augmented/non-trivial"),
        "real-world": str(root / "secllmholmes/real-world"),
        "few-shot": str(root / "secllmholmes/few-shot"),
        "sven": str(root / "sven/train"),
    }
    records = load_secllmholmes(root, [s for s in found.present if s in SUBSETS])
    console = Console(record=True, width=160)
    console.print(inventory_table(records, found.missing))
    text = console.export_text()
    assert "hand-crafted" in text and f"not found: {root / 'sven/train'}" in text and "few-shot" in text


def test_dangling_subset_folder_is_an_error_not_an_absence(tmp_path):
    root = _partial_root(tmp_path)
    (root / "sven").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(DataError, match="sven: dangling symbolic link"):
        subset_presence(root, ["sven"])
