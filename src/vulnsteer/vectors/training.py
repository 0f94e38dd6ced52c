"""Fit a direction per (layer, method) from one training set of residuals, with what the operators need.

Every direction is stored as a unit vector `u` plus the training centre `mu` and three scales: the spread
`sigma` of the training projections onto `u`, the mean residual norm at that layer, and the norm of the
direction as the method built it. An additive strength is a multiple of one of these (`STRENGTH_UNITS`);
the default, sigma, means the same thing for CAA, PCA and probe directions and at every layer, where raw
CAA norms grow with depth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from vulnsteer.data.records import Record
from vulnsteer.errors import VulnsteerError
from vulnsteer.vectors.methods import (
    caa_direction, mean_residual_norm, pair_indices, pca_direction, probe_direction, training_means,
)

POOLED = "pooled"
STRENGTH_UNITS = ("sigma", "mean_norm", "raw", "unit")


@dataclass(frozen=True)
class Direction:
    layer: int  # block index whose output is steered
    method: str
    u: torch.Tensor  # [d] unit, oriented towards "vulnerable"
    mu: torch.Tensor  # [d] midpoint of the two class means at this layer (robust to class imbalance)
    sigma: float  # std of training projections onto u
    raw_norm: float  # norm of the direction as the method built it (CAA: mean-difference norm)
    mean_norm: float = 1.0  # mean L2 norm of the training residuals at this layer
    cwe: str = POOLED
    n_records: int = 0

    def scale(self, unit: str) -> float:
        """Length of one strength unit for additive steering."""
        if unit not in STRENGTH_UNITS:
            raise VulnsteerError(f"unknown strength unit {unit!r}; use one of {', '.join(STRENGTH_UNITS)}")
        return {"sigma": self.sigma, "mean_norm": self.mean_norm, "raw": self.raw_norm, "unit": 1.0}[unit]


def fit_directions(
    residuals: torch.Tensor,
    records: Sequence[Record],
    layers: Sequence[int],
    methods: Sequence[str],
    cwe: str = POOLED,
) -> dict[tuple[int, str], Direction]:
    """`residuals` [n, n_layers + 1, d] (index 0 = block-0 input); block k's output is index k + 1.

    CAA and PCA use the records' vulnerable/secure pairs; the probe uses every record.
    """
    pairs = pair_indices(records)
    if not pairs and any(m in ("caa", "pca") for m in methods):
        raise VulnsteerError("CAA and PCA need vulnerable/secure pairs in the training records")
    vi = torch.tensor([p[0] for p in pairs], dtype=torch.long)
    si = torch.tensor([p[1] for p in pairs], dtype=torch.long)
    labels = torch.tensor([r.label for r in records])
    mus = training_means(residuals[labels == 1][:, 1:], residuals[labels == 0][:, 1:], layers)
    out: dict[tuple[int, str], Direction] = {}
    for layer in layers:
        x = residuals[:, layer + 1].float()
        mu = mus[layer].float()
        for method in methods:
            if method == "caa":
                v = caa_direction(x[vi], x[si], paired=True)
            elif method == "pca":
                v = pca_direction(x[vi], x[si])
            elif method == "probe":
                v = probe_direction(x, labels)
            else:
                raise VulnsteerError(f"unknown method {method!r}; use caa, pca or probe")
            norm = float(v.norm())
            u = v / norm
            sigma = float(((x - mu) @ u).std())
            out[(layer, method)] = Direction(
                layer, method, u, mu, sigma, norm, mean_residual_norm(x), cwe, len(records)
            )
    return out


def fit_per_cwe(
    residuals: torch.Tensor,
    records: Sequence[Record],
    layers: Sequence[int],
    methods: Sequence[str],
    min_pairs: int = 2,
) -> dict[str, dict[tuple[int, str], Direction]]:
    """Directions pooled over CWEs ("pooled") and for each CWE with at least `min_pairs` training pairs.

    A CWE below the threshold gets no entry: callers fall back to the pooled direction for it.
    """
    out = {POOLED: fit_directions(residuals, records, layers, methods)}
    for cwe in sorted({r.cwe for r in records}):
        idx = [i for i, r in enumerate(records) if r.cwe == cwe]
        sub = [records[i] for i in idx]
        if len(pair_indices(sub)) >= min_pairs:
            out[cwe] = fit_directions(residuals[idx], sub, layers, methods, cwe=cwe)
    return out


def random_like(direction: Direction, generator: torch.Generator) -> Direction:
    """A control: a uniformly random unit direction with the same layer, centre and scales."""
    r = torch.randn(direction.u.shape, generator=generator)
    return Direction(
        direction.layer, "random", r / r.norm(), direction.mu, direction.sigma, direction.raw_norm,
        direction.mean_norm, direction.cwe, direction.n_records,
    )
