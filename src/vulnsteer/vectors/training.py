"""Fit a direction per (layer, method) from one training set of residuals, with what the operators need.

Every direction is stored as a unit vector `u` plus the training mean `mu` and the spread `sigma` of the
training projections onto `u`. Additive strengths are then in units of sigma, so a strength means the same
thing for CAA, PCA and probe directions and at every layer (raw CAA norms grow with depth).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from vulnsteer.data.records import Record
from vulnsteer.vectors.methods import caa_direction, pair_indices, pca_direction, probe_direction, training_means


@dataclass(frozen=True)
class Direction:
    layer: int  # block index whose output is steered
    method: str
    u: torch.Tensor  # [d] unit, oriented towards "vulnerable"
    mu: torch.Tensor  # [d] midpoint of the two class means at this layer (robust to class imbalance)
    sigma: float  # std of training projections onto u
    raw_norm: float  # norm of the direction as the method built it (CAA: mean-difference norm)


def fit_directions(
    residuals: torch.Tensor,
    records: Sequence[Record],
    layers: Sequence[int],
    methods: Sequence[str],
) -> dict[tuple[int, str], Direction]:
    """`residuals` [n, n_layers + 1, d] (index 0 = block-0 input); block k's output is index k + 1.

    CAA and PCA use the records' vulnerable/secure pairs; the probe uses every record.
    """
    pairs = pair_indices(records)
    if not pairs and any(m in ("caa", "pca") for m in methods):
        raise ValueError("CAA and PCA need vulnerable/secure pairs in the training records")
    vi = torch.tensor([p[0] for p in pairs], dtype=torch.long)
    si = torch.tensor([p[1] for p in pairs], dtype=torch.long)
    labels = torch.tensor([r.label for r in records])
    mus = training_means(residuals[labels == 1], residuals[labels == 0], layers, embeddings_first=True)
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
                raise ValueError(f"unknown method {method!r}")
            norm = float(v.norm())
            u = v / norm
            sigma = float(((x - mu) @ u).std())
            out[(layer, method)] = Direction(layer, method, u, mu, sigma, norm)
    return out


def random_like(direction: Direction, generator: torch.Generator) -> Direction:
    """A control: a uniformly random unit direction with the same layer, mu and sigma."""
    r = torch.randn(direction.u.shape, generator=generator)
    return Direction(direction.layer, "random", r / r.norm(), direction.mu, direction.sigma, direction.raw_norm)
