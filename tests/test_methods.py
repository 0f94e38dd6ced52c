"""Steering-direction methods checked against values computed by hand on small tensors."""

from __future__ import annotations

import math

import pytest
import torch

from vulnsteer.data.records import Record
from vulnsteer.errors import DataError, VulnsteerError
from vulnsteer.vectors.methods import (
    build_per_cwe,
    build_vectors,
    caa_direction,
    mean_residual_norm,
    pair_indices,
    pca_direction,
    probe_direction,
    scale,
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


# --- scaling ---------------------------------------------------------------------------------------


def test_scale_modes() -> None:
    v = T([3.0, 4.0])
    assert close(scale(v, "none"), [3.0, 4.0])
    assert close(scale(v, "unit"), [0.6, 0.8])
    assert close(scale(v, "mean_norm", reference_norm=10.0), [6.0, 8.0])


def test_scale_refusals() -> None:
    with pytest.raises(VulnsteerError, match="reference_norm"):
        scale(T([1.0, 0.0]), "mean_norm")
    with pytest.raises(VulnsteerError, match="norm 0"):
        scale(torch.zeros(2), "unit")
    with pytest.raises(VulnsteerError, match="unknown scaling"):
        scale(T([1.0]), "max")  # type: ignore[arg-type]


# --- build_vectors ---------------------------------------------------------------------------------


def test_build_vectors_per_layer_and_mean_norm() -> None:
    # [n=1, L=2, d=2]; layer 1: pos (3,4) norm 5, neg (0,1) norm 1 -> mean residual norm 3.
    acts_pos = T([[[9.0, 9.0], [3.0, 4.0]]])
    acts_neg = T([[[0.0, 0.0], [0.0, 1.0]]])
    raw = build_vectors(acts_pos, acts_neg, "caa", [1])
    assert list(raw) == [1] and close(raw[1], [3.0, 3.0])
    scaled = build_vectors(acts_pos, acts_neg, "caa", [0, 1], scaling="mean_norm")
    assert close(scaled[1], [3 / math.sqrt(2), 3 / math.sqrt(2)])
    assert float(scaled[0].norm()) == pytest.approx((math.hypot(9, 9) + 0.0) / 2)
    assert mean_residual_norm(acts_pos[:, 1], acts_neg[:, 1]) == pytest.approx(3.0)


def test_build_vectors_probe_and_pca_agree_in_sign() -> None:
    gen = torch.Generator().manual_seed(0)
    neg = torch.randn(40, 2, 5, generator=gen)
    shift = T([0.0, 0.0, 2.0, 0.0, 0.0])
    pos = neg + shift + 0.1 * torch.randn(40, 2, 5, generator=gen)
    for method in ("caa", "pca", "probe"):
        v = build_vectors(pos, neg, method, [1])[1]
        assert int(v.abs().argmax()) == 2 and v[2] > 0, method


def test_build_vectors_refusals() -> None:
    acts = torch.zeros(2, 3, 4)
    with pytest.raises(VulnsteerError, match="unknown method"):
        build_vectors(acts, acts, "lda", [0])
    with pytest.raises(VulnsteerError, match="out of range"):
        build_vectors(acts, acts, "caa", [3])
    with pytest.raises(DataError, match=r"\[L, d\]"):
        build_vectors(acts, torch.zeros(2, 3, 5), "caa", [0])


def test_training_means_is_midpoint_of_class_means() -> None:
    pos = T([[[2.0, 0.0]], [[4.0, 0.0]], [[6.0, 0.0]]])  # mean (4, 0)
    neg = T([[[0.0, 2.0]]])
    assert close(training_means(pos, neg, [0])[0], [2.0, 1.0])


# --- per CWE ---------------------------------------------------------------------------------------


def rec(rid: str, cwe: str, label: int, pair: str | None) -> Record:
    return Record(id=rid, subset="test", cwe=cwe, language="c", label=label, group=pair or rid,
                  pair_id=pair, code=rid, source_path=rid)


def per_cwe_fixture() -> tuple[torch.Tensor, list[Record]]:
    """L=2, d=3. At layer 1: CWE-22 pairs differ by (2,0,0), CWE-89 pairs by (0,4,0), CWE-787 by (0,0,6)."""
    rows = [  # (record, layer-1 residual)
        (rec("a1", "CWE-22", 1, "p1"), [2.0, 0.0, 0.0]),
        (rec("a1p", "CWE-22", 0, "p1"), [0.0, 0.0, 0.0]),
        (rec("a2", "CWE-22", 1, "p2"), [4.0, 2.0, 2.0]),
        (rec("a2p", "CWE-22", 0, "p2"), [2.0, 2.0, 2.0]),
        (rec("b1", "CWE-89", 1, "q1"), [1.0, 5.0, 1.0]),
        (rec("b1p", "CWE-89", 0, "q1"), [1.0, 1.0, 1.0]),
        (rec("b2", "CWE-89", 1, "q2"), [3.0, 7.0, 3.0]),
        (rec("b2p", "CWE-89", 0, "q2"), [3.0, 3.0, 3.0]),
        (rec("b3", "CWE-89", 1, None), [5.0, 8.0, 2.0]),  # no patched twin
        (rec("c1", "CWE-787", 1, "r1"), [0.0, 0.0, 6.0]),
        (rec("c1p", "CWE-787", 0, "r1"), [0.0, 0.0, 0.0]),
    ]
    layer1 = T([r for _, r in rows])
    acts = torch.stack([torch.full_like(layer1, 7.0), layer1], dim=1)  # layer 0 constant
    return acts, [r for r, _ in rows]


def test_build_per_cwe_paired_caa_by_hand() -> None:
    acts, records = per_cwe_fixture()
    with pytest.warns(UserWarning, match="CWE-787: only 1 pairs"):
        out = build_per_cwe(acts, records, "caa", [1], progress=False)
    assert list(out) == ["pooled", "CWE-22", "CWE-89"]
    assert close(out["CWE-22"].directions[1], [2.0, 0.0, 0.0])
    assert close(out["CWE-89"].directions[1], [0.0, 4.0, 0.0])
    # pooled: five pairs, diffs sum to (4, 8, 6)
    assert close(out["pooled"].directions[1], [0.8, 1.6, 1.2])
    assert out["CWE-89"].record_ids == ["b1", "b1p", "b2", "b2p"]  # b3 has no twin
    assert out["pooled"].n_pairs == 5
    # mu: secure mean (1,1,1), vulnerable mean (3,1,1) -> midpoint (2,1,1)
    assert close(out["CWE-22"].mu[1], [2.0, 1.0, 1.0])


def test_build_per_cwe_unpaired_uses_every_record() -> None:
    acts, records = per_cwe_fixture()
    out = build_per_cwe(acts, records, "caa", [1], paired=False, min_per_class=1, progress=False)
    # CWE-89 vulnerable mean (3, 20/3, 2) minus secure mean (2, 2, 2)
    assert close(out["CWE-89"].directions[1], [1.0, 14 / 3, 0.0])
    assert "b3" in out["CWE-89"].record_ids and out["CWE-89"].n_pairs == 0
    assert "CWE-787" in out


def test_build_per_cwe_mean_norm_uses_distinct_records() -> None:
    acts, records = per_cwe_fixture()
    out = build_per_cwe(acts, records, "pca", [1], scaling="mean_norm", min_per_class=1, progress=False)
    expected = mean_residual_norm(acts[:4, 1])  # the four CWE-22 records
    assert float(out["CWE-22"].directions[1].norm()) == pytest.approx(expected, rel=1e-5)
    assert close(out["CWE-22"].directions[1] / expected, [1.0, 0.0, 0.0])


def test_build_per_cwe_probe_separates_pool() -> None:
    acts, records = per_cwe_fixture()
    out = build_per_cwe(acts, records, "probe", [1], min_per_class=1, progress=False)
    w = out["pooled"].directions[1]
    labels = torch.tensor([r.label for r in records])
    scores = acts[:, 1] @ w
    assert scores[labels == 1].mean() > scores[labels == 0].mean()


def test_build_per_cwe_refuses_too_small_pool() -> None:
    acts, records = per_cwe_fixture()
    with pytest.raises(DataError, match="only 1 pairs"):
        build_per_cwe(acts[9:], records[9:], "caa", [1], progress=False)


def test_pair_indices_cartesian_within_pair_id() -> None:
    records = [rec("v1", "CWE-22", 1, "x"), rec("v2", "CWE-22", 1, "x"), rec("s", "CWE-22", 0, "x"),
               rec("lonely", "CWE-22", 1, "y")]
    assert pair_indices(records) == [(0, 2), (1, 2)]


def test_embeddings_first_layout_shifts_by_one() -> None:
    # Recorder layout [n, L + 1, d]: index 0 is the input of block 0, block l's output is index l + 1.
    pos = T([[[100.0, 0.0], [1.0, 0.0], [0.0, 5.0]]])
    neg = torch.zeros(1, 3, 2)
    out = build_vectors(pos, neg, "caa", [0, 1], embeddings_first=True)
    assert close(out[0], [1.0, 0.0]) and close(out[1], [0.0, 5.0])
    with pytest.raises(VulnsteerError, match="out of range"):
        build_vectors(pos, neg, "caa", [2], embeddings_first=True)
    assert close(training_means(pos, neg, [1], embeddings_first=True)[1], [0.0, 2.5])
