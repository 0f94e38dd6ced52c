"""Configs check themselves when built: the wide scopes get a smaller default grid; the transfer fields
(--fit-on/--test-on) follow one rule, with one-line errors for the rest (experiments/config.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from vulnsteer.errors import VulnsteerError
from vulnsteer.experiments.baseline_config import BaselineConfig
from vulnsteer.experiments.config import RunConfig, SteerConfig, declarations
from vulnsteer.experiments.study_spec import cell_config, load_spec
from vulnsteer.options import (
    Declared,
    LongFiles,
    Method,
    Operator,
    Precision,
    Readout,
    SearchMode,
    StrengthUnit,
    SweepScope,
    Train,
    declared,
    opt,
)


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
    with pytest.raises(VulnsteerError, match="--wide-layer-stride 0: must be at least 1"):
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


# ---- every option reaches its field from the command line and from a study TOML ---------------------------
# A value other than the default for every declared field; a field added without one fails the walk below.
VALUES: dict[str, Any] = {
    "baseline.subsets": ("real-world",), "baseline.cwes": ("CWE-89",), "baseline.template": "S2",
    "baseline.generate": False, "baseline.max_new_tokens": 64, "baseline.batch_size": 8,
    "baseline.generate_sample": 16, "baseline.max_code_tokens": 512, "baseline.long_files": LongFiles.SKIP_PAIRS,
    "baseline.n_boot": 200, "baseline.seed": 7, "baseline.all_templates": True,
    "steer.layers": (2, 3), "steer.methods": (Method.CAA, Method.PROBE), "steer.add_alphas": (-2.0, 2.5),
    "steer.amplify_alphas": (2.0,), "steer.ablate": False, "steer.k_folds": 5, "steer.n_random": 2,
    "steer.select": "auroc", "steer.per_cwe": True, "steer.strength_unit": StrengthUnit.RAW,
    "steer.scope": SweepScope.CODE, "steer.wide_layer_stride": 2, "steer.wide_add_alphas": (-1.0, 1.0),
    "steer.wide_amplify_alphas": (2.0,), "steer.seed": 7, "steer.template": "S3", "steer.conditional": False,
    "steer.search": SearchMode.COARSE_FINE, "steer.search_top": 2, "steer.search_subsample": 8,
    "run.train": (Train.AUGMENTED,), "run.n_side_by_side": 1, "run.side_by_side_tokens": 32, "run.n_fluency": 2,
    "run.stages": ("probe",), "run.dtype": Precision.BFLOAT16, "run.device": "cpu", "run.readout": Readout.CODE_MEAN,
    "run.fit_on": ("sven",), "run.test_on": ("real-world",), "run.fit_max_code_tokens": 256,
    "run.fit_long_files": LongFiles.SKIP,
}
# The fields whose flag or key alone does not reach them: how the command line or the TOML does instead.
CLI_VIA = {"baseline.all_templates": ("baseline", "--template", "all"), "run.stages": ("probe",),
           "run.test_on": ("run", "--fit-on", "sven", "--test-on", "real-world")}
TOML_VIA = {"baseline.subsets": 'cells = [{ crossfit = ["real-world"] }]', "run.readout": 'readouts = ["code-mean"]',
            "run.fit_on": 'cells = [{ fit = ["sven"], test = ["real-world"] }]',
            "run.test_on": 'cells = [{ fit = ["sven"], test = ["real-world"] }]'}
NOT_IN_TOML = {"run.stages"}  # a study cell runs every stage


def _field(cfg: RunConfig, key: str) -> Any:
    part, name = key.split(".")
    return getattr(cfg if part == "run" else getattr(cfg, part), name)


def _cli_args(d: Declared, value: Any) -> list[str]:
    flag = str(d.opt.flag)
    if isinstance(value, bool):
        return [flag.split("/")[0] if value else flag.split("/")[1]]
    if isinstance(value, tuple):
        return [f"{flag}=" + ",".join(str(v) for v in value)]
    return [flag, str(value)]


def _toml(value: Any) -> str:
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def _declared() -> dict[str, Declared]:
    return {f"{d.part}.{d.name}": d for d in declarations()}


def test_every_declared_option_has_a_value_to_walk():
    assert set(VALUES) == set(_declared())


@pytest.mark.parametrize("key", sorted(VALUES))
def test_the_command_line_reaches_every_config_field(key, monkeypatch):
    from typer.testing import CliRunner

    from vulnsteer import cli

    seen: list[RunConfig] = []
    monkeypatch.setattr(cli, "_execute", lambda command, cfg, **where: seen.append(cfg))  # the config, not the run
    d, value = _declared()[key], VALUES[key]
    calls = [CLI_VIA[key]] if key in CLI_VIA else [(c, *_cli_args(d, value)) for c in d.opt.commands]
    assert calls, f"{key}: no command takes it"
    for args in calls:
        result = CliRunner().invoke(cli.app, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        got = _field(seen.pop(), key)
        assert got == value and type(got) is type(value), f"{args}: {key} is {got!r}"


@pytest.mark.parametrize("key", sorted(set(VALUES) - NOT_IN_TOML))
def test_a_study_toml_reaches_every_config_field(key, tmp_path):
    d, value = _declared()[key], VALUES[key]
    text = TOML_VIA.get(key) or f"[run]\n{d.opt.toml} = {_toml(value)}"
    (tmp_path / "s.toml").write_text(text)
    spec = load_spec(tmp_path / "s.toml")
    got = _field(cell_config(spec, spec.cells()[0]), key)
    assert got == value and type(got) is type(value), f"{text!r}: {key} is {got!r}"


def test_an_option_field_without_a_declaration_is_refused():
    @dataclass(frozen=True)
    class Bare:
        declared_one: int = opt(1, "A declared option.", "--declared-one", "declared_one")
        bare: int = 2

    with pytest.raises(TypeError, match="Bare.bare has no opt"):
        declared(Bare, "run")
    with pytest.raises(TypeError, match="give a flag"):
        opt(1, "Reached by nothing.", None, "key")
