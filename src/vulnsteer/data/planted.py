"""The planted-signal positive control: SecLLMHolmes' hand-crafted files, each with one added comment line
whose text matches the label exactly and means nothing for security (`// build: alpha` on vulnerable files,
`// build: beta` on secure ones; `#` for Python).

The residuals certainly hold this signal (a probe must find it, held-out AUROC near 1), so a run on it asks
whether steering, amplify and conditional steering carry a signal that is surely there into the model's
answer. Derived in memory from the hand-crafted records on every load; nothing is written to the data root.
Ids, pair ids and subset are prefixed `planted` so the two can be loaded together; groups stay the
hand-crafted scenario's, so grouped splits and the transfer leak guard treat a planted file and its source
as one scenario.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from vulnsteer.data.records import SECURE, VULNERABLE, Record
from vulnsteer.data.secllmholmes import load_secllmholmes
from vulnsteer.errors import DataError

PLANTED = "planted"
SOURCE = "hand-crafted"
MARKERS = {VULNERABLE: "build: alpha", SECURE: "build: beta"}
COMMENT = {"c": "//", "cpp": "//", "python": "#"}  # the line-comment syntax of each language the source holds


def marker_line(language: str, label: int) -> str:
    """The comment planted in a file of `language` with `label`, e.g. '// build: alpha' (no line break)."""
    if language not in COMMENT:
        raise DataError(f"planted: no line-comment syntax known for language {language!r}; "
                        f"the planted control covers {', '.join(COMMENT)}")
    return f"{COMMENT[language]} {MARKERS[label]}"


_CODING = re.compile(r"^[ \t\f]*#.*?coding[:=]")  # PEP 263: only valid on line 1 or 2


def _insert_at(lines: list[str], language: str) -> int:
    """The line index the marker goes before: 0, or in Python after a leading shebang and coding line,
    which must stay first for the file to mean the same."""
    if language != "python":
        return 0
    i = 1 if lines and lines[0].startswith("#!") else 0
    return i + 1 if i < len(lines) and _CODING.match(lines[i]) else i


def plant(code: str, language: str, label: int) -> str:
    """`code` with the marker as one whole line of its own, in the file's line ending; nothing else changes."""
    newline = "\r\n" if "\r\n" in code else "\n"
    lines = code.splitlines(keepends=True)
    at = _insert_at(lines, language)
    return "".join([*lines[:at], marker_line(language, label) + newline, *lines[at:]])


def planted_records(source: Sequence[Record]) -> list[Record]:
    """One planted record per source record, in the same order: same CWE, language, label, group and ground
    truth; id and pair id under `planted/` instead of the source subset."""
    def renamed(text: str, rec: Record) -> str:
        return f"{PLANTED}/{text.removeprefix(rec.subset + '/')}"

    return [replace(rec, id=renamed(rec.id, rec), subset=PLANTED,
                    pair_id=None if rec.pair_id is None else renamed(rec.pair_id, rec),
                    code=plant(rec.code, rec.language, rec.label))
            for rec in source]


def load_planted(root: Path) -> list[Record]:
    """The planted control built from `<root>/secllmholmes/hand-crafted`."""
    return planted_records(load_secllmholmes(root, [SOURCE]))
