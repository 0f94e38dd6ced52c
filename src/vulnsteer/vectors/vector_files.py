"""Steering vectors on disk: `<stem>.safetensors` (float32 `direction.<layer>` and `mu.<layer>`) and
`<stem>.json` (everything else, with the SHA-256 of the tensor file, so a JSON paired with the wrong tensors
is refused). Loading rebuilds the vector through its constructor, so every value the JSON carries is
validated as a fresh vector's would be (a negative sigma, an unknown operator, a string alpha: refused).

The JSON is flat, one key per field of the vector's three parts (`Directions`' scales, `Application`,
`Provenance`), as it was before the vector was split into them: files written then load unchanged."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from vulnsteer.errors import DataError, ModelError, VulnsteerError
from vulnsteer.io import atomic_write_text, sha256_file
from vulnsteer.vectors.application import Application
from vulnsteer.vectors.directions import STAT_FIELDS, Directions
from vulnsteer.vectors.provenance import Provenance

FORMAT = "vulnsteer-steering-vector"
VERSION = 2
# The JSON's keys besides the scales, in the order they are written.
META_FIELDS = (
    "method", "position", "model_id", "model_hash", "template_id", "record_ids", "dataset_hash", "cwe",
    "operator", "alpha", "unit", "scope", "created", "extra",
)
APPLICATION_FIELDS = ("operator", "alpha", "unit", "scope")
_TENSOR_NAME = re.compile(r"^(direction|mu)\.(\d+)$")


def metadata(directions: Directions, application: Application, provenance: Provenance) -> dict[str, Any]:
    """The JSON-able description of a vector (everything but the tensors), enums as their text."""
    flat = {**provenance.as_json(), **application.as_json()}
    return {**{name: flat[name] for name in META_FIELDS}, **directions.scale_table()}


def _parts(directions: dict[int, Tensor], mu: dict[int, Tensor] | None,
           meta: dict[str, Any]) -> tuple[Directions, Application, Provenance]:
    """The three parts of a vector from its tensors and its flat JSON `meta`; validated as a new vector's."""
    provenance = Provenance(**{n: meta[n] for n in META_FIELDS if n not in APPLICATION_FIELDS})
    stats = {name: meta[name] for name in STAT_FIELDS}
    return Directions(directions, mu, **stats), Application(**{n: meta[n] for n in APPLICATION_FIELDS}), provenance


def save_vector(directions: Directions, application: Application, provenance: Provenance,
                path_stem: str | Path) -> tuple[Path, Path]:
    """Write `<stem>.safetensors` and `<stem>.json`; returns both paths."""
    tensors_path, json_path = _paths(path_stem)
    tensors = {f"direction.{k}": v for k, v in directions.items()}
    if directions.mu is not None:
        tensors.update({f"mu.{k}": v for k, v in directions.mu.items()})
    meta = {"format": FORMAT, "version": VERSION, **metadata(directions, application, provenance)}
    try:
        json.dumps(meta, allow_nan=False)  # fail before anything is written
    except (TypeError, ValueError) as exc:
        raise VulnsteerError(f"steering vector metadata is not JSON-serialisable ({exc}); fix `extra`") from exc
    tensors_path.parent.mkdir(parents=True, exist_ok=True)
    # One metadata entry: safetensors writes its metadata map in hash order, which differs between calls,
    # so two entries made the same vector's file differ byte for byte from run to run.
    save_file(tensors, str(tensors_path), metadata={"format": f"{FORMAT}/{VERSION}"})
    meta.update(layers=directions.layers, d_model=directions.d_model, has_mu=directions.mu is not None,
                tensors_file=tensors_path.name, tensors_sha256=sha256_file(tensors_path))
    atomic_write_text(json_path, json.dumps(meta, indent=2, allow_nan=False) + "\n")
    return tensors_path, json_path


def load_vector(
    path_stem: str | Path, expect_model_hash: str | None = None, expect_d_model: int | None = None,
) -> tuple[Directions, Application, Provenance]:
    """Read a saved vector; refuses a missing or mismatched file, or one built for another model."""
    tensors_path, json_path = _paths(path_stem)
    for p in (json_path, tensors_path):
        if not p.is_file():
            raise DataError(f"steering vector file {p} not found; check the path or build the vector first")
    meta = _read_meta(json_path)
    if meta.get("tensors_sha256") != sha256_file(tensors_path):
        raise DataError(f"{tensors_path} does not match {json_path} (SHA-256 differs): the two files belong to "
                        "different vectors or one was edited; rebuild the vector")
    try:
        tensors = load_file(str(tensors_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataError(f"{tensors_path} is not a readable safetensors file ({exc})") from exc
    directions, mu = _split_tensors(tensors, tensors_path)
    if sorted(directions) != meta.get("layers"):
        raise DataError(f"{json_path} lists layers {meta.get('layers')} but {tensors_path} has {sorted(directions)}")
    if bool(mu) != bool(meta.get("has_mu")):
        raise DataError(f"{json_path} and {tensors_path} disagree on whether mu is stored")
    try:
        dirs, application, provenance = _parts(directions, mu or None, meta)
    except (VulnsteerError, ValueError, TypeError) as exc:
        raise DataError(f"{json_path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    d_model, model_id, model_hash = dirs.d_model, provenance.model_id, provenance.model_hash
    if meta.get("d_model") != d_model:
        raise DataError(f"{json_path} says d_model={meta.get('d_model')} but the tensors are {d_model} wide")
    if expect_d_model is not None and d_model != expect_d_model:
        raise ModelError(f"steering vector {tensors_path} is {d_model} wide but the model's residual is "
                         f"{expect_d_model}; it was built for {model_id or 'another model'}")
    if expect_model_hash is not None and model_hash != expect_model_hash:
        raise ModelError(f"steering vector {tensors_path} was built for model hash {model_hash or '(none)'}, "
                         f"not {expect_model_hash} ({model_id or 'unknown model'}); rebuild it on this model")
    return dirs, application, provenance


def _read_meta(json_path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DataError(f"{json_path} is not valid JSON ({type(exc).__name__}); rebuild the vector") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(f"{json_path} is not a vulnsteer steering vector (format field missing or wrong)")
    if meta.get("version") != VERSION:
        raise DataError(f"{json_path} has format version {meta.get('version')!r}; this vulnsteer reads {VERSION}")
    missing = [name for name in (*META_FIELDS, *STAT_FIELDS) if name not in meta]
    if missing:
        raise DataError(f"{json_path} lacks metadata field(s) {missing}; rebuild the vector")
    if not isinstance(meta["record_ids"], list) or not isinstance(meta["extra"], dict):
        raise DataError(f"{json_path}: record_ids must be a list and extra an object")
    return meta


def _paths(path_stem: str | Path) -> tuple[Path, Path]:
    stem = Path(path_stem)
    if stem.suffix in (".safetensors", ".json"):
        stem = stem.with_suffix("")
    return Path(f"{stem}.safetensors"), Path(f"{stem}.json")


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
