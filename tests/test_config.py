"""Configs check themselves when built: the wide scopes get a smaller default grid; the transfer fields
(--fit-on/--test-on) follow one rule, with one-line errors for the rest (experiments/config.py)."""

from __future__ import annotations

import pytest

from vulnsteer.errors import VulnsteerError
from vulnsteer.experiments.config import BaselineConfig, RunConfig, SteerConfig
from vulnsteer.options import Operator, Readout, SweepScope, Train


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


def test_neither_is_cross_fitting_over_the_subsets():
    cfg = RunConfig(baseline=BaselineConfig(subsets=("real-world",)))
    assert cfg.fit_on == () and cfg.test_on == () and cfg.baseline.subsets == ("real-world",)


def test_fit_on_alone_tests_on_the_subsets():
    assert RunConfig(fit_on=("sven",)).test_on == ("hand-crafted",)
    cfg = RunConfig(baseline=BaselineConfig(subsets=("real-world",)), fit_on=("hand-crafted", "augmented-trivial"))
    assert cfg.test_on == ("real-world",) and cfg.fit_on == ("hand-crafted", "augmented-trivial")


def test_test_on_becomes_the_data_under_test():
    cfg = RunConfig(fit_on=("sven", "sven"), test_on=("real-world",))
    assert cfg.fit_on == ("sven",) and cfg.baseline.subsets == ("real-world",)
    assert cfg.settings()["fit_on"] == ("sven",) and cfg.settings()["test_on"] == ("real-world",)


@pytest.mark.parametrize("kwargs, message", [
    (dict(test_on=("real-world",)), "--test-on needs --fit-on"),
    (dict(fit_on=("sven",), train=(Train.AUGMENTED,)), "with --fit-on, name that data in --fit-on"),
    (dict(fit_on=("sven",), test_on=("hand-crafted",), baseline=BaselineConfig(subsets=("real-world",))),
     "both name the data under test"),
    (dict(fit_on=("svn",)), "--fit-on 'svn': not a dataset"),
    (dict(fit_on=("sven",), test_on=("nowhere/x.jsonl",)), "--test-on 'nowhere/x.jsonl': no such file"),
    (dict(fit_on=("sven",), steer=SteerConfig(template="auto")), "--steer-template auto cannot be combined with --fit-on"),
])
def test_bad_transfer_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(VulnsteerError, match=message) as info:
        RunConfig(**kwargs)
    assert "\n" not in str(info.value)
