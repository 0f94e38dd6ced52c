"""What published LLMs answered on SecLLMHolmes (<root>/secllmholmes-published/predictions.csv)."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vulnsteer.data.files import read_json, read_text
from vulnsteer.data.records import SECURE, VULNERABLE, normalise_cwe
from vulnsteer.data.secllmholmes import natural_key
from vulnsteer.errors import DataError

COLUMNS = ("study", "model", "prompt", "subset", "cwe", "item", "label", "pred")
PREDS = ("yes", "no", "na")
PUBLISHED_SUBSETS = ("hand-crafted", "real-world")
METRICS = ("accuracy", "tpr", "tnr", "na_rate", "n")


@dataclass(frozen=True)
class PublishedPrediction:
    """One published answer: `pred` is 'yes', 'no' or 'na' (no usable answer); `label` 1 vulnerable, 0 secure."""

    study: str  # "prompts", "real-world" or "benchmark"
    model: str
    prompt: str  # e.g. "S1", "ZT"
    subset: str  # "hand-crafted" or "real-world"
    cwe: str  # normalised; real-world rows get theirs from cve_details.json
    item: str  # "p_1.c" (hand-crafted) or "gpac/CVE-2023-1452/vuln" (real-world)
    label: int
    pred: str


def published_csv(root: Path) -> Path:
    """Where predictions.csv is expected under the data root."""
    return Path(root) / "secllmholmes-published" / "predictions.csv"


def published_missing(root: Path) -> str | None:
    """None when predictions.csv is there; else a one-line note for reports ("published answers not available").

    The file is optional: a run without it still compares nothing, rather than failing.
    """
    path = published_csv(root)
    if path.is_file():
        return None
    return (
        f"published answers not available ({path} not found); build it with "
        "`vulnsteer data import-published SecLLMHolmes/results`"
    )


def _real_world_cwes(root: Path) -> dict[str, str]:
    """'gpac/CVE-2023-1452' -> 'CWE-787', since the CSV leaves real-world CWEs blank."""
    path = root / "secllmholmes" / "real-world" / "cve_details.json"
    if not path.is_file():
        return {}
    out: dict[str, str] = {}
    for proj, cves in read_json(path).items():
        for cve, info in cves.items() if isinstance(cves, dict) else ():
            cwe = info.get("cwe") if isinstance(info, dict) else None
            try:
                out[f"{proj}/{cve}"] = normalise_cwe(str(cwe))
            except ValueError:
                continue  # the records loader reports a bad cve_details.json; here the CWE just stays blank
    return out


def load_published(root: Path) -> list[PublishedPrediction]:
    """All rows of predictions.csv, in file order; [] when the file is absent (see `published_missing`)."""
    root = Path(root)
    path = published_csv(root)
    if not path.is_file():
        return []
    rw_cwes = _real_world_cwes(root)
    lines = read_text(path, code=False).splitlines()
    reader = csv.DictReader(lines)
    try:
        header = reader.fieldnames or []
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise DataError(f"{path}: missing column {missing[0]!r}; expected columns {','.join(COLUMNS)}")
        return [_row(row, f"{path}:{number}", rw_cwes) for number, row in enumerate(reader, start=2)]
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: not valid CSV ({exc}); restore the file or rebuild it") from exc


def _row(row: dict[str, str | None], where: str, rw_cwes: dict[str, str]) -> PublishedPrediction:
    cells = {c: row.get(c) for c in COLUMNS}
    if any(v is None for v in cells.values()) or None in row:  # DictReader: None for short rows, key None for long
        expected = f"{len(COLUMNS)} cells ({','.join(COLUMNS)})"
        raise DataError(f"{where}: expected {expected}; the row is cut short or too long, restore or rebuild the file")
    text: dict[str, str] = {c: str(v) for c, v in cells.items()}
    if text["label"] not in ("0", "1"):
        raise DataError(f"{where}: label {text['label']!r} is not 0 or 1")
    pred = text["pred"].strip().lower()
    if pred not in PREDS:
        raise DataError(f"{where}: pred {text['pred']!r} is not one of {', '.join(PREDS)}")
    cwe = text["cwe"].strip()
    if not cwe and text["subset"] == "real-world":
        cwe = rw_cwes.get(text["item"].rsplit("/", 1)[0], "")
    try:
        cwe = normalise_cwe(cwe) if cwe else ""
    except ValueError as exc:
        raise DataError(f"{where}: cwe {text['cwe']!r} is not a CWE id; write it like CWE-787") from exc
    return PublishedPrediction(
        study=text["study"], model=text["model"], prompt=text["prompt"], subset=text["subset"],
        cwe=cwe, item=text["item"], label=int(text["label"]), pred=pred,
    )  # fmt: skip


def _metrics(preds: Sequence[PublishedPrediction]) -> dict[str, float]:
    vulnerable = [p for p in preds if p.label == VULNERABLE]
    secure = [p for p in preds if p.label == SECURE]
    hits_v = sum(p.pred == "yes" for p in vulnerable)
    hits_s = sum(p.pred == "no" for p in secure)
    return {
        "accuracy": (hits_v + hits_s) / len(preds),  # 'na' is never a hit: counted wrong
        "tpr": hits_v / len(vulnerable) if vulnerable else math.nan,
        "tnr": hits_s / len(secure) if secure else math.nan,
        "na_rate": sum(p.pred == "na" for p in preds) / len(preds),
        "n": float(len(preds)),
    }


def published_table(
    preds: Sequence[PublishedPrediction], study: str, prompt: str, subset: str
) -> dict[str, dict[str, dict[str, float]]]:
    """model -> (CWE or "all") -> metric (accuracy, tpr, tnr, na_rate, n) for one study/prompt/subset."""
    chosen = [p for p in preds if (p.study, p.prompt, p.subset) == (study, prompt, subset)]
    if not chosen:
        have = sorted({(p.study, p.prompt, p.subset) for p in preds})
        raise DataError(
            f"no published predictions for study={study!r} prompt={prompt!r} subset={subset!r}; "
            f"available: {', '.join('/'.join(h) for h in have)}"
        )
    by_model: dict[str, list[PublishedPrediction]] = defaultdict(list)
    for p in chosen:
        by_model[p.model].append(p)
    table: dict[str, dict[str, dict[str, float]]] = {}
    for model in sorted(by_model):
        rows = by_model[model]
        cwes = sorted({p.cwe for p in rows if p.cwe}, key=natural_key)
        table[model] = {"all": _metrics(rows)} | {c: _metrics([p for p in rows if p.cwe == c]) for c in cwes}
    return table
