"""Rendering records into prompts, and the one-pass sample run with its activation cache."""

from __future__ import annotations

import torch

from vulnsteer.activations.cache import ActivationCache
from vulnsteer.data.prompts import answer_token_ids
from vulnsteer.data.secllmholmes import cwe_names, load_secllmholmes
from vulnsteer.activations.scoring import AnswerWords
from vulnsteer.experiments.samples import build_samples, run_samples
from vulnsteer.model.architecture import model_parts
from vulnsteer.model.loading import LoadedModel
from vulnsteer.model.tiny import tiny_model


def _loaded(tokenizer) -> LoadedModel:
    m = tiny_model("qwen2")
    return LoadedModel(m, tokenizer, "tiny", "0" * 64, model_parts(m), "hf_dir", "tiny", None)  # type: ignore[arg-type]


def test_code_span_covers_exactly_the_code(data_root, tokenizer):
    records = [r for r in load_secllmholmes(data_root, ["hand-crafted"]) if r.cwe == "CWE-787"][:2]
    samples = build_samples(records, _loaded(tokenizer), "S1", cwe_names(data_root), data_root)
    for s in samples:
        assert s.record.cwe == "CWE-787" and "out-of-bounds write" in s.prompt
        start, end = s.code_span
        decoded = tokenizer.decode(s.input_ids[0, start:end])
        assert s.record.code.strip()[:20] in decoded and s.record.code.strip()[-20:] in decoded
        assert not s.fit.truncated


def test_long_files_are_recorded_not_dropped(data_root, tokenizer):
    records = load_secllmholmes(data_root, ["real-world"])[:4]
    loaded = _loaded(tokenizer)
    skipped = build_samples(records, loaded, "S1", cwe_names(data_root), data_root, max_code_tokens=64, policy="skip")
    assert len(skipped) == 4 and all(s.fit.skipped for s in skipped)
    cut = build_samples(records, loaded, "S1", cwe_names(data_root), data_root, max_code_tokens=64, policy="truncate")
    assert len(cut) == 4
    assert all((s.fit.truncated and s.fit.kept_tokens <= 64) or s.fit.skipped for s in cut)
    assert any(s.fit.truncated for s in cut) and all(s.fit.note for s in cut)


def test_run_samples_uses_the_cache_and_matches_a_fresh_pass(data_root, tokenizer, tmp_path):
    loaded = _loaded(tokenizer)
    words = AnswerWords(*map(tuple, answer_token_ids(tokenizer)))
    records = load_secllmholmes(data_root, ["hand-crafted"])[:4]
    samples = build_samples(records, loaded, "S1", cwe_names(data_root), data_root)
    cache = ActivationCache(tmp_path)
    first = run_samples(samples, loaded, words, cache)
    assert len(list(tmp_path.rglob("*.safetensors"))) == 4
    loaded.model.forward = None  # a second run must not call the model at all
    second = run_samples(samples, loaded, words, cache)
    torch.testing.assert_close(first.residuals, second.residuals)
    torch.testing.assert_close(first.scores, second.scores)
    assert first.residuals.shape == (4, loaded.parts.n_layers + 1, loaded.parts.d_model)


def test_step_by_step_templates_read_the_step_by_step_reasoning(data_root, tokenizer):
    """R4, R5, R6, D4 and D5 use few-shot/step-by-step-reasoning/, the others few-shot/reasoning/ (upstream)."""
    record = [r for r in load_secllmholmes(data_root, ["hand-crafted"]) if r.cwe == "CWE-22"][0]
    folder = data_root / "secllmholmes" / "few-shot"
    step = (folder / "step-by-step-reasoning" / "cwe-22.txt").read_text(encoding="utf-8").strip()
    plain = (folder / "reasoning" / "cwe-22.txt").read_text(encoding="utf-8").strip()
    assert step[:200] != plain[:200]
    loaded = _loaded(tokenizer)
    for template in ("R4", "R5", "R6", "D4", "D5"):
        (s,) = build_samples([record], loaded, template, cwe_names(data_root), data_root)
        assert step[:200] in s.prompt and plain[:200] not in s.prompt, template
    (s,) = build_samples([record], loaded, "S5", cwe_names(data_root), data_root)
    assert plain[:200] in s.prompt and step[:200] not in s.prompt


