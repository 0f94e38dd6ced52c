from __future__ import annotations

import pytest
import torch

from vulnsteer.errors import VulnsteerError
from vulnsteer.options import Operator
from vulnsteer.vectors.operators import Intervention, apply

H = torch.tensor([[3.0, 4.0, 5.0], [0.0, -1.0, 2.0]])
V = torch.tensor([0.0, 2.0, 0.0])  # |v| = 2, u = e_y
MU = torch.tensor([0.0, 1.0, 0.0])


def test_add_uses_raw_direction_and_ignores_mu():
    iv = Intervention(0, "add", V, alpha=0.5, mu=MU)
    expected = torch.tensor([[3.0, 5.0, 5.0], [0.0, 0.0, 2.0]])
    assert torch.equal(apply(H, iv), expected)


def test_amplify_scales_distance_from_mean_along_unit_direction():
    # (h - mu) . u = 3 and -2; h + 2 * that * e_y
    iv = Intervention(0, "amplify", V, alpha=2.0, mu=MU)
    expected = torch.tensor([[3.0, 10.0, 5.0], [0.0, -5.0, 2.0]])
    assert torch.equal(apply(H, iv), expected)
    # the length of v does not matter, only its direction
    assert torch.equal(apply(H, Intervention(0, "amplify", V * 7, alpha=2.0, mu=MU)), expected)


def test_amplify_without_mu_measures_from_zero():
    iv = Intervention(0, "amplify", V, alpha=1.0)
    expected = torch.tensor([[3.0, 8.0, 5.0], [0.0, -2.0, 2.0]])
    assert torch.equal(apply(H, iv), expected)


def test_ablate_sets_component_to_the_mean_and_ignores_alpha():
    expected = torch.tensor([[3.0, 1.0, 5.0], [0.0, 1.0, 2.0]])
    for alpha in (0.0, 1.0, 7.0):
        assert torch.equal(apply(H, Intervention(0, "ablate", V, alpha=alpha, mu=MU)), expected)
    zeroed = torch.tensor([[3.0, 0.0, 5.0], [0.0, 0.0, 2.0]])
    assert torch.equal(apply(H, Intervention(0, "ablate", V)), zeroed)


def test_ablate_is_amplify_at_minus_one_and_idempotent():
    torch.manual_seed(0)
    h, v, mu = torch.randn(2, 5, 16), torch.randn(16), torch.randn(16)
    ablate = Intervention(3, "ablate", v, mu=mu)
    out = apply(h, ablate)
    torch.testing.assert_close(out, apply(h, Intervention(3, "amplify", v, alpha=-1.0, mu=mu)))
    torch.testing.assert_close(apply(out, ablate), out)
    u = v / v.norm()
    torch.testing.assert_close((out - mu) @ u, torch.zeros(2, 5), atol=1e-5, rtol=0)


def test_keeps_shape_and_dtype():
    h = torch.randn(2, 3, 4, dtype=torch.bfloat16)
    for op in ("add", "amplify", "ablate"):
        out = apply(h, Intervention(0, op, torch.ones(4), alpha=0.5))
        assert out.shape == h.shape and out.dtype == torch.bfloat16


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(layer=0, operator="scale", direction=V),
        dict(layer=-1, operator="add", direction=V),
        dict(layer=0, operator="add", direction=torch.ones(2, 3)),
        dict(layer=0, operator="ablate", direction=torch.zeros(3)),
        dict(layer=0, operator="add", direction=torch.tensor([1.0, float("nan"), 0.0])),
        dict(layer=0, operator="amplify", direction=V, mu=torch.zeros(4)),
        dict(layer=0, operator="add", direction=V, alpha=float("inf")),
    ],
)
def test_rejects_bad_interventions(kwargs):
    with pytest.raises(VulnsteerError):
        Intervention(**kwargs)


def test_operator_text_becomes_the_enum():
    assert Intervention(0, "amplify", V).operator is Operator.AMPLIFY  # type: ignore[arg-type]
    assert Intervention(0, Operator.ABLATE, V).operator is Operator.ABLATE
    with pytest.raises(VulnsteerError, match="unknown operator 'push'; use one of add, amplify, ablate"):
        Intervention(0, "push", V)  # type: ignore[arg-type]


def test_rejects_width_mismatch():
    with pytest.raises(VulnsteerError, match="d=3"):
        apply(torch.zeros(1, 4), Intervention(0, "add", V))
