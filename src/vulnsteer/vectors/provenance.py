"""Where a steering vector came from: the method that built it, the readout its residuals were read at, the
model (id and source hash), the prompt template, the records it was fit on (ids and a hash of their code), the
CWE it is for, when it was made, and anything else worth keeping (`extra`, a JSON object)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from vulnsteer.errors import VulnsteerError
from vulnsteer.options import Readout

TEXT_FIELDS = ("method", "model_id", "model_hash", "template_id", "dataset_hash", "cwe", "created")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Provenance:
    """A vector's origin; every field is checked on construction ("" when unknown)."""

    method: str = ""
    position: Readout = Readout.ANSWER  # the readout the residuals were taken at
    model_id: str = ""
    model_hash: str = ""
    template_id: str = ""
    record_ids: tuple[str, ...] = ()
    dataset_hash: str = ""
    cwe: str = "pooled"
    created: str = field(default_factory=now_iso)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in TEXT_FIELDS:
            if not isinstance(getattr(self, name), str):
                raise VulnsteerError(f"steering vector {name} must be a string, got {getattr(self, name)!r}")
        if not isinstance(self.record_ids, (list, tuple)) or not all(isinstance(r, str) for r in self.record_ids):
            raise VulnsteerError("steering vector record_ids must be a list of strings")
        if not isinstance(self.extra, dict):
            raise VulnsteerError(f"steering vector extra must be a dict, got {type(self.extra).__name__}")
        set_ = object.__setattr__  # frozen: converted once, here
        set_(self, "position", Readout(self.position))
        set_(self, "record_ids", tuple(self.record_ids))
        set_(self, "extra", dict(self.extra))  # a copy: the caller's dict stays theirs

    def as_json(self) -> dict[str, Any]:
        """The fields as the vector's JSON stores them (the readout as text, the record ids as a list)."""
        return {"method": self.method, "position": self.position.value, "model_id": self.model_id,
                "model_hash": self.model_hash, "template_id": self.template_id, "record_ids": list(self.record_ids),
                "dataset_hash": self.dataset_hash, "cwe": self.cwe, "created": self.created, "extra": self.extra}
