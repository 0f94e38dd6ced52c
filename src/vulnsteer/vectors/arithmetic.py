"""`+`, `-` and `*` on steering vectors, as on repeng's `ControlVector`: they act on the steering itself.

`k * v` scales every length an additive strength can be counted in (raw, sigma, mean-norm), so
`(k * v).apply(m, alpha=a)` adds what `v.apply(m, alpha=k * a)` adds in whichever of those units the vector
applies (a strength in `unit="unit"` counts lengths of the unit direction, which k does not change); a
negative k reverses the direction. Amplify and ablate project onto the direction, which k leaves alone.
`v + w` is the offset the two add together, each at its own alpha and unit; being a new direction it has no
training statistics and applies in raw lengths (alpha 1 = exactly the sum).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from vulnsteer.errors import VulnsteerError
from vulnsteer.options import Operator
from vulnsteer.vectors.vector_data import V, VectorData


def offsets(v: VectorData) -> dict[int, Tensor]:
    """What `v.apply` adds by default at each layer: alpha x scale(unit) x u."""
    if v.operator != Operator.ADD.value:
        raise VulnsteerError(f"+ and - combine additive vectors; this one applies with operator {v.operator!r} "
                             "(use with_application('add', alpha) first)")
    return {iv.layer: iv.direction * iv.alpha for iv in v.interventions()}


def add_vectors(a: V, b: V) -> V:
    if b.d_model != a.d_model:
        raise VulnsteerError(f"cannot add vectors of widths {a.d_model} and {b.d_model}")
    if b.scope != a.scope:
        raise VulnsteerError(f"cannot add vectors applied in scopes {a.scope!r} and {b.scope!r}")
    if a.model_hash and b.model_hash and a.model_hash != b.model_hash:
        raise VulnsteerError(f"cannot add vectors of two models ({a.model_id} and {b.model_id})")
    x, y = offsets(a), offsets(b)
    zero = torch.zeros(a.d_model)
    summed = {k: x.get(k, zero) + y.get(k, zero) for k in sorted(set(x) | set(y))}
    return type(a)(directions=summed, method=f"({a.method}+{b.method})", position=a.position, scope=a.scope,
                          model_id=a.model_id or b.model_id, model_hash=a.model_hash or b.model_hash,
                          template_id=a.template_id, cwe=a.cwe, extra={"combined_from": [a.metadata(), b.metadata()]})


def scale_vector(v: V, k: float) -> V:
    if not math.isfinite(k) or k == 0.0:
        raise VulnsteerError(f"scale a steering vector by a finite non-zero number, got {k}")
    flip = -1.0 if k < 0 else 1.0

    def scaled(stats: dict[int, float] | None) -> dict[int, float] | None:
        return None if stats is None else {layer: n * abs(k) for layer, n in stats.items()}

    return type(v)(
        directions={layer: u * flip for layer, u in v.directions.items()}, mu=v.mu, raw_norm=scaled(v.raw_norm),
        sigma=scaled(v.sigma), mean_norm=scaled(v.mean_norm), method=v.method, position=v.position,
        operator=v.operator, alpha=v.alpha, unit=v.unit, scope=v.scope, model_id=v.model_id, model_hash=v.model_hash,
        template_id=v.template_id, record_ids=list(v.record_ids), dataset_hash=v.dataset_hash, cwe=v.cwe,
        created=v.created, extra={**v.extra, "scaled_by": k * float(v.extra.get("scaled_by", 1.0))},
    )
