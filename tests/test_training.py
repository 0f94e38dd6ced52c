from __future__ import annotations

import torch

from vulnsteer.data.records import Record
from vulnsteer.vectors.training import fit_directions, random_like


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
    dirs = fit_directions(x, _records(2), layers=[0], methods=["caa", "pca", "probe"])
    caa = dirs[(0, "caa")]
    # pair differences (2, 0) and (4, 0): mean (3, 0) -> unit (1, 0), raw norm 3
    torch.testing.assert_close(caa.u, torch.tensor([1.0, 0.0]))
    assert abs(caa.raw_norm - 3.0) < 1e-6
    # mu = midpoint of class means: vulnerable mean (4, 0), secure mean (1, 0) -> (2.5, 0)
    torch.testing.assert_close(caa.mu, torch.tensor([2.5, 0.0]))
    # projections onto u: 3, 1, 5, 1 -> sample std
    assert abs(caa.sigma - float(torch.tensor([3.0, 1.0, 5.0, 1.0]).std())) < 1e-6
    assert float(dirs[(0, "pca")].u @ caa.u) > 0.99  # every difference points along x
    assert float(dirs[(0, "probe")].u[0]) > 0  # vulnerable has larger x


def test_random_like_keeps_scale_and_changes_direction():
    x = torch.randn(8, 3, 16)
    d = fit_directions(x, _records(4), layers=[1], methods=["caa"])[(1, "caa")]
    r = random_like(d, torch.Generator().manual_seed(0))
    assert abs(float(r.u.norm()) - 1.0) < 1e-6 and r.sigma == d.sigma and r.layer == d.layer
    assert abs(float(r.u @ d.u)) < 0.99
