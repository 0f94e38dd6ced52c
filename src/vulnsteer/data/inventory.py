"""What was loaded: records per subset x CWE x label."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rich.table import Table

from vulnsteer.data.records import VULNERABLE, Record
from vulnsteer.data.secllmholmes import natural_key


def inventory(records: Sequence[Record]) -> list[tuple[str, str, int, int]]:
    """(subset, cwe, n_vulnerable, n_secure) rows; subsets in order of first appearance, CWEs by number."""
    subsets = list(dict.fromkeys(r.subset for r in records))
    counts = Counter((r.subset, r.cwe, r.label == VULNERABLE) for r in records)
    cells = sorted({(s, c) for s, c, _ in counts}, key=lambda sc: (subsets.index(sc[0]), natural_key(sc[1])))
    return [(s, c, counts[(s, c, True)], counts[(s, c, False)]) for s, c in cells]


def inventory_table(records: Sequence[Record]) -> Table:
    """A rich table of `inventory` with a total row per subset and a grand total."""
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
    vuln, safe = sum(r[2] for r in rows), sum(r[3] for r in rows)
    table.add_row("all", "all", str(vuln), str(safe), str(vuln + safe), style="bold")
    return table