def test_skipped_samples_are_dropped_from_the_tensors(data_root, tokenizer):
    records = load_secllmholmes(data_root, ["hand-crafted"])[:2] + load_secllmholmes(data_root, ["real-world"])[:2]
    loaded = _loaded(tokenizer)
    budget = max(len(tokenizer(r.code).input_ids) for r in records[:2])  # the short files fit, the long ones do not
    samples = build_samples(records, loaded, "S1", cwe_names(data_root), data_root, max_code_tokens=budget, policy="skip")
    words = AnswerWords(*map(tuple, answer_token_ids(tokenizer)))
    sset = run_samples(samples, loaded, words)
    n_live = sum(not s.fit.skipped for s in samples)
    assert 0 < n_live < 4 and len(sset.samples) == n_live == sset.residuals.shape[0] == sset.scores.shape[0]
    assert len(sset.skipped) == 4 - n_live and torch.isfinite(sset.scores).all()
    assert all(not s.fit.skipped for s in sset.samples)


def test_each_readout_equals_hand_computed_positions_of_a_plain_forward(data_root, tokenizer, tmp_path):
    """answer = the last prompt token; code-mean = the mean over the code's tokens; code-last = its last token;
    from the passes, and again from the activation cache."""
    from vulnsteer.options import Readout

    loaded = _loaded(tokenizer)
    words = AnswerWords(*map(tuple, answer_token_ids(tokenizer)))
    samples = build_samples(load_secllmholmes(data_root, ["hand-crafted"])[:3], loaded, "S1", cwe_names(data_root),
                            data_root)
    cache = ActivationCache(tmp_path)
    fresh = run_samples(samples, loaded, words, cache)
    loaded.model.forward = None  # the second run reads every readout from the cache
    cached = run_samples(samples, loaded, words, cache)
    model = tiny_model("qwen2")  # the same seeded weights, with its forward intact
    for i, s in enumerate(samples):
        with torch.inference_mode():
            hidden = model(s.input_ids, output_hidden_states=True).hidden_states[:-1]  # the last one is normed
        start, end = s.code_span
        want = {Readout.ANSWER: torch.stack([h[0, -1] for h in hidden]),
                Readout.CODE_MEAN: torch.stack([h[0, start:end].mean(0) for h in hidden]),
                Readout.CODE_LAST: torch.stack([h[0, end - 1] for h in hidden])}
        for readout, expected in want.items():
            for sset in (fresh, cached):
                got = sset.readout(readout)[i, : len(hidden)]
                torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(fresh.readout(Readout.CODE_MEAN), fresh.readout(Readout.CODE_LAST))
    torch.testing.assert_close(fresh.subset([2, 0]).readout(Readout.CODE_LAST), fresh.span_lasts[[2, 0]])


def test_a_code_readout_without_a_code_span_is_refused_in_one_line(data_root, tokenizer):
    from dataclasses import replace

    import pytest

    from vulnsteer.errors import DataError
    from vulnsteer.options import Readout

    loaded = _loaded(tokenizer)
    words = AnswerWords(*map(tuple, answer_token_ids(tokenizer)))
    samples = build_samples(load_secllmholmes(data_root, ["hand-crafted"])[:2], loaded, "S1", cwe_names(data_root),
                            data_root)
    samples[1] = replace(samples[1], code_span=None)
    sset = run_samples(samples, loaded, words)
    assert sset.readout(Readout.ANSWER).isfinite().all()
    for readout in (Readout.CODE_MEAN, Readout.CODE_LAST):
        with pytest.raises(DataError, match=samples[1].record.id):
            sset.readout(readout)
