"""What every command opens first: the data root, the records, the model, its answer words and the caches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vulnsteer.activations.cache import ActivationCache
from vulnsteer.activations.scoring import AnswerWords
from vulnsteer.data.load import load_records
from vulnsteer.data.prompts import answer_token_ids
from vulnsteer.data.records import Record
from vulnsteer.data.root import resolve_data_root
from vulnsteer.data.secllmholmes import cwe_names
from vulnsteer.errors import DataError
from vulnsteer.model.loading import LoadedModel, default_cache_dir, load_model
from vulnsteer.model.precision import DEFAULT_PRECISION, Precision
from vulnsteer.steering.reentry_check import checked


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
    records: list[Record] | None = None,
    dtype: Precision | str | None = None,
    device: str = "auto",
) -> Context:
    """Data first, so a bad path, file or CWE fails before the (slow) model load (`records`: already loaded).
    dtype None: the default precision."""
    root = resolve_data_root(data)
    records = records if records is not None else load_records(root, subsets, cwes)
    if not records:
        raise DataError(f"no records for subsets {', '.join(subsets)}; check --subset and --cwe")
    cache_dir = cache_dir or default_cache_dir()
    loaded = checked(load_model(
        model, cache_dir=cache_dir / "models", trust_remote_code=trust_remote_code,
        device=device, dtype=dtype or DEFAULT_PRECISION,
    ))
    yes, no = answer_token_ids(loaded.tokenizer)
    return Context(
        data_root=root,
        records=records,
        loaded=loaded,
        words=AnswerWords(tuple(yes), tuple(no)),
        cwe_names=cwe_names(root),
        cache=activation_cache(loaded, cache_dir),
    )


def activation_cache(loaded: LoadedModel, cache_dir: Path | None = None) -> ActivationCache:
    """The model's activation cache; activations differ between precisions, so each has its own (float32
    keeps the original folder)."""
    suffix = "" if loaded.dtype is Precision.FLOAT32 else f"-{loaded.dtype.value}"
    return ActivationCache((cache_dir or default_cache_dir()) / "activations" / f"{loaded.source_hash[:16]}{suffix}")
