"""One entry point for records: SecLLMHolmes subsets, SVEN, the planted control, and pairs JSONL files, by name."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vulnsteer.data.pairs import check_unique_ids, load_pairs_jsonl
from vulnsteer.data.planted import PLANTED, load_planted
from vulnsteer.data.records import Record
from vulnsteer.data.secllmholmes import SUBSETS, load_secllmholmes, select
from vulnsteer.data.sven import load_sven
from vulnsteer.errors import DataError

SVEN = "sven"


def dataset_names(names: Sequence[str], option: str) -> tuple[str, ...]:
    """`names` with repeats dropped (order kept), each a SecLLMHolmes subset, "sven", "planted" or an
    existing pairs .jsonl file; otherwise a one-line DataError naming `option`, checked before any file is read."""
    out = tuple(dict.fromkeys(n.strip() for n in names if n.strip()))
    for name in out:
        if name in SUBSETS or name in (SVEN, PLANTED):
            continue
        if not name.endswith(".jsonl"):
            raise DataError(f"{option} {name!r}: not a dataset; use one of {', '.join(SUBSETS)}, {SVEN!r}, "
                            f"{PLANTED!r}, or a path to a pairs .jsonl file")
        if not Path(name).is_file():
            raise DataError(f"{option} {name!r}: no such file; give the path of a pairs .jsonl file (docs/DATA_FORMAT.md)")
    return out


def load_records(root: Path, subsets: Sequence[str], cwes: Sequence[str] | None = None) -> list[Record]:
    """Records of the named subsets: SecLLMHolmes subset names, "sven", "planted" (data.planted), or a path to
    a pairs JSONL file."""
    records: list[Record] = []
    wanted = [s for s in subsets if s in SUBSETS]
    if wanted:
        records += load_secllmholmes(root, wanted)
    for name in subsets:
        if name in SUBSETS:
            continue
        if name == SVEN:
            records += load_sven(root)
        elif name == PLANTED:
            records += load_planted(root)
        elif name.endswith(".jsonl"):
            records += load_pairs_jsonl(Path(name))
        else:
            raise DataError(
                f"unknown subset {name!r}; use one of {', '.join(SUBSETS)}, 'sven', 'planted', or a path to a pairs "
                ".jsonl file"
            )
    check_unique_ids(records)  # two sources with one id would silently merge rows downstream
    return select(records, cwes)
