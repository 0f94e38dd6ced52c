"""What was loaded: records per subset x CWE x label."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table

from vulnsteer.data.files import check_link
from vulnsteer.data.records import VULNERABLE, Record
from vulnsteer.data.secllmholmes import SUBSET_FOLDERS, natural_key

# Folders (relative to the data root) of the named subsets that are not SecLLMHolmes'.
OTHER_FOLDERS = {"sven": "sven/train"}


@dataclass(frozen=True)
class SubsetPresence:
    """Which of the asked-for subsets the data root holds; `missing` maps a subset to the folder it lacks."""

    present: list[str]
    missing: dict[str, str] = field(default_factory=dict)


def subset_presence(root: Path, subsets: Sequence[str]) -> SubsetPresence:
    """Split `subsets` into those whose folder exists under `root` and those whose folder is missing.

    For listing a partial copy of the data (say, without SVEN or few-shot) instead of failing on the first
    absent folder. Names that are not known subsets (a pairs .jsonl path) count as present, so their loader
    still reports a bad path. A dangling link where a folder should be is an error, not an absence.
    """
    folders = {name: f"secllmholmes/{sub}" for name, sub in SUBSET_FOLDERS.items()} | OTHER_FOLDERS
    present: list[str] = []
    missing: dict[str, str] = {}
    for name in subsets:
        rel = folders.get(name)
        if rel is None:
            present.append(name)
            continue
        path = Path(root)
        for part in rel.split("/"):
            path = check_link(path / part)
        if path.is_dir():
            present.append(name)
        else:
            missing[name] = str(path)
    return SubsetPresence(present, missing)


def inventory(records: Sequence[Record]) -> list[tuple[str, str, int, int]]:
    """(subset, cwe, n_vulnerable, n_secure) rows; subsets in order of first appearance, CWEs by number."""
    subsets = list(dict.fromkeys(r.subset for r in records))
    counts = Counter((r.subset, r.cwe, r.label == VULNERABLE) for r in records)
    cells = sorted({(s, c) for s, c, _ in counts}, key=lambda sc: (subsets.index(sc[0]), natural_key(sc[1])))
    return [(s, c, counts[(s, c, True)], counts[(s, c, False)]) for s, c in cells]


def inventory_table(records: Sequence[Record], missing: Mapping[str, str] | None = None) -> Table:
    """A rich table of `inventory` with a total row per subset and a grand total.

    `missing` (subset -> folder, from `subset_presence`) adds one "not found" row per absent subset.
    """
    table = Table(title="Records loaded")
    for name in ("subset", "CWE"):
        table.add_column(name)
    for name in ("vulnerable", "secure", "total"):
        table.add_column(name, justify="right")
    rows = inventory(records)
    for subset in dict.fromkeys(row[0] for row in rows):
        mine = [row for row in rows if row[0] == subset]
        for _, cwe, vuln, safe in mine:
            table.add_row(subset, cwe, str(vuln), str(safe), str(vuln + safe))
        vuln, safe = sum(r[2] for r in mine), sum(r[3] for r in mine)
        table.add_row(subset, "all", str(vuln), str(safe), str(vuln + safe), style="bold", end_section=True)
    for subset, folder in (missing or {}).items():
        table.add_row(subset, f"not found: {folder}", "-", "-", "-", style="dim", end_section=True)
    vuln, safe = sum(r[2] for r in rows), sum(r[3] for r in rows)
    table.add_row("all", "all", str(vuln), str(safe), str(vuln + safe), style="bold")
    return table
