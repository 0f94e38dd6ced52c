"""`SteeringVector`: per-layer directions plus the provenance needed to trust and reuse them.

On disk a vector is two files beside each other: `<stem>.safetensors` (tensors `direction.<layer>`
and `mu.<layer>`, float32) and `<stem>.json` (metadata, including the SHA-256 of the tensor file so
that a JSON paired with the wrong tensors is refused). Layer keys are vulnsteer layer indices: the
0-based block whose *output* the direction is added to.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from vulnsteer.errors import DataError, ModelError, VulnsteerError

FORMAT = "vulnsteer-steering-vector"
VERSION = 1
_TENSOR_NAME = re.compile(r"^(direction|mu)\.(\d+)$")
# Metadata fields written to / read from the JSON, in order.
_META_FIELDS = (
    "method", "position", "model_id", "model_hash", "template_id", "record_ids",
    "dataset_hash", "cwe", "scaling", "created", "extra",
)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _as_f32(t: Tensor) -> Tensor:
    return t.detach().to("cpu", torch.float32).contiguous()


@dataclass(eq=False)
class SteeringVector:
    """Directions per layer (layer -> [d]) and where they came from.

    `mu` is the per-layer training centre (midpoint of the class means) used by the amplification
    operator; None when unknown. Unknown string provenance is "" (e.g. after a GGUF import).
    """

    directions: dict[int, Tensor]
    mu: dict[int, Tensor] | None = None
    method: str = ""
    position: str = ""  # token position the residuals were read at: "answer", "code_mean", ...
    model_id: str = ""
    model_hash: str = ""
    template_id: str = ""
    record_ids: list[str] = field(default_factory=list)
    dataset_hash: str = ""
    cwe: str = "pooled"
    scaling: str = "none"
    created: str = field(default_factory=now_iso)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.directions:
            raise VulnsteerError("a steering vector needs at least one layer direction")
        self.directions = {int(k): _as_f32(v) for k, v in sorted(self.directions.items())}
        widths = {tuple(v.shape) for v in self.directions.values()}
        if len(widths) != 1 or len(next(iter(widths))) != 1:
            raise VulnsteerError(f"directions must all be 1-D of one width, got shapes {sorted(widths)}")
        if min(self.directions) < 0:
            raise VulnsteerError(f"layer indices must be >= 0, got {sorted(self.directions)}")
        if self.mu is not None:
            self.mu = {int(k): _as_f32(v) for k, v in sorted(self.mu.items())}
            if set(self.mu) != set(self.directions):
                raise VulnsteerError(f"mu layers {sorted(self.mu)} differ from direction layers {sorted(self.directions)}")
            if any(tuple(v.shape) != (self.d_model,) for v in self.mu.values()):
                raise VulnsteerError(f"every mu must have shape ({self.d_model},)")
        self.record_ids = list(self.record_ids)

    @property
    def d_model(self) -> int:
        return int(next(iter(self.directions.values())).shape[0])

    @property
    def layers(self) -> list[int]:
        return sorted(self.directions)

    def metadata(self) -> dict[str, Any]:
        """The JSON-able provenance (everything but the tensors)."""
        return {name: getattr(self, name) for name in _META_FIELDS}

    def save(self, path_stem: str | Path) -> tuple[Path, Path]:
        """Write `<stem>.safetensors` and `<stem>.json`; returns both paths."""
        tensors_path, json_path = _paths(path_stem)
        tensors = {f"direction.{k}": v for k, v in self.directions.items()}
        if self.mu is not None:
            tensors.update({f"mu.{k}": v for k, v in self.mu.items()})
        meta = {"format": FORMAT, "version": VERSION, **self.metadata()}
        try:
            json.dumps(meta, allow_nan=False)  # fail before anything is written
        except (TypeError, ValueError) as exc:
            raise VulnsteerError(f"steering vector metadata is not JSON-serialisable ({exc}); fix `extra`") from exc
        tensors_path.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(tensors_path), metadata={"format": FORMAT, "version": str(VERSION)})
        meta.update(
            layers=self.layers, d_model=self.d_model, has_mu=self.mu is not None,
            tensors_file=tensors_path.name, tensors_sha256=_sha256(tensors_path),
        )
        json_path.write_text(json.dumps(meta, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        return tensors_path, json_path

    @classmethod
    def load(
        cls,
        path_stem: str | Path,
        expect_model_hash: str | None = None,
        expect_d_model: int | None = None,
    ) -> SteeringVector:
        """Read a saved vector; refuses a missing or mismatched file, or one built for another model."""
        tensors_path, json_path = _paths(path_stem)
        for p in (json_path, tensors_path):
            if not p.is_file():
                raise DataError(f"steering vector file {p} not found; check the path or build the vector first")
        try:
            meta = json.loads(json_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{json_path} is not valid JSON ({exc}); rebuild the vector") from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise DataError(f"{json_path} is not a vulnsteer steering vector (format field missing or wrong)")
        if meta.get("version") != VERSION:
            raise DataError(f"{json_path} has format version {meta.get('version')!r}; this vulnsteer reads {VERSION}")
        if meta.get("tensors_sha256") != _sha256(tensors_path):
            raise DataError(
                f"{tensors_path} does not match {json_path} (SHA-256 differs): the two files belong to different "
                "vectors or one was edited; rebuild the vector"
            )
        try:
            tensors = load_file(str(tensors_path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise DataError(f"{tensors_path} is not a readable safetensors file ({exc})") from exc
        directions, mu = _split_tensors(tensors, tensors_path)
        if sorted(directions) != meta.get("layers"):
            raise DataError(f"{json_path} lists layers {meta.get('layers')} but {tensors_path} has {sorted(directions)}")
        if bool(mu) != bool(meta.get("has_mu")):
            raise DataError(f"{json_path} and {tensors_path} disagree on whether mu is stored")
        missing = [name for name in _META_FIELDS if name not in meta]
        if missing:
            raise DataError(f"{json_path} lacks metadata field(s) {missing}; rebuild the vector")
        if not isinstance(meta["record_ids"], list) or not isinstance(meta["extra"], dict):
            raise DataError(f"{json_path}: record_ids must be a list and extra an object")
        try:
            sv = cls(directions=directions, mu=mu or None, **{name: meta[name] for name in _META_FIELDS})
        except VulnsteerError as exc:
            raise DataError(f"{tensors_path}: {exc}") from exc
        if meta.get("d_model") != sv.d_model:
            raise DataError(f"{json_path} says d_model={meta.get('d_model')} but the tensors are {sv.d_model} wide")
        if expect_d_model is not None and sv.d_model != expect_d_model:
            raise ModelError(
                f"steering vector {tensors_path} is {sv.d_model} wide but the model's residual is {expect_d_model}; "
                f"it was built for {sv.model_id or 'another model'}"
            )
        if expect_model_hash is not None and sv.model_hash != expect_model_hash:
            raise ModelError(
                f"steering vector {tensors_path} was built for model hash {sv.model_hash or '(none)'}, "
                f"not {expect_model_hash} ({sv.model_id or 'unknown model'}); rebuild it on this model"
            )
        return sv


def _paths(path_stem: str | Path) -> tuple[Path, Path]:
    stem = Path(path_stem)
    if stem.suffix in (".safetensors", ".json"):
        stem = stem.with_suffix("")
    return Path(f"{stem}.safetensors"), Path(f"{stem}.json")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _split_tensors(tensors: dict[str, Tensor], path: Path) -> tuple[dict[int, Tensor], dict[int, Tensor]]:
    directions: dict[int, Tensor] = {}
    mu: dict[int, Tensor] = {}
    for name, t in tensors.items():
        m = _TENSOR_NAME.match(name)
        if m is None:
            raise DataError(f"{path} holds an unexpected tensor {name!r}; expected direction.<layer> / mu.<layer>")
        if t.dtype != torch.float32:
            raise DataError(f"{path}: tensor {name} is {t.dtype}, expected float32")
        (directions if m.group(1) == "direction" else mu)[int(m.group(2))] = t
    if not directions:
        raise DataError(f"{path} holds no direction.<layer> tensors")
    return directions, mu
