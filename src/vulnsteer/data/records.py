"""The typed record every loader produces and every later stage consumes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

VULNERABLE = 1
SECURE = 0


@dataclass(frozen=True)
class Record:
    """One code sample with its label and the structure needed for leak-free splits.

    `group` is the unit of splitting: every record derived from one scenario (its patched twin, its
    augmentations) shares a group, so grouped splits never put a scenario in both train and test.
    """

    id: str  # stable, e.g. "hand-crafted/CWE-22/p_1"
    subset: str  # "hand-crafted", "augmented-trivial", "augmented-non-trivial", "real-world", "few-shot", "sven", "planted", ...
    cwe: str  # normalised "CWE-<n>" without leading zeros, e.g. "CWE-78"
    language: str  # "c", "cpp", "python", ...
    label: int  # VULNERABLE (1) or SECURE (0)
    group: str  # scenario group id
    pair_id: str | None  # id shared by a vulnerable record and its patched counterpart; None if unpaired
    code: str
    source_path: str  # file the code came from (line number appended for JSONL sources)
    ground_truth: str = ""  # the dataset's explanation sentence(s), if any
    flags: tuple[str, ...] = field(default_factory=tuple)  # known label problems, e.g. "label-doubtful"
    variant: str = ""  # augmentation or other variant tag, e.g. "A3" or "A1_0"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.code.encode("utf-8")).hexdigest()

    @property
    def is_vulnerable(self) -> bool:
        return self.label == VULNERABLE


def normalise_cwe(text: str) -> str:
    """'cwe-078', 'CWE-78', '78' -> 'CWE-78'."""
    raw = text.strip().upper().removeprefix("CWE-").removeprefix("CWE_").removeprefix("CWE")
    if not raw.isdigit():
        raise ValueError(f"not a CWE id: {text!r}")
    return f"CWE-{int(raw)}"
