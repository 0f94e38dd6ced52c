"""The public API: what a notebook does, end to end on a tiny model, and the example CI runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vulnsteer as vs
from vulnsteer.activations.passes import run_prompt
from vulnsteer.api_notebook import _build, _words
from vulnsteer.steering.sweep import score_interventions

REPO = Path(__file__).resolve().parents[1]


def test_all_exports_resolve_and_are_documented():
    api_doc = (REPO / "docs" / "API.md").read_text(encoding="utf-8")
    for name in vs.__all__:
        assert getattr(vs, name) is not None
        assert f"`{name}" in api_doc, f"docs/API.md does not document {name}"


def test_steered_answer_score_equals_the_sweeps_re_entry(tiny_dirs, data_root, monkeypatch):
    monkeypatch.setenv("VULNSTEER_DATA", str(data_root))
    lm = vs.load_model(str(tiny_dirs["qwen2"]))
    records = vs.load_records(["hand-crafted"], cwes=["CWE-787"], data=data_root)
    vector = vs.train_steering_vector(lm, records[:4], layers=[1, 2], method="caa")
    assert vector.model_hash == lm.source_hash and vector.template_id == "S1" and len(vector.record_ids) == 4
    one = vector.at_layer(2)
    plain = vs.answer_score(lm, records[5])
    with one.apply(lm, alpha=6.0, unit="sigma", scope="answer"):
        steered = vs.answer_score(lm, records[5])
    assert vs.answer_score(lm, records[5]) == plain, "the model is restored on exit"
    (sample,) = _build(lm, [records[5]], "S1")
    (window,) = sample.windows
    state = run_prompt(lm.model, lm.parts, window.input_ids)
    ref = score_interventions(lm.parts, state, one.interventions(6.0, "add", "sigma"), _words(lm))
    torch.testing.assert_close(torch.tensor(steered), ref[0], atol=1e-4, rtol=1e-4)
    assert abs(steered - plain) > 1e-4


def test_a_long_file_is_scored_by_the_max_over_its_windows(tiny_dirs, data_root, monkeypatch):
    monkeypatch.setenv("VULNSTEER_DATA", str(data_root))
    lm = vs.load_model(str(tiny_dirs["qwen2"]))
    record = vs.load_records(["real-world"], data=data_root)[0]
    (sample,) = _build(lm, [record], "S1")
    assert len(sample.windows) > 1  # over the default budget of 1536 code tokens
    scores = [float(_words(lm).score(run_prompt(lm.model, lm.parts, w.input_ids).answer_logits)) for w in sample.windows]
    assert vs.answer_score(lm, record) == pytest.approx(max(scores), abs=1e-5)
    answer = vs.generate_answer(lm, record, max_new_tokens=2)
    assert answer.count("===== window ") == len(sample.windows)


def test_quickstart_example_runs(tiny_dirs, data_root, tmp_path):
    env = {**__import__("os").environ, "VULNSTEER_DATA": str(data_root), "VULNSTEER_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "quickstart.py"), "--model", str(tiny_dirs["qwen2"]),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "the reloaded vector gives the same steered score" in proc.stdout
    assert len(list((tmp_path / "out").glob("caa-block*.safetensors"))) == 1


def test_a_vector_vulnsteer_run_saved_applies_in_two_lines_as_the_experiment_scored_it(data_root, tmp_path, monkeypatch):
    import json

    from vulnsteer.experiments.config import BaselineConfig, RunConfig, SteerConfig

    monkeypatch.setenv("VULNSTEER_DATA", str(data_root))
    cfg = RunConfig(baseline=BaselineConfig(cwes=("CWE-787", "CWE-89", "CWE-22"), generate=False, n_boot=100),
                    steer=SteerConfig(layers=(1, 2), methods=("caa",), k_folds=3, n_random=1),
                    n_side_by_side=0, n_fluency=1)
    run_dir = vs.run(cfg, model="tiny-qwen2", out=tmp_path / "run", cache_dir=tmp_path / "cache")
    row = next(json.loads(line) for line in (run_dir / "steer" / "test.jsonl").read_text().splitlines()
               if json.loads(line)["fold"] == 0)
    lm = vs.load_model("tiny-qwen2")
    record = next(r for r in vs.load_records(["hand-crafted"], cwes=["CWE-787", "CWE-89", "CWE-22"]) if r.id == row["id"])
    with vs.SteeringVector.load(run_dir / "steer" / "vectors" / "fold0-pooled").apply(lm):
        steered = vs.answer_score(lm, record)
    assert abs(steered - row["steered"]) < 1e-4, (steered, row["steered"])
    assert abs(vs.answer_score(lm, record) - row["baseline"]) < 1e-4 and abs(row["steered"] - row["baseline"]) > 1e-4
