"""RunConfig's transfer fields: the one rule for --fit-on/--test-on, and one-line errors for the rest."""

from __future__ import annotations

import pytest

from vulnsteer.errors import VulnsteerError
from vulnsteer.experiments.config import BaselineConfig, RunConfig
from vulnsteer.options import Train


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
])
def test_bad_transfer_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(VulnsteerError, match=message) as info:
        RunConfig(**kwargs)
    assert "\n" not in str(info.value)
