"""Content hashes of everything a run's results depend on besides its settings: the data (every record, as
loaded), the prompt templates, vulnsteer's own code and the model. A run records them in config.json
(`inputs`); an interrupted run resumes only when all of them match, so an edited pairs file or a changed
model is never silently mixed with results computed before the change. Torch-free.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from vulnsteer.data.load import load_records
from vulnsteer.data.prompts import get_template
from vulnsteer.data.records import Record
from vulnsteer.experiments.config import AUTO_TEMPLATE, RunConfig
from vulnsteer.options import Train

# what each key names in an error message
WHAT = {"data": "the data (records as loaded: code, labels, ids, groups)", "template": "the prompt templates",
        "code": "vulnsteer's code", "model": "the model's weights"}


def _sha(parts: Iterable[str]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def records_hash(records: Iterable[Record]) -> str:
    """Every field of every record (not only the code: an edited label changes the results too)."""
    return _sha(sorted(json.dumps(dataclasses.asdict(r), sort_keys=True, default=list) for r in records))


@cache
def code_hash() -> str:
    """The vulnsteer package's source files, so a resumed run never mixes results of two code versions."""
    root = Path(__file__).resolve().parents[1]
    return _sha(f"{p.relative_to(root)}\0{p.read_text(encoding='utf-8')}" for p in sorted(root.rglob("*.py")))


def input_hashes(cfg: RunConfig, records: Sequence[Record], root: Path) -> dict[str, str]:
    """Hashes of the data (the records under test, the fit-on and extra training data), the templates and
    the code; the model's hash is added once it loads (its source hash)."""
    names = list(cfg.fit_on)
    if Train.AUGMENTED in cfg.train:
        names += ["augmented-trivial", "augmented-non-trivial"]
    if Train.SVEN in cfg.train:
        names.append("sven")
    extra = load_records(root, names, None) if names else []
    templates = {cfg.baseline.template, *([cfg.steer.template] if cfg.steer.template not in (None, AUTO_TEMPLATE)
                                          else [])}
    return {"data": records_hash([*records, *extra]),
            "template": _sha(repr(get_template(t)) for t in sorted(templates) if t is not None),
            "code": code_hash()}


def changed_inputs(old: Any, new: dict[str, str]) -> list[str]:
    """The inputs (of `new`'s keys) whose hash differs from the one an earlier run recorded (all of them
    when it recorded none)."""
    old = old if isinstance(old, dict) else {}
    return [key for key in new if old.get(key) != new[key]]


def describe(keys: Sequence[str]) -> str:
    return ", ".join(WHAT.get(k, k) for k in keys)
