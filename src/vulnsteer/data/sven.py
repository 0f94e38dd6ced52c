"""SVEN's training split (<root>/sven/train/*.jsonl) as `Record`s: each line is one vulnerable/fixed pair."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from vulnsteer.data.pairs import field_str, iter_jsonl, line_cwe
from vulnsteer.data.records import SECURE, VULNERABLE, Record
from vulnsteer.data.secllmholmes import natural_key
from vulnsteer.errors import DataError

EXTENSIONS = {
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hh": "cpp", ".hpp": "cpp",
    ".py": "python", ".js": "javascript", ".go": "go", ".java": "java", ".rb": "ruby", ".php": "php",
}  # fmt: skip
SAME_CODE_FLAG = "label-doubtful:before-equals-after"


def language_from_path(name: str) -> str:
    """'src/lib/dump_dir.c' -> 'c'; an unknown extension is returned as is ('.rs' -> 'rs')."""
    suffix = PurePosixPath(name).suffix.lower()
    return EXTENSIONS.get(suffix, suffix.lstrip(".") or "unknown")


def load_sven(root: Path) -> list[Record]:
    """Two records per line (func_src_before vulnerable, func_src_after secure), sorted by file then line.

    Records of one commit share a group (several functions of one fix are not independent); the two
    sides of one line share a pair id.
    """
    folder = Path(root) / "sven" / "train"
    files = sorted(folder.glob("*.jsonl"), key=lambda p: natural_key(p.name))
    if not files:
        raise DataError(
            f"{folder}: no *.jsonl files; copy data_train_val/train/*.jsonl of https://github.com/eth-sri/sven there"
        )
    records: list[Record] = []
    for path in files:
        for number, obj in iter_jsonl(path):
            where = f"{path}:{number}"
            before = field_str(obj, "func_src_before", where)
            after = field_str(obj, "func_src_after", where)
            pair = f"sven/{path.stem}:{number}"
            common: dict[str, Any] = dict(
                subset="sven",
                cwe=line_cwe(obj, "vul_type", where),
                language=language_from_path(field_str(obj, "file_name", where)),
                group=f"sven/{field_str(obj, 'commit_link', where, required=False) or pair}",
                pair_id=pair,
                source_path=where,
                flags=(SAME_CODE_FLAG,) if before == after else (),
            )
            records.append(Record(id=f"{pair}/before", label=VULNERABLE, code=before, **common))
            records.append(Record(id=f"{pair}/after", label=SECURE, code=after, **common))
    return records
