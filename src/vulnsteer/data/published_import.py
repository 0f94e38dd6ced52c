"""Build predictions.csv (see `published.py`) from SecLLMHolmes' results/ folder.

results/ holds one JSON file per model and study, with each model's full answer and its parsed `pred`:

- `prompts/<model>.json`: cwe -> file -> "prompt<ID>" -> answer (hand-crafted, 17 prompts);
- `real-world/<model>.json`: project -> CVE -> vuln|patch -> ZT|ZR|FT|FR -> answer;
- `benchmark/<model>.json`: "hand-crafted" -> cwe -> file -> answer and "real-world" -> project -> CVE ->
  vuln|patch -> answer (prompt S1); its "augmented" part is left out, as predictions.csv leaves it out.

Two choices make the output equal predictions.csv row for row (docs/DATA_FORMAT.md): the label comes
from the file name (upstream's rule, `p*` secure), not from the answer's own `label` field, which says 1
for every patched file in four of the prompts-study files; and `pred` is `yes`/`no` (any case), anything
else (`n/a`, a stray reasoning fragment) `na`. Rows follow the studies in `STUDIES` order, models by file
name, then the JSON files' own order.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vulnsteer.data.files import read_json
from vulnsteer.data.published import COLUMNS
from vulnsteer.data.records import normalise_cwe
from vulnsteer.errors import DataError

STUDIES = ("prompts", "real-world", "benchmark")
KINDS = {"vuln": 1, "patch": 0}

Row = tuple[str, str, str, str, str, str, int, str]


def import_published(results_dir: Path, out_csv: Path) -> int:
    """Write predictions.csv for the three studies under `results_dir`; return the number of rows.

    `results_dir` is SecLLMHolmes' results/ folder (or the clone holding it). The file is written to a
    temporary name and renamed, so an interrupted import never leaves half a CSV where the loader looks.
    """
    results = _results_root(Path(results_dir))
    rows = [row for study in STUDIES for row in _study_rows(results / study, study)]
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # default "\r\n" line ends, as the shipped predictions.csv has
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    _write_atomic(Path(out_csv), buffer.getvalue().encode("utf-8"))
    return len(rows)


def _results_root(path: Path) -> Path:
    if not (path / STUDIES[0]).is_dir() and (path / "results" / STUDIES[0]).is_dir():
        path = path / "results"  # the user gave the clone itself
    missing = [s for s in STUDIES if not (path / s).is_dir()]
    if missing:
        raise DataError(
            f"{path / missing[0]}: folder missing; pass SecLLMHolmes' results/ folder "
            f"(with {', '.join(s + '/' for s in STUDIES)})"
        )
    return path


def _study_rows(folder: Path, study: str) -> Iterator[Row]:
    files = sorted(folder.glob("*.json"))
    if not files:
        raise DataError(f"{folder}: no <model>.json files; restore it from SecLLMHolmes' results/")
    for path in files:
        data = read_json(path)
        model = path.stem
        if study == "prompts":
            for cwe, item, prompt, answer in _walk(data, path, 3):
                yield (study, model, prompt.removeprefix("prompt"), *_hand_crafted(cwe, item, answer, path))
        elif study == "real-world":
            for project, cve, kind, prompt, answer in _walk(data, path, 4):
                yield (study, model, prompt, *_real_world(project, cve, kind, answer, path))
        else:
            for part in ("hand-crafted", "real-world"):
                if part not in data:
                    raise DataError(f"{path}: no {part!r} part; restore it from SecLLMHolmes' results/benchmark/")
            for cwe, item, answer in _walk(data["hand-crafted"], path, 2, ("hand-crafted",)):
                yield (study, model, "S1", *_hand_crafted(cwe, item, answer, path))
            for project, cve, kind, answer in _walk(data["real-world"], path, 3, ("real-world",)):
                yield (study, model, "S1", *_real_world(project, cve, kind, answer, path))


def _walk(node: Any, path: Path, depth: int, keys: tuple[str, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """(key_1, ..., key_depth, answer) for every answer `depth` objects down, in file order."""
    if not isinstance(node, dict):
        where = "/".join(keys) or "top level"
        raise DataError(f"{path}: {where} is not a JSON object; restore the file from SecLLMHolmes' results/")
    for key, child in node.items():
        if depth == 1:
            yield key, _answer(child, path, (*keys, key))
        else:
            for rest in _walk(child, path, depth - 1, (*keys, key)):
                yield key, *rest


def _answer(node: Any, path: Path, keys: tuple[str, ...]) -> str:
    """The parsed answer: 'yes', 'no', or 'na' for anything else (upstream writes 'n/a' or stray text)."""
    if not isinstance(node, dict) or "pred" not in node:
        raise DataError(f"{path}: {'/'.join(keys)} has no 'pred'; restore the file from SecLLMHolmes' results/")
    pred = str(node["pred"]).strip().lower()
    return pred if pred in ("yes", "no") else "na"


def _hand_crafted(cwe: str, item: str, pred: str, path: Path) -> tuple[str, str, str, int, str]:
    try:
        name = normalise_cwe(cwe)
    except ValueError as exc:
        raise DataError(f"{path}: key {cwe!r} is not a CWE id (expected like 'cwe-22')") from exc
    return "hand-crafted", name, item, 0 if item.startswith("p") else 1, pred


def _real_world(project: str, cve: str, kind: str, pred: str, path: Path) -> tuple[str, str, str, int, str]:
    if kind not in KINDS:
        raise DataError(f"{path}: {project}/{cve}/{kind}: expected 'vuln' or 'patch'")
    return "real-world", "", f"{project}/{cve}/{kind}", KINDS[kind], pred  # CWE: the loader fills it in


def _write_atomic(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:  # a read-only data root, or a file where the folder belongs
        raise DataError(f"{path}: cannot write ({exc.strerror}); make {path.parent} a writable folder") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):  # a full disk: the old file stays as it was
            raise DataError(f"{path}: cannot write ({exc.strerror}); free space and import again") from None
        raise
