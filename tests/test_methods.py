"""Steering-direction methods checked against values computed by hand on small tensors."""

from __future__ import annotations

import pytest
import torch

from vulnsteer.data.records import Record
from vulnsteer.errors import DataError
from vulnsteer.vectors.methods import (
    caa_direction,
    pair_indices,
    pca_direction,
    probe_direction,
    training_means,
)

T = torch.tensor


def close(a: torch.Tensor, b: list[float], tol: float = 1e-5) -> bool:
    return torch.allclose(a, T(b, dtype=torch.float32), atol=tol, rtol=0)


# --- CAA -------------------------------------------------------------------------------------------


def test_caa_paired_is_mean_of_differences() -> None:
    pos = T([[1.0, 2.0], [3.0, 4.0]])
    neg = T([[0.0, 0.0], [1.0, 1.0]])
    v = caa_direction(pos, neg)  # diffs (1,2), (2,3)
    assert v.dtype == torch.float32
    assert close(v, [1.5, 2.5])


def test_caa_unpaired_is_difference_of_means_with_unequal_counts() -> None:
    pos = T([[2.0, 0.0], [4.0, 0.0]])  # mean (3, 0)
    neg = T([[0.0, 1.0]])
    assert close(caa_direction(pos, neg, paired=False), [3.0, -1.0])


def test_caa_paired_refuses_unequal_counts() -> None:
    with pytest.raises(DataError, match="equal shape"):
        caa_direction(torch.zeros(2, 3), torch.zeros(1, 3))


# --- PCA -------------------------------------------------------------------------------------------


def test_pca_is_uncentred_first_component_of_differences() -> None:
    # D = [[2,0],[0,1]]: D^T D = diag(4,1), so the uncentred first PC is (1,0). Centred PCA (repeng's
    # pca_diff) would instead give (2,-1)/sqrt(5), the axis of the spread around the mean difference.
    pos = T([[2.0, 0.0], [0.0, 1.0]])
    v = pca_direction(pos, torch.zeros(2, 2))
    assert close(v, [1.0, 0.0])


def test_pca_sign_follows_mean_difference_and_norm_is_one() -> None:
    pos = torch.zeros(2, 2)
    neg = T([[2.0, 0.0], [0.0, 1.0]])  # diffs (-2,0), (0,-1): mean points to -x
    v = pca_direction(pos, neg)
    assert close(v, [-1.0, 0.0])
    assert float(v.norm()) == pytest.approx(1.0)


def test_pca_single_pair_is_normalised_difference() -> None:
    pos, neg = T([[4.0, 1.0, 3.0]]), T([[1.0, 1.0, -1.0]])  # diff (3, 0, 4), norm 5
    assert close(pca_direction(pos, neg), [0.6, 0.0, 0.8])


def test_pca_refuses_identical_classes() -> None:
    x = torch.ones(3, 2)
    with pytest.raises(DataError, match="zero"):
        pca_direction(x, x.clone())


# --- probe -----------------------------------------------------------------------------------------

SQUARE = T([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
SQUARE_Y = T([1, 1, 0, 0])  # label = (x0 > 0)


def test_probe_points_to_label_one_and_ignores_symmetric_axis() -> None:
    w = probe_direction(SQUARE, SQUARE_Y)
    assert w[0] > 0
    assert abs(float(w[1])) < 1e-4  # x1 is symmetric across labels, so its weight is 0
    assert probe_direction(SQUARE, 1 - SQUARE_Y)[0] < 0


def test_probe_weight_is_mapped_back_to_raw_space() -> None:
    # Scaling feature 0 by 100 leaves the standardised problem unchanged, so the raw-space weight on
    # that feature must be exactly 1/100 of the unscaled one (w_raw = w_std / std).
    w = probe_direction(SQUARE, SQUARE_Y)
    stretched = SQUARE.clone()
    stretched[:, 0] *= 100
    w100 = probe_direction(stretched, SQUARE_Y)
    assert float(w100[0]) == pytest.approx(float(w[0]) / 100, rel=1e-4)


def test_probe_refuses_single_class_and_bad_labels() -> None:
    with pytest.raises(DataError, match="both labels"):
        probe_direction(SQUARE, torch.ones(4, dtype=torch.long))
    with pytest.raises(DataError, match="0/1"):
        probe_direction(SQUARE, T([0, 1, 2, 1]))


def test_training_means_is_midpoint_of_class_means() -> None:
    pos = T([[[2.0, 0.0]], [[4.0, 0.0]], [[6.0, 0.0]]])  # mean (4, 0)
    neg = T([[[0.0, 2.0]]])
    assert close(training_means(pos, neg, [0])[0], [2.0, 1.0])


def rec(rid: str, cwe: str, label: int, pair: str | None) -> Record:
    return Record(id=rid, subset="test", cwe=cwe, language="c", label=label, group=pair or rid,
                  pair_id=pair, code=rid, source_path=rid)


def test_pair_indices_cartesian_within_pair_id() -> None:
    records = [rec("v1", "CWE-22", 1, "x"), rec("v2", "CWE-22", 1, "x"), rec("s", "CWE-22", 0, "x"),
               rec("lonely", "CWE-22", 1, "y")]
    assert pair_indices(records) == [(0, 2), (1, 2)]
