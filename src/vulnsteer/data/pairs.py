"""Bring-your-own data: the generic pairs JSONL format (docs/DATA_FORMAT.md) as `Record`s."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from vulnsteer.data.records import SECURE, VULNERABLE, Record, normalise_cwe
from vulnsteer.errors import DataError
from vulnsteer.io import read_utf8

LABELS: dict[object, int] = {1: VULNERABLE, 0: SECURE, "vulnerable": VULNERABLE, "secure": SECURE}


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based line number, object) for each non-blank line; DataError naming file:line for bad JSON."""
    text = read_utf8(Path(path), hint="check the path")
    # Split on "\n" only: str.splitlines also splits on U+2028, \x1c..\x1e and \x85, which JSON allows raw
    # inside strings, and would cut such a line in two and shift every later line number.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON ({exc.msg}); write one JSON object per line") from exc
        except RecursionError as exc:
            raise DataError(f"{where}: JSON nested too deeply to read; flatten that line") from exc
        except ValueError as exc:  # the only other ValueError json raises: int string conversion limit
            limit = sys.get_int_max_str_digits()
            raise DataError(f"{where}: a number longer than {limit} digits; write such values as strings") from exc
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
        yield number, obj


def field_str(obj: dict[str, Any], name: str, where: str, *, required: bool = True) -> str:
    """A string field; missing/empty/non-string -> DataError naming `where` (file:line) and the field."""
    value = obj.get(name)
    if value is None:
        if required:
            raise DataError(f"{where}: missing field {name!r}; see docs/DATA_FORMAT.md")
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise DataError(f"{where}: field {name!r} must be a non-empty string; see docs/DATA_FORMAT.md")
    return _encodable(value, name, where)


def _encodable(value: str, name: str, where: str) -> str:
    """`value` if it is valid Unicode; JSON's "\\ud800" escapes decode to lone surrogates that later crash
    hashing and tokenising far from the file, so refuse them here, naming the line."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = f"\\u{ord(value[exc.start]):04x}"
        raise DataError(f"{where}: field {name!r} holds an unpaired surrogate escape ({bad}); remove it") from exc
    return value


def _show(value: object, width: int = 40) -> str:
    """A short one-line repr for error messages: a bad value may be megabytes of text."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def field_id(obj: dict[str, Any], name: str, where: str) -> str | None:
    """An id-like field (`id`, `group`, `pair_id`): a non-empty string or an integer, else DataError; None if absent.

    Objects and lists are refused: their text form depends on key order and spacing, so two lines meant
    to share a group would silently not, and ids would hold braces and quotes.
    """
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(f"{where}: field {name!r} must be a string or an integer, got {type(value).__name__}")
    text = _encodable(str(value), name, where)
    if not text.strip():
        raise DataError(f"{where}: field {name!r} is empty; give a non-empty id or leave the field out")
    return text


def check_unique_ids(records: Iterable[Record]) -> None:
    """DataError naming both places when two records share an id (within one file or across sources).

    Later stages key caches, splits and result rows by id, so a repeated id would silently merge two samples.
    """
    seen: dict[str, str] = {}
    for rec in records:
        if rec.id in seen:
            raise DataError(
                f"{rec.source_path}: id {rec.id!r} already used at {seen[rec.id]}; give each line a unique 'id' "
                "(or load the two files under different subsets)"
            )
        seen[rec.id] = rec.source_path


def line_cwe(obj: dict[str, Any], name: str, where: str) -> str:
    """A CWE field: 'CWE-787', 'cwe-787', 787, or a one-element list of those (as PrimeVul writes it)."""
    raw = obj.get(name)
    if raw is None:
        raise DataError(f"{where}: missing field {name!r}; see docs/DATA_FORMAT.md")
    value = raw[0] if isinstance(raw, list) and len(raw) == 1 else raw
    try:
        if isinstance(value, (list, dict, bool)):
            raise ValueError(value)
        return normalise_cwe(str(value))
    except ValueError as exc:
        raise DataError(f"{where}: field {name!r} is not one CWE id ({_show(raw)}); write it like 'CWE-787'") from exc


