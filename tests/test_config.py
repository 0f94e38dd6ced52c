"""Configs check themselves when built; the wide scopes get a smaller default grid (experiments/config.py)."""

from __future__ import annotations

import pytest

from vulnsteer.errors import VulnsteerError
from vulnsteer.experiments.config import RunConfig, SteerConfig
from vulnsteer.options import Operator, Readout, SweepScope


def test_readout_defaults_to_the_answer_and_is_recorded():
    assert RunConfig().readout is Readout.ANSWER
    cfg = RunConfig(readout="code-last")  # type: ignore[arg-type]
    assert cfg.readout is Readout.CODE_LAST and cfg.settings()["readout"] == "code-last"
    with pytest.raises(VulnsteerError, match="unknown readout 'middle'"):
        RunConfig(readout="middle")  # type: ignore[arg-type]


@pytest.mark.parametrize("scope", ["code", "all"])
def test_wide_scopes_sweep_every_third_block_and_fewer_strengths(scope):
    answer, wide = SteerConfig(), SteerConfig(scope=scope)  # type: ignore[arg-type]
    assert answer.check_layers(24) == list(range(24))
    assert wide.check_layers(24) == [0, 3, 6, 9, 12, 15, 18, 21]
    assert SteerConfig(scope=scope, layers=(5, 7)).check_layers(24) == [5, 7]  # type: ignore[arg-type]
    assert wide.settings() == [(Operator.ADD, a) for a in wide.wide_add_alphas] + [
        (Operator.AMPLIFY, a) for a in wide.wide_amplify_alphas] + [(Operator.ABLATE, 0.0)]
    assert len(wide.settings()) < len(answer.settings())
    assert SweepScope(scope).wide and not SweepScope.ANSWER.wide
    with pytest.raises(VulnsteerError, match="wide_layer_stride"):
        SteerConfig(wide_layer_stride=0)
