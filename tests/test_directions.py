"""Directions: the maths of a steering vector (unit directions, centres, scales), validated on construction."""

from __future__ import annotations

import pytest
import torch

from vulnsteer.errors import VulnsteerError
from vulnsteer.options import StrengthUnit
from vulnsteer.vectors.directions import Directions


def make() -> Directions:
    return Directions({3: torch.tensor([3.0, 4.0]), 1: torch.tensor([0.0, 2.0])}, mu={1: torch.ones(2), 3: torch.zeros(2)},
                      sigma={1: 0.5, 3: 2.0}, mean_norm={3: 10.0, 1: 20.0})


def test_raw_directions_are_normalised_and_their_lengths_kept() -> None:
    d = make()
    assert d.layers == [1, 3] and list(d) == [1, 3] and len(d) == 2 and d.d_model == 2
    torch.testing.assert_close(d[3], torch.tensor([0.6, 0.8]))
    assert d.raw_norm == {1: 2.0, 3: 5.0} and list(d.sigma or {}) == [1, 3]
    assert 3 in d and 2 not in d and dict(d.items()).keys() == {1, 3}
    given = Directions({0: torch.tensor([3.0, 4.0])}, raw_norm={0: 7.0})  # a unit direction with its length
    torch.testing.assert_close(given[0], torch.tensor([3.0, 4.0]))  # taken as given: not normalised again


def test_scale_counts_a_strength_in_each_unit() -> None:
    d = make()
    assert [d.scale(3, u) for u in ("raw", "sigma", "mean_norm", "unit")] == [5.0, 2.0, 10.0, 1.0]
    assert d.scale(1, StrengthUnit.SIGMA) == 0.5
    torch.testing.assert_close(d.offsets(2.0, "sigma")[3], torch.tensor([0.6, 0.8]) * 4.0)
    bare = Directions({0: torch.ones(2)})
    with pytest.raises(VulnsteerError, match="no sigma statistics"):
        bare.scale(0, "sigma")
    with pytest.raises(VulnsteerError, match="unknown strengthunit 'furlongs'"):
        bare.scale(0, "furlongs")


def test_at_layer_and_scaled_copies() -> None:
    d = make()
    one = d.at_layer(3)
    assert one.layers == [3] and one.sigma == {3: 2.0} and one.mu is not None and list(one.mu) == [3]
    with pytest.raises(VulnsteerError, match="no layer 2"):
        d.at_layer(2)
    flipped = d.scaled(-3.0)
    torch.testing.assert_close(flipped[3], -d[3])
    assert flipped.raw_norm == {1: 6.0, 3: 15.0} and flipped.sigma == {1: 1.5, 3: 6.0}
    assert flipped.mu is not None and d.mu is not None
    assert all(torch.equal(flipped.mu[k], d.mu[k]) for k in d)  # the centre is where the data is, whatever the strength
    for bad in (0.0, float("nan"), True):
        with pytest.raises(VulnsteerError, match="finite non-zero"):
            d.scaled(bad)


def test_every_bad_value_is_refused() -> None:
    u = {1: torch.ones(4)}
    cases = [
        (dict(u={1: torch.zeros(4), 2: torch.zeros(5)}), "one width"),
        (dict(u=u, mu={2: torch.zeros(4)}), "mu layers"),
        (dict(u=u, mu={1: torch.zeros(3)}), "shape"),
        (dict(u={1: torch.zeros(4)}), "all zeros"),
        (dict(u={}), "at least one"),
        (dict(u={-1: torch.ones(4)}), ">= 0"),
        (dict(u={True: torch.ones(4)}), "ints"),
        (dict(u=u, sigma={1: -1.0}), "sigma must be > 0"),
        (dict(u=u, sigma={2: 1.0}), "covers layers"),
        (dict(u=u, mean_norm={1: "x"}), "map layers to numbers"),
        (dict(u=u, raw_norm={1: float("inf")}), "NaN or inf"),
        (dict(u={1: torch.tensor([1.0, float("nan")])}), "NaN or inf"),
    ]
    for kwargs, match in cases:
        with pytest.raises(VulnsteerError, match=match):
            Directions(**kwargs)


def test_frozen_and_compared_by_identity() -> None:
    d = make()
    with pytest.raises(AttributeError):
        d.sigma = None  # type: ignore[misc]
    assert d == d and d != make() and len({d, d}) == 1  # == on tensors has no single truth value
    assert repr(d) == "Directions(layers=[1, 3], d_model=2, stats=[raw_norm,sigma,mean_norm], mu=yes)"