def _ground_truth(obj: dict[str, Any], where: str) -> tuple[str, str]:
    """(vulnerable, secure) explanations: one string for both, or {"vulnerable": ..., "secure": ...}."""
    value = obj.get("ground_truth", "")
    vuln, safe = (value.get("vulnerable", ""), value.get("secure", "")) if isinstance(value, dict) else (value, value)
    if not isinstance(vuln, str) or not isinstance(safe, str):
        raise DataError(
            f"{where}: field 'ground_truth' must be a string or an object with string 'vulnerable'/'secure'"
        )
    return _encodable(vuln, "ground_truth", where), _encodable(safe, "ground_truth", where)


def _flags(obj: dict[str, Any], where: str) -> tuple[str, ...]:
    value = obj.get("flags", [])
    if not isinstance(value, list) or not all(isinstance(f, str) for f in value):
        raise DataError(f"{where}: field 'flags' must be a list of strings")
    return tuple(_encodable(f, "flags", where) for f in value)


def _records_of_line(obj: dict[str, Any], where: str, default_id: str, subset: str) -> list[Record]:
    paired = "code" not in obj and "label" not in obj
    if paired and "vulnerable" not in obj and "secure" not in obj:
        raise DataError(
            f"{where}: missing field 'vulnerable' (or 'code' and 'label' for an unpaired line); see docs/DATA_FORMAT.md"
        )
    if not paired and ("vulnerable" in obj or "secure" in obj):
        raise DataError(
            f"{where}: a line has either 'vulnerable'/'secure' (a pair) or 'code'/'label' (one sample), not both"
        )
    item_id = field_id(obj, "id", where) or default_id
    common: dict[str, Any] = dict(
        subset=subset,
        cwe=line_cwe(obj, "cwe", where),
        language=field_str(obj, "language", where).strip().lower(),
        source_path=where,
        flags=_flags(obj, where),
        variant=field_str(obj, "variant", where, required=False),
    )
    group = f"{subset}/{field_id(obj, 'group', where) or item_id}"
    if paired:
        vuln_gt, safe_gt = _ground_truth(obj, where)
        pair = f"{subset}/{item_id}"
        return [
            Record(id=f"{pair}/vulnerable", label=VULNERABLE, group=group, pair_id=pair,
                   code=field_str(obj, "vulnerable", where), ground_truth=vuln_gt, **common),
            Record(id=f"{pair}/secure", label=SECURE, group=group, pair_id=pair,
                   code=field_str(obj, "secure", where), ground_truth=safe_gt, **common),
        ]  # fmt: skip
    label = obj.get("label")
    if label is None:
        raise DataError(f"{where}: missing field 'label' (1/'vulnerable' or 0/'secure')")
    if isinstance(label, str):
        label = label.strip().lower()
    if isinstance(label, bool) or not isinstance(label, (int, str)) or label not in LABELS:
        raise DataError(f"{where}: field 'label' is {_show(label)}; use 1 or 'vulnerable', 0 or 'secure'")
    truth, _ = _ground_truth(obj, where)
    pair_ref = field_id(obj, "pair_id", where)
    return [
        Record(id=f"{subset}/{item_id}", label=LABELS[label], group=group,
               pair_id=f"{subset}/{pair_ref}" if pair_ref is not None else None,
               code=field_str(obj, "code", where), ground_truth=truth, **common),
    ]  # fmt: skip


def load_pairs_jsonl(path: Path, subset: str = "pairs") -> list[Record]:
    """Records from a pairs JSONL file, in file order (vulnerable before secure within a pair)."""
    path = Path(path)
    records: list[Record] = []
    for number, obj in iter_jsonl(path):
        records += _records_of_line(obj, f"{path}:{number}", f"{path.stem}:{number}", subset)
    check_unique_ids(records)
    if not records:
        raise DataError(f"{path}: no records (empty file); write one JSON object per line, see docs/DATA_FORMAT.md")
    return records
