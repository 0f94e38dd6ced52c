from __future__ import annotations

import torch

from vulnsteer.data.records import Record
from vulnsteer.vectors.training import POOLED, fit_per_cwe, fit_vectors, random_like


def _records(n_pairs: int) -> list[Record]:
    out = []
    for i in range(n_pairs):
        for label in (1, 0):
            out.append(Record(id=f"{i}/{label}", subset="t", cwe="CWE-1", language="c", label=label, group=str(i),
                              pair_id=str(i), code="x", source_path="x"))
    return out


def test_caa_direction_unit_mu_and_sigma_by_hand():
    # residuals [n, layers+1, d]; block 0 output is index 1
    x = torch.tensor([[[0.0, 0.0], [3.0, 1.0]], [[0.0, 0.0], [1.0, 1.0]],
                      [[0.0, 0.0], [5.0, -1.0]], [[0.0, 0.0], [1.0, -1.0]]])
    vecs = fit_vectors(x, _records(2), layers=[0], methods=["caa", "pca", "probe"])
    caa = vecs["caa"]
    # pair differences (2, 0) and (4, 0): mean (3, 0) -> unit (1, 0), raw norm 3
    torch.testing.assert_close(caa.directions[0], torch.tensor([1.0, 0.0]))
    assert abs(caa.directions.raw_norm[0] - 3.0) < 1e-6
    # mu = midpoint of class means: vulnerable mean (4, 0), secure mean (1, 0) -> (2.5, 0)
    torch.testing.assert_close(caa.directions.mu[0], torch.tensor([2.5, 0.0]))
    # projections onto u: 3, 1, 5, 1 -> sample std
    assert abs(caa.directions.sigma[0] - float(torch.tensor([3.0, 1.0, 5.0, 1.0]).std())) < 1e-6
    assert float(vecs["pca"].directions[0] @ caa.directions[0]) > 0.99  # every difference points along x
    assert float(vecs["probe"].directions[0][0]) > 0  # vulnerable has larger x
    assert caa.provenance.record_ids == tuple(sorted(r.id for r in _records(2))) and len(caa.provenance.dataset_hash) == 64


def test_random_like_keeps_scale_and_changes_direction():
    x = torch.randn(8, 3, 16)
    d = fit_vectors(x, _records(4), layers=[1], methods=["caa"])["caa"]
    r = random_like(d, torch.Generator().manual_seed(0))
    assert abs(float(r.directions[1].norm()) - 1.0) < 1e-6
    assert r.directions.sigma == d.directions.sigma and r.layers == d.layers
    assert abs(float(r.directions[1] @ d.directions[1])) < 0.99


def _rec(rid: str, cwe: str, label: int, pair: str | None) -> Record:
    return Record(id=rid, subset="test", cwe=cwe, language="c", label=label, group=pair or rid,
                  pair_id=pair, code=rid, source_path=rid)


def test_per_cwe_directions_by_hand_and_fallback_for_small_cwes():
    rows = [  # (record, block-0 output); CWE-22 pairs differ by (2,0,0), CWE-89 by (0,4,0), CWE-787 by (0,0,6)
        (_rec("a1", "CWE-22", 1, "p1"), [2.0, 0.0, 0.0]), (_rec("a1p", "CWE-22", 0, "p1"), [0.0, 0.0, 0.0]),
        (_rec("a2", "CWE-22", 1, "p2"), [4.0, 2.0, 2.0]), (_rec("a2p", "CWE-22", 0, "p2"), [2.0, 2.0, 2.0]),
        (_rec("b1", "CWE-89", 1, "q1"), [1.0, 5.0, 1.0]), (_rec("b1p", "CWE-89", 0, "q1"), [1.0, 1.0, 1.0]),
        (_rec("b2", "CWE-89", 1, "q2"), [3.0, 7.0, 3.0]), (_rec("b2p", "CWE-89", 0, "q2"), [3.0, 3.0, 3.0]),
        (_rec("c1", "CWE-787", 1, "r1"), [0.0, 0.0, 6.0]), (_rec("c1p", "CWE-787", 0, "r1"), [0.0, 0.0, 0.0]),
    ]
    out_b0 = torch.tensor([r for _, r in rows])
    residuals = torch.stack([torch.full_like(out_b0, 7.0), out_b0], dim=1)  # index 0: block-0 input
    records = [r for r, _ in rows]
    dirs = fit_per_cwe(residuals, records, [0], ["caa"], min_pairs=2)
    assert set(dirs) == {POOLED, "CWE-22", "CWE-89"}  # CWE-787 has one pair: no own direction
    torch.testing.assert_close(dirs["CWE-22"]["caa"].directions[0], torch.tensor([1.0, 0.0, 0.0]))
    assert abs(dirs["CWE-89"]["caa"].directions.raw_norm[0] - 4.0) < 1e-6
    pooled = dirs[POOLED]["caa"]
    # pooled mean difference: ((2,0,0)*2 + (0,4,0)*2 + (0,0,6)) / 5
    expected = torch.tensor([4.0, 8.0, 6.0]) / 5
    torch.testing.assert_close(pooled.directions[0], expected / expected.norm())
    assert pooled.provenance.cwe == POOLED and dirs["CWE-22"]["caa"].provenance.cwe == "CWE-22"
    assert len(dirs["CWE-22"]["caa"].provenance.record_ids) == 4


def test_strength_units():
    d = fit_vectors(torch.randn(8, 3, 16), _records(4), layers=[1], methods=["caa"])["caa"].directions
    assert d.scale(1, "sigma") == d.sigma[1] and d.scale(1, "raw") == d.raw_norm[1] and d.scale(1, "unit") == 1.0
    assert d.scale(1, "mean_norm") == d.mean_norm[1] > 0
    import pytest

    from vulnsteer.errors import VulnsteerError

    with pytest.raises(VulnsteerError):
        d.scale(1, "furlongs")
