"""The library's argument checks: a wrong type or value is a one-line `VulnsteerError` naming it, raised
before any forward pass, as on the command line. Torch-free (the command line imports `vulnsteer.api`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vulnsteer.data.records import SECURE, VULNERABLE, Record, normalise_cwe
from vulnsteer.errors import VulnsteerError

PAIRS = "pairs"


def names(value: str | Sequence[str] | None, what: str) -> list[str] | None:
    """A list of strings; a bare string is one name (not read letter by letter)."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise VulnsteerError(f"{what} must be a string or a list of strings, got {_show(value)}")
    return list(value)


def check_template(template: Any) -> str:
    from vulnsteer.data.prompts import TEMPLATES

    if not isinstance(template, str) or template not in TEMPLATES:
        raise VulnsteerError(f"unknown template {template!r}; use one of {', '.join(TEMPLATES)}")
    return template


def check_model(lm: Any) -> None:
    from vulnsteer.model.loading import LoadedModel

    if not isinstance(lm, LoadedModel):
        raise VulnsteerError(f"lm must be a LoadedModel from vulnsteer.load_model or wrap_model, not {_show(lm)}")


def check_record(record: Any) -> Record:
    if not isinstance(record, Record):
        raise VulnsteerError(f"record must be a vulnsteer Record (vulnsteer.load_records), not {_show(record)}")
    return record


def check_layers(layers: int | Sequence[int] | None, n_layers: int) -> list[int]:
    """0-based block indices; negative ones count from the last block (-1 = the last), as in repeng."""
    if layers is None:
        return list(range(n_layers))
    if isinstance(layers, bool) or not isinstance(layers, (list, tuple, range)) or not layers or not all(
            isinstance(k, int) and not isinstance(k, bool) for k in layers):
        raise VulnsteerError(f"layers must be a non-empty list of block indices such as [12] or [-1], got {_show(layers)}")
    bad = [k for k in layers if not -n_layers <= k < n_layers]
    if bad:
        raise VulnsteerError(f"layers {bad} out of range: the model has blocks 0..{n_layers - 1} (or -{n_layers}..-1)")
    return sorted({k % n_layers for k in layers})


def as_records(data: Any, cwe: str | None, language: str | None) -> list[Record]:
    """Records as given, or (vulnerable_code, secure_code) pairs made records of `cwe` in `language`."""
    if isinstance(data, (str, bytes, dict)) or not isinstance(data, Sequence) or not data:
        raise VulnsteerError("records must be a non-empty list of Records (vulnsteer.load_records) or of "
                             f"(vulnerable_code, secure_code) pairs, got {_show(data)}")
    if all(isinstance(r, Record) for r in data):
        if cwe is not None or language is not None:
            raise VulnsteerError("cwe and language go with (vulnerable_code, secure_code) pairs; Records carry their own")
        return list(data)
    if not all(isinstance(p, (tuple, list)) and len(p) == 2 and all(isinstance(c, str) for c in p) for p in data):
        bad = next(r for r in data if not isinstance(r, Record))
        raise VulnsteerError(f"records must all be Records or all (vulnerable_code, secure_code) string pairs; "
                             f"found {_show(bad)}")
    if not isinstance(cwe, str) or not isinstance(language, str) or not language.strip():
        raise VulnsteerError("(vulnerable_code, secure_code) pairs need cwe='CWE-<n>' and language='c' (or python, "
                             "...) given once")
    try:
        cwe_id = normalise_cwe(cwe)
    except ValueError:
        raise VulnsteerError(f"cwe {cwe!r} is not a CWE id; use e.g. 'CWE-787'") from None
    out = []
    for i, (vulnerable, secure) in enumerate(data):
        pair = f"{PAIRS}/{i}"
        for label, code, side in ((VULNERABLE, vulnerable, "vulnerable"), (SECURE, secure, "secure")):
            out.append(Record(id=f"{pair}/{side}", subset=PAIRS, cwe=cwe_id, language=language.strip().lower(),
                              label=label, group=pair, pair_id=pair, code=code, source_path=f"(pair {i} in memory)"))
    return out


def _show(value: Any, width: int = 60) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= width else text[:width - 3] + '...'}"
