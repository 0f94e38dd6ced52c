"""The fit-on data of a transfer run (vulnsteer run --fit-on X --test-on Y), loaded and checked against the
test-on data before any model loads: no scenario group and no byte-identical file may sit on both sides.

A group is the unit of leakage (data.records): SecLLMHolmes augmentations join the group of the
hand-crafted scenario they were derived from, so `--fit-on augmented-trivial --test-on hand-crafted` would
test on the very scenarios the vectors were fit on, and is refused, while `--fit-on hand-crafted,
augmented-trivial --test-on real-world` is legal. A byte-identical file in another group (a copy under a
new name) would leak just the same, so equal code (`Record.sha256`) is refused too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vulnsteer.data.load import load_records
from vulnsteer.data.pairs import check_unique_ids
from vulnsteer.data.records import Record
from vulnsteer.errors import DataError


class DataLeakError(DataError):
    """A fit-on and a test-on dataset share a scenario group or a byte-identical file."""


def _pick(records: list[Record], cwes: Sequence[str] | None) -> list[Record]:
    return records if cwes is None else [r for r in records if r.cwe in cwes]


def check_disjoint(fit: dict[str, list[Record]], test: dict[str, list[Record]]) -> None:
    """DataLeakError naming the first (fit-on, test-on) dataset pair that shares scenario groups or
    byte-identical files, with how many."""
    for f, frecs in fit.items():
        groups = {r.group for r in frecs}
        hashes = {r.sha256: r.id for r in frecs}
        for t, trecs in test.items():
            shared = sorted(groups & {r.group for r in trecs})
            if shared:
                raise DataLeakError(
                    f"--fit-on {f} and --test-on {t} share {len(shared)} scenario group(s) (e.g. {shared[0]!r}): the "
                    "test would score scenarios the vectors and probes were fit on; choose disjoint datasets, or "
                    "cross-fit one of them with --subset")
            same = [(r.id, hashes[r.sha256]) for r in trecs if r.sha256 in hashes]
            if same:
                raise DataLeakError(
                    f"--fit-on {f} and --test-on {t} hold {len(same)} byte-identical file(s) (e.g. {same[0][0]} = "
                    f"{same[0][1]}): the test would score code the vectors and probes were fit on; remove the copies")


def load_fit_on(root: Path, fit_on: Sequence[str], test_on: Sequence[str], cwes: Sequence[str] | None) -> list[Record]:
    """The fit-on records, in `fit_on` order, restricted to `cwes` (normalised ids) when given, once
    `check_disjoint` passed on the records each side would use."""
    fit = {name: _pick(load_records(root, [name]), cwes) for name in fit_on}
    test = {name: _pick(load_records(root, [name]), cwes) for name in test_on}
    check_disjoint(fit, test)
    records = [r for name in fit_on for r in fit[name]]
    if not records:
        raise DataError(f"--fit-on {', '.join(fit_on)} has no records of {', '.join(cwes or [])}; "
                        "pick fit-on data with those CWEs, or leave out --cwe")
    if len({r.label for r in records}) < 2:
        raise DataError(f"--fit-on {', '.join(fit_on)}: every record has the same label; vectors and probes "
                        "need vulnerable and secure code")
    check_unique_ids(records)
    return records
