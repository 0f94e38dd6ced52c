"""What every command opens first: the data root, the records, the model, its answer words, the caches,
and the run folder the results go to."""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vulnsteer import __version__
from vulnsteer.activations.cache import ActivationCache
from vulnsteer.data.pairs import load_pairs_jsonl
from vulnsteer.data.prompts import answer_token_ids
from vulnsteer.data.records import Record
from vulnsteer.data.root import resolve_data_root
from vulnsteer.data.secllmholmes import SUBSETS, cwe_names, load_secllmholmes, select
from vulnsteer.data.sven import load_sven
from vulnsteer.errors import DataError
from vulnsteer.evaluation.scoring import AnswerWords
from vulnsteer.model.loading import LoadedModel, default_cache_dir, load_model
from vulnsteer.model.precision import DEFAULT_PRECISION, Precision


def load_records(root: Path, subsets: Sequence[str], cwes: Sequence[str] | None = None) -> list[Record]:
    """Records of the named subsets: SecLLMHolmes subset names, "sven", or a path to a pairs JSONL file."""
    records: list[Record] = []
    wanted = [s for s in subsets if s in SUBSETS]
    if wanted:
        records += load_secllmholmes(root, wanted)
    for name in subsets:
        if name in SUBSETS:
            continue
        if name == "sven":
            records += load_sven(root)
        elif name.endswith(".jsonl"):
            records += load_pairs_jsonl(Path(name))
        else:
            raise DataError(
                f"unknown subset {name!r}; use one of {', '.join(SUBSETS)}, 'sven', or a path to a pairs .jsonl file"
            )
    return select(records, cwes)


@dataclass
class Context:
    data_root: Path
    records: list[Record]  # the records under study, loaded (and validated) before the model
    loaded: LoadedModel
    words: AnswerWords
    cwe_names: dict[str, str]
    cache: ActivationCache


def open_context(
    model: str,
    data: Path | None,
    cache_dir: Path | None,
    subsets: Sequence[str],
    cwes: Sequence[str] | None = None,
    trust_remote_code: bool = False,
    dtype: str | None = None,
    device: str = "auto",
) -> Context:
    """Data first, so a bad path, file or CWE fails before the (slow) model load. dtype None: the default."""
    root = resolve_data_root(data)
    records = load_records(root, subsets, cwes)
    if not records:
        raise DataError(f"no records for subsets {', '.join(subsets)}; check --subset and --cwe")
    cache_dir = cache_dir or default_cache_dir()
    loaded = load_model(
        model, cache_dir=cache_dir / "models", trust_remote_code=trust_remote_code,
        device=device, dtype=dtype or DEFAULT_PRECISION,
    )
    # Activations differ between precisions, so each has its own cache; float32 keeps the original folder.
    suffix = "" if loaded.dtype == Precision.FLOAT32.value else f"-{loaded.dtype}"
    yes, no = answer_token_ids(loaded.tokenizer)
    return Context(
        data_root=root,
        records=records,
        loaded=loaded,
        words=AnswerWords(tuple(yes), tuple(no)),
        cwe_names=cwe_names(root),
        cache=ActivationCache(cache_dir / "activations" / f"{loaded.source_hash[:16]}{suffix}"),
    )


def _clean(value: Any) -> Any:
    """JSON has no NaN: write null, so every reader (browsers, jq) accepts the files."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


@dataclass
class RunDir:
    """A run folder; every write is complete-file-or-nothing so an interrupted run leaves valid files."""

    path: Path
    config: dict[str, Any] = field(default_factory=dict)
    _started: float = field(default_factory=time.time)

    @classmethod
    def create(cls, out: Path | None, command: str, config: dict[str, Any]) -> "RunDir":
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        path = out or Path("runs") / f"{stamp}-{command}"
        path.mkdir(parents=True, exist_ok=True)
        run = cls(path, {"command": command, "vulnsteer": __version__, "started": stamp, **config, "stages": {}})
        run.write_json("config.json", run.config)
        return run

    def stage(self, name: str, seconds: float) -> None:
        self.config["stages"][name] = round(seconds, 2)
        self.config["wall_seconds"] = round(time.time() - self._started, 2)
        self.write_json("config.json", self.config)

    def _target(self, name: str) -> Path:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def _replace(self, name: str, text: str) -> Path:
        target = self._target(name)
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
        return target

    def write_json(self, name: str, obj: Any) -> Path:
        return self._replace(name, json.dumps(_clean(obj), indent=1, allow_nan=False) + "\n")

    def write_jsonl(self, name: str, rows: Iterable[dict[str, Any]]) -> Path:
        return self._replace(name, "".join(json.dumps(_clean(r), allow_nan=False) + "\n" for r in rows))

    def write_csv(self, name: str, rows: Sequence[dict[str, Any]]) -> Path:
        target = self._target(name)
        tmp = target.with_suffix(".csv.tmp")
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            if rows:
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(_clean(list(rows)))
        tmp.replace(target)
        return target
