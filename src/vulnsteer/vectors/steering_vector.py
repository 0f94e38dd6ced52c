"""`SteeringVector`: the one type for "a direction, how to apply it, and where it came from".

A vector holds, per layer, a unit direction `u` (oriented towards "vulnerable"), the training centre
`mu` the amplify/ablate operators project from, and three scales an additive strength can be counted
in (`StrengthUnit`): the spread `sigma` of the training projections onto `u`, the mean residual norm at
that layer, and the norm of the direction as the method built it (`raw_norm`). It also carries how it
is meant to be applied (operator, alpha, unit, scope: what an experiment chose on validation data) and
its provenance. `apply(model)` is a context manager, as in steering-vectors; `+`, `-` and `*` work as
in repeng's `ControlVector`; `save`/`load` use safetensors + JSON; `to_gguf`/`from_gguf` write and read
llama.cpp control vectors.

Layer keys are vulnsteer layer indices: the 0-based block whose *output* is read and steered.

On disk: `<stem>.safetensors` (float32 tensors `direction.<layer>` and `mu.<layer>`) and `<stem>.json`
(everything else, including the SHA-256 of the tensor file, so a JSON paired with the wrong tensors is
refused). What `vulnsteer run` saves is exactly the object its experiment scored.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from vulnsteer.errors import DataError, ModelError, VulnsteerError
from vulnsteer.io import atomic_write_text, sha256_file
from vulnsteer.model.loading import LoadedModel
from vulnsteer.options import Operator, Scope, StrengthUnit
from vulnsteer.vectors.hooks import steer
from vulnsteer.vectors.operators import Intervention

FORMAT = "vulnsteer-steering-vector"
VERSION = 2
_TENSOR_NAME = re.compile(r"^(direction|mu)\.(\d+)$")
# Metadata fields written to / read from the JSON, in order.
_META_FIELDS = (
    "method", "position", "model_id", "model_hash", "template_id", "record_ids", "dataset_hash", "cwe",
    "operator", "alpha", "unit", "scope", "created", "extra",
)
_STAT_FIELDS = ("raw_norm", "sigma", "mean_norm")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _as_f32(t: Tensor) -> Tensor:
    return t.detach().to("cpu", torch.float32).contiguous()


def _layer_floats(name: str, values: dict[Any, Any] | None, layers: list[int]) -> dict[int, float] | None:
    if values is None:
        return None
    try:
        out = {int(k): float(v) for k, v in values.items()}
    except (TypeError, ValueError):
        raise VulnsteerError(f"steering vector {name} must map layers to numbers") from None
    if sorted(out) != layers:
        raise VulnsteerError(f"steering vector {name} covers layers {sorted(out)}, the directions {layers}")
    if not all(math.isfinite(v) for v in out.values()):
        raise VulnsteerError(f"steering vector {name} contains NaN or inf")
    return out


@dataclass(eq=False)
class SteeringVector:
    """Per-layer unit directions with their centres and scales, how to apply them, and provenance.

    `directions` may be given un-normalised (a raw mean difference, say) when `raw_norm` is None: they are
    then normalised and their norms kept as `raw_norm`, so `unit="raw"` adds exactly what was given.
    `sigma`/`mean_norm`/`mu` are None when unknown (e.g. after a GGUF import); operators needing them refuse.
    """

    directions: dict[int, Tensor]
    mu: dict[int, Tensor] | None = None
    raw_norm: dict[int, float] | None = None
    sigma: dict[int, float] | None = None
    mean_norm: dict[int, float] | None = None
    method: str = ""
    position: str = "answer"  # the readout the residuals were taken at
    operator: str = Operator.ADD.value
    alpha: float = 1.0
    unit: str = StrengthUnit.RAW.value
    scope: str = Scope.ALL.value
    model_id: str = ""
    model_hash: str = ""
    template_id: str = ""
    record_ids: list[str] = field(default_factory=list)
    dataset_hash: str = ""
    cwe: str = "pooled"
    created: str = field(default_factory=now_iso)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.directions:
            raise VulnsteerError("a steering vector needs at least one layer direction")
        dirs = {int(k): _as_f32(v) for k, v in sorted(self.directions.items())}
        widths = {tuple(v.shape) for v in dirs.values()}
        if len(widths) != 1 or len(next(iter(widths))) != 1:
            raise VulnsteerError(f"directions must all be 1-D of one width, got shapes {sorted(widths)}")
        if min(dirs) < 0:
            raise VulnsteerError(f"layer indices must be >= 0, got {sorted(dirs)}")
        if not all(bool(torch.isfinite(v).all()) for v in dirs.values()):
            raise VulnsteerError("steering vector directions contain NaN or inf; refit the vector")
        layers = sorted(dirs)
        if self.raw_norm is None:
            norms = {k: float(v.norm()) for k, v in dirs.items()}
            if any(n == 0.0 for n in norms.values()):
                raise VulnsteerError("a steering direction is all zeros; there is nothing to steer with")
            self.raw_norm, dirs = norms, {k: v / norms[k] for k, v in dirs.items()}
        self.directions = dirs
        self.raw_norm = _layer_floats("raw_norm", self.raw_norm, layers)
        self.sigma = _layer_floats("sigma", self.sigma, layers)
        self.mean_norm = _layer_floats("mean_norm", self.mean_norm, layers)
        if self.mu is not None:
            self.mu = {int(k): _as_f32(v) for k, v in sorted(self.mu.items())}
            if sorted(self.mu) != layers:
                raise VulnsteerError(f"mu layers {sorted(self.mu)} differ from direction layers {layers}")
            if any(tuple(v.shape) != (self.d_model,) or not bool(torch.isfinite(v).all()) for v in self.mu.values()):
                raise VulnsteerError(f"every mu must be a finite vector of shape ({self.d_model},)")
        self.operator = Operator(self.operator).value
        self.unit = StrengthUnit(self.unit).value
        self.scope = Scope(self.scope).value
        if not math.isfinite(float(self.alpha)):
            raise VulnsteerError(f"steering alpha must be finite, got {self.alpha!r}")
        self.alpha = float(self.alpha)
        self.record_ids = list(self.record_ids)

    # ----------------------------------------------------------------- shape and scales
    @property
    def d_model(self) -> int:
        return int(next(iter(self.directions.values())).shape[0])

    @property
    def layers(self) -> list[int]:
        return sorted(self.directions)

    def scale(self, layer: int, unit: str | StrengthUnit | None = None) -> float:
        """Length of one additive strength unit at `layer` (the vector's own unit when None)."""
        unit = StrengthUnit(unit or self.unit)
        table = {StrengthUnit.SIGMA: self.sigma, StrengthUnit.MEAN_NORM: self.mean_norm, StrengthUnit.RAW: self.raw_norm}
        if unit is StrengthUnit.UNIT:
            return 1.0
        stats = table[unit]
        if stats is None:
            raise VulnsteerError(f"this steering vector has no {unit.value} statistics; use unit='raw' or 'unit'")
        return stats[layer]

    def at_layer(self, layer: int) -> SteeringVector:
        """The same vector restricted to one layer."""
        if layer not in self.directions:
            raise VulnsteerError(f"the steering vector has no layer {layer}; it has {self.layers}")
        def pick(d: dict[int, Any] | None) -> dict[int, Any] | None:
            return None if d is None else {layer: d[layer]}

        return replace(self, directions={layer: self.directions[layer]}, mu=pick(self.mu),
                       raw_norm=pick(self.raw_norm), sigma=pick(self.sigma), mean_norm=pick(self.mean_norm),
                       record_ids=list(self.record_ids), extra=dict(self.extra))

    def with_application(self, operator: str, alpha: float, unit: str | None = None, scope: str | None = None) -> SteeringVector:
        """A copy that applies itself with these settings by default."""
        return replace(self, operator=operator, alpha=alpha, unit=unit or self.unit, scope=scope or self.scope,
                       record_ids=list(self.record_ids), extra=dict(self.extra))

    # ----------------------------------------------------------------- applying
    def interventions(
        self, alpha: float | None = None, operator: str | None = None, unit: str | None = None
    ) -> list[Intervention]:
        """One `Intervention` per layer (the hook-level edit); None: the vector's own."""
        from vulnsteer.vectors.operators import Intervention

        op = Operator(operator or self.operator)
        a = self.alpha if alpha is None else float(alpha)
        out = []
        for layer in self.layers:
            u = self.directions[layer]
            if op is Operator.ADD:
                out.append(Intervention(layer, "add", u * self.scale(layer, unit), a))
            else:
                mu = None if self.mu is None else self.mu[layer]
                out.append(Intervention(layer, op.value, u, a if op is Operator.AMPLIFY else 1.0, mu))
        return out

    @contextmanager
    def apply(
        self,
        model: Any,
        alpha: float | None = None,
        operator: str | None = None,
        unit: str | None = None,
        scope: str | None = None,
        prompt_len: Any = None,
        span: Any = None,
    ) -> Iterator[None]:
        """Steer `model` (a `LoadedModel` or a transformers model) inside the block; restored on exit.

        Arguments left None take the vector's own settings (what the experiment that built it chose).
        Scope "answer" steers the last prompt token; without `prompt_len` it is read from the first
        forward without a KV cache (the prompt), so `model.generate(...)` and a plain call both work.
        Scope "span" steers the token range `span` = (start, end) (one pair, or one per row).
        """

        net = model.model if isinstance(model, LoadedModel) else model
        chosen = Scope(scope or self.scope).value
        ivs = self.interventions(alpha, operator, unit)
        with steer(net, ivs, scope=chosen, prompt_len=prompt_len, span=span):  # type: ignore[arg-type]
            yield

    # ----------------------------------------------------------------- arithmetic (repeng's ControlVector)
    def _raw(self) -> dict[int, Tensor]:
        assert self.raw_norm is not None
        return {k: v * self.raw_norm[k] for k, v in self.directions.items()}

    def __add__(self, other: SteeringVector) -> SteeringVector:
        if not isinstance(other, SteeringVector):
            return NotImplemented
        if other.d_model != self.d_model:
            raise VulnsteerError(f"cannot add vectors of widths {self.d_model} and {other.d_model}")
        a, b = self._raw(), other._raw()
        zero = torch.zeros(self.d_model)
        summed = {k: a.get(k, zero) + b.get(k, zero) for k in sorted(set(a) | set(b))}
        # A sum is a new direction: its training statistics are unknown, so it adds raw lengths by default.
        return SteeringVector(directions=summed, method=f"({self.method}+{other.method})", position=self.position,
                              model_id=self.model_id, model_hash=self.model_hash, template_id=self.template_id,
                              cwe=self.cwe, extra={"combined_from": [self.metadata(), other.metadata()]})

    def __mul__(self, k: float) -> SteeringVector:
        k = float(k)
        if not math.isfinite(k) or k == 0.0:
            raise VulnsteerError(f"scale a steering vector by a finite non-zero number, got {k}")
        flip = -1.0 if k < 0 else 1.0
        assert self.raw_norm is not None
        return replace(self, directions={layer: v * flip for layer, v in self.directions.items()},
                       raw_norm={layer: n * abs(k) for layer, n in self.raw_norm.items()},
                       record_ids=list(self.record_ids), extra=dict(self.extra))

    __rmul__ = __mul__

    def __neg__(self) -> SteeringVector:
        return self * -1.0

    def __sub__(self, other: SteeringVector) -> SteeringVector:
        return self + (-other)

    # ----------------------------------------------------------------- files
    def metadata(self) -> dict[str, Any]:
        """The JSON-able description (everything but the tensors)."""
        meta = {name: getattr(self, name) for name in _META_FIELDS}
        for name in _STAT_FIELDS:
            values = getattr(self, name)
            meta[name] = None if values is None else {str(k): v for k, v in values.items()}
        return meta

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
        # One metadata entry: safetensors writes its metadata map in hash order, which differs between calls,
        # so two entries made the same vector's file differ byte for byte from run to run.
        save_file(tensors, str(tensors_path), metadata={"format": f"{FORMAT}/{VERSION}"})
        meta.update(layers=self.layers, d_model=self.d_model, has_mu=self.mu is not None,
                    tensors_file=tensors_path.name, tensors_sha256=sha256_file(tensors_path))
        atomic_write_text(json_path, json.dumps(meta, indent=2, allow_nan=False) + "\n")
        return tensors_path, json_path

    @classmethod
    def load(
        cls, path_stem: str | Path, expect_model_hash: str | None = None, expect_d_model: int | None = None
    ) -> SteeringVector:
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
            sv = cls(directions=directions, mu=mu or None, **{n: meta[n] for n in (*_META_FIELDS, *_STAT_FIELDS)})
        except (VulnsteerError, ValueError, TypeError) as exc:
            raise DataError(f"{json_path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        if meta.get("d_model") != sv.d_model:
            raise DataError(f"{json_path} says d_model={meta.get('d_model')} but the tensors are {sv.d_model} wide")
        if expect_d_model is not None and sv.d_model != expect_d_model:
            raise ModelError(f"steering vector {tensors_path} is {sv.d_model} wide but the model's residual is "
                             f"{expect_d_model}; it was built for {sv.model_id or 'another model'}")
        if expect_model_hash is not None and sv.model_hash != expect_model_hash:
            raise ModelError(f"steering vector {tensors_path} was built for model hash {sv.model_hash or '(none)'}, "
                             f"not {expect_model_hash} ({sv.model_id or 'unknown model'}); rebuild it on this model")
        return sv

    def to_gguf(self, path: str | Path, model_hint: str, alpha: float | None = None) -> Path:
        """Write a llama.cpp control vector of the additive offset (alpha x unit x direction per layer)."""
        from vulnsteer.vectors.gguf_io import export_control_vector

        return export_control_vector(self, Path(path), model_hint, alpha=self.alpha if alpha is None else alpha)

    @classmethod
    def from_gguf(cls, path: str | Path) -> SteeringVector:
        """Read a llama.cpp / repeng / vulnsteer control-vector GGUF."""
        from vulnsteer.vectors.gguf_io import import_control_vector

        return import_control_vector(Path(path))


def _read_meta(json_path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DataError(f"{json_path} is not valid JSON ({type(exc).__name__}); rebuild the vector") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(f"{json_path} is not a vulnsteer steering vector (format field missing or wrong)")
    if meta.get("version") != VERSION:
        raise DataError(f"{json_path} has format version {meta.get('version')!r}; this vulnsteer reads {VERSION}")
    missing = [name for name in (*_META_FIELDS, *_STAT_FIELDS) if name not in meta]
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
