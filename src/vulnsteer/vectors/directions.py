"""The maths of a steering vector: per layer, a unit direction `u` (oriented towards "vulnerable"), the
training centre `mu` the amplify/ablate operators project from, and three lengths an additive strength can be
counted in (`StrengthUnit`): the norm of the direction as the method built it (`raw_norm`), the spread `sigma`
of the training projections onto `u`, and the mean residual norm at that layer (`mean_norm`).

`Directions` is a read-only mapping layer -> u, so `v.directions[12]`, `v.directions.items()` and
`sorted(v.directions)` read as they did when the directions were a dict. Layer keys are vulnsteer layer
indices: the 0-based block whose *output* is read and steered.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from vulnsteer.errors import VulnsteerError
from vulnsteer.options import StrengthUnit

STAT_FIELDS = ("raw_norm", "sigma", "mean_norm")


def _as_f32(t: Any, what: str = "direction") -> Tensor:
    if not isinstance(t, Tensor):
        raise VulnsteerError(f"a steering vector {what} must be a torch.Tensor, got {type(t).__name__}; "
                             "wrap it with torch.tensor(...)")
    return t.detach().to("cpu", torch.float32).contiguous()


def _layer_floats(name: str, values: Mapping[Any, Any] | None, layers: list[int]) -> dict[int, float] | None:
    if values is None:
        return None
    try:
        out = {int(k): float(v) for k, v in values.items()}
    except (TypeError, ValueError, AttributeError):
        raise VulnsteerError(f"steering vector {name} must map layers to numbers") from None
    if sorted(out) != layers:
        raise VulnsteerError(f"steering vector {name} covers layers {sorted(out)}, the directions {layers}")
    if not all(math.isfinite(v) for v in out.values()):
        raise VulnsteerError(f"steering vector {name} contains NaN or inf")
    if not all(v > 0 for v in out.values()):
        # A length: a negative one would silently reverse the direction, a zero one steer by nothing.
        raise VulnsteerError(f"steering vector {name} must be > 0 at every layer, got {out}")
    return dict(sorted(out.items()))


@dataclass(frozen=True, eq=False)
class Directions(Mapping[int, Tensor]):
    """Per-layer unit directions `u` with their centres `mu` and scales, validated on construction.

    `u` may be given un-normalised (a raw mean difference, say) when `raw_norm` is None: it is then
    normalised and its norms kept as `raw_norm`, so a strength in `unit="raw"` adds exactly what was given.
    `sigma`/`mean_norm`/`mu` are None when unknown (e.g. after a GGUF import); operators needing them refuse.
    """

    u: dict[int, Tensor]
    mu: dict[int, Tensor] | None = None
    raw_norm: dict[int, float] | None = None
    sigma: dict[int, float] | None = None
    mean_norm: dict[int, float] | None = None

    # Identity, as before the split: field-wise == on tensors has no single truth value.
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __post_init__(self) -> None:
        if not isinstance(self.u, Mapping) or not self.u:
            raise VulnsteerError("a steering vector needs a dict {layer: tensor} with at least one layer, got "
                                 f"{type(self.u).__name__}")
        if not all(isinstance(k, int) and not isinstance(k, bool) for k in self.u):
            raise VulnsteerError(f"steering vector layers must be ints, got {sorted(map(repr, self.u))}")
        dirs = {k: _as_f32(v) for k, v in sorted(self.u.items())}
        widths = {tuple(v.shape) for v in dirs.values()}
        if len(widths) != 1 or len(next(iter(widths))) != 1:
            raise VulnsteerError(f"directions must all be 1-D of one width, got shapes {sorted(widths)}")
        if min(dirs) < 0:
            raise VulnsteerError(f"layer indices must be >= 0, got {sorted(dirs)}")
        if not all(bool(torch.isfinite(v).all()) for v in dirs.values()):
            raise VulnsteerError("steering vector directions contain NaN or inf; refit the vector")
        layers, raw_norm = sorted(dirs), self.raw_norm
        if raw_norm is None:
            raw_norm = {k: float(v.norm()) for k, v in dirs.items()}
            if any(n == 0.0 for n in raw_norm.values()):
                raise VulnsteerError("a steering direction is all zeros; there is nothing to steer with")
            dirs = {k: v / raw_norm[k] for k, v in dirs.items()}
        set_ = object.__setattr__  # frozen: the normalised values are written once, here
        set_(self, "u", dirs)
        for name, given in (("raw_norm", raw_norm), ("sigma", self.sigma), ("mean_norm", self.mean_norm)):
            set_(self, name, _layer_floats(name, given, layers))
        if self.mu is not None:
            if not isinstance(self.mu, Mapping):
                raise VulnsteerError(f"steering vector mu must be a dict {{layer: tensor}}, got {type(self.mu).__name__}")
            mu = {int(k): _as_f32(v, "mu") for k, v in sorted(self.mu.items())}
            if sorted(mu) != layers:
                raise VulnsteerError(f"mu layers {sorted(mu)} differ from direction layers {layers}")
            if any(tuple(v.shape) != (self.d_model,) or not bool(torch.isfinite(v).all()) for v in mu.values()):
                raise VulnsteerError(f"every mu must be a finite vector of shape ({self.d_model},)")
            set_(self, "mu", mu)

    def __repr__(self) -> str:
        """One line: the tensors are thousands of numbers a notebook cell has no use for."""
        return (f"Directions(layers={self.layers}, d_model={self.d_model}, stats=[{','.join(self.stats())}], "
                f"mu={'yes' if self.mu is not None else 'no'})")

    # ----------------------------------------------------------------- the mapping layer -> u
    def __getitem__(self, layer: int) -> Tensor:
        return self.u[layer]

    def __iter__(self) -> Iterator[int]:
        return iter(self.u)

    def __len__(self) -> int:
        return len(self.u)

    @property
    def d_model(self) -> int:
        return int(next(iter(self.u.values())).shape[0])

    @property
    def layers(self) -> list[int]:
        return sorted(self.u)

    def stats(self) -> list[str]:
        """The names of the scales this vector has (for its one-line description)."""
        return [name for name in STAT_FIELDS if getattr(self, name) is not None]

    # ----------------------------------------------------------------- lengths
    def scale(self, layer: int, unit: StrengthUnit | str) -> float:
        """Length of one additive strength unit at `layer`."""
        unit = StrengthUnit(unit)
        if unit is StrengthUnit.UNIT:
            return 1.0
        stats = {StrengthUnit.SIGMA: self.sigma, StrengthUnit.MEAN_NORM: self.mean_norm,
                 StrengthUnit.RAW: self.raw_norm}[unit]
        if stats is None:
            raise VulnsteerError(f"this steering vector has no {unit.value} statistics; use unit='raw' or 'unit'")
        return stats[layer]

    def offsets(self, alpha: float, unit: StrengthUnit | str) -> dict[int, Tensor]:
        """What adding at strength `alpha` in `unit` adds at each layer: alpha x scale x u (in that rounding
        order: (u x scale) x alpha, the hooks' product, so an offset equals what `apply` adds to the bit)."""
        return {layer: u * self.scale(layer, unit) * alpha for layer, u in self.u.items()}

    # ----------------------------------------------------------------- copies
    def at_layer(self, layer: int) -> Directions:
        """The same directions restricted to one layer."""
        if layer not in self.u:
            raise VulnsteerError(f"the steering vector has no layer {layer}; it has {self.layers}")

        def pick(d: dict[int, Any] | None) -> dict[int, Any] | None:
            return None if d is None else {layer: d[layer]}

        return Directions({layer: self.u[layer]}, pick(self.mu), pick(self.raw_norm), pick(self.sigma),
                          pick(self.mean_norm))

    def scaled(self, k: float) -> Directions:
        """Every length times |k|, the directions reversed when k < 0; the centres as they are."""
        if isinstance(k, bool) or not isinstance(k, (int, float)) or not math.isfinite(k) or k == 0.0:
            raise VulnsteerError(f"scale a steering vector by a finite non-zero number, got {k!r}")
        flip = -1.0 if k < 0 else 1.0

        def times(stats: dict[int, float] | None) -> dict[int, float] | None:
            return None if stats is None else {layer: n * abs(k) for layer, n in stats.items()}

        return Directions({layer: u * flip for layer, u in self.u.items()}, self.mu, times(self.raw_norm),
                          times(self.sigma), times(self.mean_norm))

    def scale_table(self) -> dict[str, dict[str, float] | None]:
        """The three scales as JSON writes them (layer keys as strings; None when unknown)."""
        return {name: None if (values := getattr(self, name)) is None else {str(k): v for k, v in values.items()}
                for name in STAT_FIELDS}
