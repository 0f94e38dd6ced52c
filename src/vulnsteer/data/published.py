"""What published LLMs answered on SecLLMHolmes (<root>/secllmholmes-published/predictions.csv)."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vulnsteer.data.records import SECURE, VULNERABLE, Record, normalise_cwe
from vulnsteer.data.secllmholmes import natural_key, read_json, read_text
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


def _real_world_cwes(root: Path) -> dict[str, str]:
    """'gpac/CVE-2023-1452' -> 'CWE-787', since the CSV leaves real-world CWEs blank."""
    path = root / "secllmholmes" / "real-world" / "cve_details.json"
    if not path.is_file():
        return {}
    details = read_json(path)
    return {f"{proj}/{cve}": normalise_cwe(info["cwe"]) for proj, cves in details.items() for cve, info in cves.items()}


def load_published(root: Path) -> list[PublishedPrediction]:
    """All rows of predictions.csv, in file order."""
    root = Path(root)
    path = root / "secllmholmes-published" / "predictions.csv"
    if not path.is_file():
        raise DataError(f"{path}: not found; put SecLLMHolmes' published predictions (predictions.csv) there")
    rw_cwes = _real_world_cwes(root)
    lines = read_text(path, code=False).splitlines()
    reader = csv.DictReader(lines)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise DataError(f"{path}: missing column {missing[0]!r}; expected columns {','.join(COLUMNS)}")
    out: list[PublishedPrediction] = []
    for number, row in enumerate(reader, start=2):
        where = f"{path}:{number}"
        if row["label"] not in ("0", "1"):
            raise DataError(f"{where}: label {row['label']!r} is not 0 or 1")
        pred = row["pred"].strip().lower()
        if pred not in PREDS:
            raise DataError(f"{where}: pred {row['pred']!r} is not one of {', '.join(PREDS)}")
        cwe = row["cwe"].strip()
        if not cwe and row["subset"] == "real-world":
            cwe = rw_cwes.get(row["item"].rsplit("/", 1)[0], "")
        out.append(
            PublishedPrediction(
                study=row["study"],
                model=row["model"],
                prompt=row["prompt"],
                subset=row["subset"],
                cwe=normalise_cwe(cwe) if cwe else "",
                item=row["item"],
                label=int(row["label"]),
                pred=pred,
            )
        )
    return out


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


def published_item_key(record: Record) -> tuple[str, str, str]:
    """(subset, cwe, item) as predictions.csv names the file of `record`, for joining our results to theirs."""
    if record.subset == "hand-crafted":
        return record.subset, record.cwe, Path(record.source_path).name
    if record.subset == "real-world":
        return record.subset, record.cwe, record.id.removeprefix("real-world/")
    raise DataError(
        f"no published predictions for subset {record.subset!r} (record {record.id}); "
        f"they cover only {', '.join(PUBLISHED_SUBSETS)}"
    )


def prediction_key(pred: PublishedPrediction) -> tuple[str, str, str]:
    """The same (subset, cwe, item) key for a published row."""
    return pred.subset, pred.cwe, pred.item
