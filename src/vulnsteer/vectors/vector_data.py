"""The data of a steering vector: per-layer directions with their centres and scales (the maths), the
settings it applies itself with, and where it came from; validated on construction, however it was made.

`SteeringVector` (vectors/steering_vector.py) adds what uses other modules: applying it to a model, `+`,
`-`, `*`, and its files. The file and arithmetic modules build vectors from this class's fields, so they
import this module and not `SteeringVector`, which imports them.

Layer keys are vulnsteer layer indices: the 0-based block whose *output* is read and steered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, TypeVar

import torch
from torch import Tensor

from vulnsteer.errors import VulnsteerError
from vulnsteer.options import Operator, Readout, Scope, StrengthUnit
from vulnsteer.vectors.operators import Intervention

# Metadata fields written to / read from the JSON, in order.
META_FIELDS = (
    "method", "position", "model_id", "model_hash", "template_id", "record_ids", "dataset_hash", "cwe",
    "operator", "alpha", "unit", "scope", "created", "extra",
)
STAT_FIELDS = ("raw_norm", "sigma", "mean_norm")

V = TypeVar("V", bound="VectorData")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _as_f32(t: Any, what: str = "direction") -> Tensor:
    if not isinstance(t, Tensor):
        raise VulnsteerError(f"a steering vector {what} must be a torch.Tensor, got {type(t).__name__}; "
                             "wrap it with torch.tensor(...)")
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
    if not all(v > 0 for v in out.values()):
        # A length: a negative one would silently reverse the direction, a zero one steer by nothing.
        raise VulnsteerError(f"steering vector {name} must be > 0 at every layer, got {out}")
    return out


@dataclass(eq=False)
class VectorData:
    """Per-layer unit directions with their centres and scales, how to apply them, and provenance
    (the public type is its subclass `SteeringVector`).

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
    # Every position, as a llama.cpp / repeng control vector: a vector no experiment chose a scope for then adds
    # in `apply` what its GGUF export adds; a run's saved vectors carry the scope the experiment chose.
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
        if not isinstance(self.directions, dict) or not self.directions:
            raise VulnsteerError("a steering vector needs a dict {layer: tensor} with at least one layer, got "
                                 f"{type(self.directions).__name__}")
        if not all(isinstance(k, int) and not isinstance(k, bool) for k in self.directions):
            raise VulnsteerError(f"steering vector layers must be ints, got {sorted(map(repr, self.directions))}")
        dirs = {k: _as_f32(v) for k, v in sorted(self.directions.items())}
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
            self.mu = {int(k): _as_f32(v, "mu") for k, v in sorted(self.mu.items())}
            if sorted(self.mu) != layers:
                raise VulnsteerError(f"mu layers {sorted(self.mu)} differ from direction layers {layers}")
            if any(tuple(v.shape) != (self.d_model,) or not bool(torch.isfinite(v).all()) for v in self.mu.values()):
                raise VulnsteerError(f"every mu must be a finite vector of shape ({self.d_model},)")
        self.operator = Operator(self.operator).value
        self.unit = StrengthUnit(self.unit).value
        self.scope = Scope(self.scope).value
        self.position = Readout(self.position).value
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not math.isfinite(self.alpha):
            raise VulnsteerError(f"steering alpha must be a finite number, got {self.alpha!r}")
        self.alpha = float(self.alpha)
        for name in ("method", "model_id", "model_hash", "template_id", "dataset_hash", "cwe", "created"):
            if not isinstance(getattr(self, name), str):
                raise VulnsteerError(f"steering vector {name} must be a string, got {getattr(self, name)!r}")
        if not isinstance(self.record_ids, (list, tuple)) or not all(isinstance(r, str) for r in self.record_ids):
            raise VulnsteerError("steering vector record_ids must be a list of strings")
        if not isinstance(self.extra, dict):
            raise VulnsteerError(f"steering vector extra must be a dict, got {type(self.extra).__name__}")
        self.record_ids = list(self.record_ids)

    def __repr__(self) -> str:
        """One line: the tensors are thousands of numbers a notebook cell has no use for."""
        stats = ",".join(n for n in STAT_FIELDS if getattr(self, n) is not None)
        return (f"{type(self).__name__}({self.method or 'raw'}, layers={self.layers}, d_model={self.d_model}, "
                f"model={self.model_id or '?'}, applies {self.operator} alpha={self.alpha:g} unit={self.unit} "
                f"scope={self.scope}, stats=[{stats}], mu={'yes' if self.mu is not None else 'no'}, "
                f"cwe={self.cwe or '?'}, fit on {len(self.record_ids)} records)")

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

    def at_layer(self: V, layer: int) -> V:
        """The same vector restricted to one layer."""
        if layer not in self.directions:
            raise VulnsteerError(f"the steering vector has no layer {layer}; it has {self.layers}")
        def pick(d: dict[int, Any] | None) -> dict[int, Any] | None:
            return None if d is None else {layer: d[layer]}

        return replace(self, directions={layer: self.directions[layer]}, mu=pick(self.mu),
                       raw_norm=pick(self.raw_norm), sigma=pick(self.sigma), mean_norm=pick(self.mean_norm),
                       record_ids=list(self.record_ids), extra=dict(self.extra))

    def with_application(self: V, operator: str, alpha: float, unit: str | None = None, scope: str | None = None) -> V:
        """A copy that applies itself with these settings by default."""
        return replace(self, operator=operator, alpha=alpha, unit=unit or self.unit, scope=scope or self.scope,
                       record_ids=list(self.record_ids), extra=dict(self.extra))

    # ----------------------------------------------------------------- applying
    def interventions(
        self, alpha: float | None = None, operator: str | None = None, unit: str | None = None
    ) -> list[Intervention]:
        """One `Intervention` per layer (the hook-level edit); None: the vector's own."""
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

    def metadata(self) -> dict[str, Any]:
        """The JSON-able description (everything but the tensors)."""
        meta = {name: getattr(self, name) for name in META_FIELDS}
        for name in STAT_FIELDS:
            values = getattr(self, name)
            meta[name] = None if values is None else {str(k): v for k, v in values.items()}
        return meta
