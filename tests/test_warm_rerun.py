"""A rerun with the caches of a finished run (a "warm" run): its steered scores, answers and fluency NLLs are
read back (activations/cache.py `result_key`), so it runs no prompt pass, no steered score and no decoding,
and it writes exactly what the first run wrote."""

from __future__ import annotations

import pytest

from conftest import STUDY_TOML
from vulnsteer.api import study
from vulnsteer.experiments.study_spec import load_spec

OUTPUTS = ("baseline/samples.jsonl", "baseline/summary.json", "probe/curve.json", "steer/test.jsonl",
           "steer/sweep.csv", "steer/summary.json", "steer/generations.jsonl", "steer/choices.json",
           "steer/conditional.json")

# Everything that runs the model after loading it, by the name each stage calls it by.
COMPUTE = ("vulnsteer.prompting.samples.run_prompt", "vulnsteer.prompting.scorer.score_interventions",
           "vulnsteer.prompting.scorer.score_interventions_all_positions",
           "vulnsteer.prompting.scorer.score_full_forwards", "vulnsteer.prompting.scorer.record_full",
           "vulnsteer.experiments.baseline.generate_from_passes", "vulnsteer.experiments.baseline.generate_answers",
           "vulnsteer.experiments.steered_text.generate_from_passes",
           "vulnsteer.experiments.steered_text.generate_answers", "vulnsteer.experiments.steered_text.code_nll_many")


def _spy(monkeypatch) -> dict[str, int]:
    """Count the calls of each COMPUTE function; each still runs (a spy, not a mock)."""
    import importlib

    calls = dict.fromkeys(COMPUTE, 0)
    for target in COMPUTE:
        module, name = target.rsplit(".", 1)
        real = getattr(importlib.import_module(module), name)

        def counted(*args, _real=real, _target=target, **kwargs):
            calls[_target] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(target, counted)
    return calls


@pytest.mark.parametrize("scope", ["answer", "code"])
def test_a_warm_rerun_computes_nothing_and_writes_what_the_cold_run_wrote(scope, data_root, tmp_path, monkeypatch):
    text = STUDY_TOML.replace("generate = false", "generate = true\nmax_new_tokens = 6\nside_by_side_tokens = 6")
    text = text.replace("n_side_by_side = 0", "n_side_by_side = 2").replace("n_fluency = 0", "n_fluency = 2")
    text += f'scope = "{scope}"\n'
    path = tmp_path / "study.toml"
    path.write_text(text)
    spec = load_spec(path)
    calls = _spy(monkeypatch)
    cold = study(spec, tmp_path / "cold", data_root, tmp_path / "cache")
    ran = {k: v for k, v in calls.items() if v}
    assert "vulnsteer.prompting.samples.run_prompt" in ran and len(ran) >= 4, ran  # the spies see the cold run
    for k in calls:
        calls[k] = 0
    warm = study(spec, tmp_path / "warm", data_root, tmp_path / "cache")
    assert not {k: v for k, v in calls.items() if v}, "the warm run computed what the cold run stored"
    cells = sorted(p.name for p in (cold / "cells").iterdir())
    assert cells and cells == sorted(p.name for p in (warm / "cells").iterdir())
    for cell in cells:
        for name in OUTPUTS:
            a, b = cold / "cells" / cell / name, warm / "cells" / cell / name
            assert a.is_file(), f"{cell}: {name} missing"
            assert a.read_text() == b.read_text(), f"{cell}: {name}"


def test_a_changed_setting_computes_again(data_root, tmp_path, monkeypatch):
    """Stored results are keyed by what they were computed from: another strength grid is another sweep."""
    path = tmp_path / "study.toml"
    path.write_text(STUDY_TOML)
    study(load_spec(path), tmp_path / "a", data_root, tmp_path / "cache")
    path.write_text(STUDY_TOML + "add_alphas = [0.5, 3.0]\n")
    calls = _spy(monkeypatch)
    study(load_spec(path), tmp_path / "b", data_root, tmp_path / "cache")
    assert calls["vulnsteer.prompting.scorer.score_interventions"] > 0
    assert calls["vulnsteer.prompting.samples.run_prompt"] > 0, "the sweep needs the passes the cache lacks"
