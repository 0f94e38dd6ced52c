"""Rendering records into prompts, and the one-pass sample run with its activation cache."""

from __future__ import annotations

import torch

from vulnsteer.activations.cache import ActivationCache
from vulnsteer.activations.scoring import AnswerWords
from vulnsteer.data.prompts import answer_token_ids
from vulnsteer.data.secllmholmes import cwe_names, load_secllmholmes
from vulnsteer.model.architecture import model_parts
from vulnsteer.model.loading import LoadedModel
from vulnsteer.model.tiny import tiny_model
from vulnsteer.options import Readout
from vulnsteer.prompting.samples import build_samples, run_samples


def _loaded(tokenizer) -> LoadedModel:
    m = tiny_model("qwen2")
    return LoadedModel(m, tokenizer, "tiny", "0" * 64, model_parts(m), "hf_dir", "tiny", None)  # type: ignore[arg-type]


def test_code_span_covers_exactly_the_code(data_root, tokenizer):
    records = [r for r in load_secllmholmes(data_root, ["hand-crafted"]) if r.cwe == "CWE-787"][:2]
    samples = build_samples(records, _loaded(tokenizer), "S1", cwe_names(data_root), data_root)
    for s in samples:
        (w,) = s.windows
        assert s.record.cwe == "CWE-787" and "out-of-bounds write" in w.prompt
        start, end = w.code_span
        decoded = tokenizer.decode(w.input_ids[0, start:end])
        assert s.record.code.strip()[:20] in decoded and s.record.code.strip()[-20:] in decoded
        assert not s.fit.truncated


def test_long_files_are_recorded_not_dropped(data_root, tokenizer):
    records = load_secllmholmes(data_root, ["real-world"])[:4]
    loaded = _loaded(tokenizer)
    names = cwe_names(data_root)
    skipped = build_samples(records, loaded, "S1", names, data_root, max_code_tokens=64, policy="skip")
    assert len(skipped) == 4 and all(s.fit.skipped and s.windows == () for s in skipped)
    cut = build_samples(records, loaded, "S1", names, data_root, max_code_tokens=200, policy="diff-centred")
    assert len(cut) == 4
    assert all((s.fit.truncated and len(s.windows) == 1 and s.windows[0].code.n_tokens <= 200) or s.fit.skipped
               for s in cut)
    assert any(s.fit.truncated for s in cut) and all(s.fit.note for s in cut)
    windowed = build_samples(records[:2], loaded, "S1", names, data_root, max_code_tokens=1536)  # the default policy
    for s in windowed:
        assert s.fit.policy == "windows" and len(s.windows) > 1 and not s.fit.truncated
        assert [w.code for w in s.windows] == list(s.fit.windows)
        for w in s.windows:  # each window's code sits whole in its own prompt, its span on exactly that code
            start, end = w.code_span
            assert w.code.code in w.prompt and w.code.code.strip()[-20:] in tokenizer.decode(w.input_ids[0, start:end])


def test_skip_pairs_drops_a_pair_whole_and_keeps_paired_data_balanced(data_root, tokenizer):
    """CWE-787's hand-crafted pairs are 136/122, 997/997 and 619/666 tiny tokens long: a budget of 640 keeps pair 1,
    drops pair 2 (both sides over) and pair 3 (its patched side over); plain skip keeps 3's vulnerable side."""
    records = [r for r in load_secllmholmes(data_root, ["hand-crafted"]) if r.cwe == "CWE-787"]
    loaded, names = _loaded(tokenizer), cwe_names(data_root)

    def kept(policy: str, recs=records) -> dict[str, bool]:
        return {s.record.id.rsplit("/", 1)[1]: not s.fit.skipped
                for s in build_samples(recs, loaded, "S1", names, data_root, max_code_tokens=640, policy=policy)}

    assert kept("skip") == {"1": True, "p_1": True, "2": False, "p_2": False, "3": True, "p_3": False}
    assert kept("skip-pairs") == {"1": True, "p_1": True, "2": False, "p_2": False, "3": False, "p_3": False}
    samples = build_samples(records, loaded, "S1", names, data_root, max_code_tokens=640, policy="skip-pairs")
    live = [s.record.label for s in samples if not s.fit.skipped]
    assert live.count(1) == live.count(0) == 1  # skip would keep two vulnerable files and one secure
    (three,) = [s for s in samples if s.record.id.endswith("/3")]
    assert three.fit.with_twin and three.windows == () and "p_3" in three.fit.note
    assert [s.fit.with_twin for s in samples].count(True) == 1  # pair 2's sides are over on their own
    # Without its twin a file is unpaired: over the budget it goes alone, within it it stays.
    assert kept("skip-pairs", [r for r in records if not r.id.endswith("/p_3")])["3"] is True


def test_a_file_that_fits_is_one_window_scored_as_without_windows(data_root, tokenizer):
    """Bit-identical to the whole-file prompt run once, whatever the policy."""
    from vulnsteer.activations.passes import run_prompt
    from vulnsteer.data.prompts import build_messages, render_prompt

    loaded = _loaded(tokenizer)
    words = AnswerWords(*map(tuple, answer_token_ids(tokenizer)))
    names = cwe_names(data_root)
    records = load_secllmholmes(data_root, ["hand-crafted"])[:3]
    sets = {p: run_samples(build_samples(records, loaded, "S1", names, data_root, policy=p), loaded, words)
            for p in ("windows", "diff-centred", "skip")}
    add_special = not bool(getattr(tokenizer, "chat_template", None))
    for i, r in enumerate(records):
        prompt = render_prompt(build_messages(r, "S1", names[r.cwe]), tokenizer)
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=add_special)["input_ids"]
        for sset in sets.values():
            (w,) = sset.samples[i].windows
            assert w.prompt == prompt and torch.equal(w.input_ids, ids) and w.code.code == r.code
        state = run_prompt(loaded.model, loaded.parts, ids, span=sets["windows"].samples[i].windows[0].code_span)
        for sset in sets.values():
            assert torch.equal(sset.scores[i], words.score(state.answer_logits))
            assert torch.equal(sset.residuals[i], state.answer_residuals)
            assert torch.equal(sset.span_means[i], state.span_mean)
            assert torch.equal(sset.span_lasts[i], state.span_last)


def test_windows_pool_the_score_by_max_and_readouts_by_mean(data_root, tokenizer):
    from vulnsteer.activations.passes import run_prompt

    loaded = _loaded(tokenizer)
    words = AnswerWords(*map(tuple, answer_token_ids(tokenizer)))
    records = load_secllmholmes(data_root, ["hand-crafted"])[:2]
    samples = build_samples(records, loaded, "S1", cwe_names(data_root), data_root, max_code_tokens=160)
    sset = run_samples(samples, loaded, words, keep_states=True)
    for i, s in enumerate(sset.samples):
        assert len(s.windows) > 1 and len(sset.states[i]) == len(s.windows)
        passes = [run_prompt(loaded.model, loaded.parts, w.input_ids, span=w.code_span) for w in s.windows]
        scores = [float(words.score(p.answer_logits)) for p in passes]
        assert len(set(scores)) > 1, "windows must read differently for the pooling to be tested"
        assert float(sset.scores[i]) == max(scores)
        torch.testing.assert_close(sset.residuals[i], sum(p.answer_residuals for p in passes) / len(passes))
        torch.testing.assert_close(sset.span_means[i], sum(p.span_mean for p in passes) / len(passes))
        torch.testing.assert_close(sset.span_lasts[i], sum(p.span_last for p in passes) / len(passes))
    assert torch.equal(sset.readout(Readout.CODE_LAST), sset.span_lasts)  # the pooled rows are what probes read


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
        assert step[:200] in s.windows[0].prompt and plain[:200] not in s.windows[0].prompt, template
    (s,) = build_samples([record], loaded, "S5", cwe_names(data_root), data_root)
    assert plain[:200] in s.windows[0].prompt and step[:200] not in s.windows[0].prompt


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


def test_each_window_is_its_own_cache_entry(data_root, tokenizer, tmp_path):
    loaded = _loaded(tokenizer)
    words = AnswerWords(*map(tuple, answer_token_ids(tokenizer)))
    records = load_secllmholmes(data_root, ["hand-crafted"])[:2]
    samples = build_samples(records, loaded, "S1", cwe_names(data_root), data_root, max_code_tokens=200)
    cache = ActivationCache(tmp_path)
    first = run_samples(samples, loaded, words, cache)
    n_windows = sum(len(s.windows) for s in samples)
    assert n_windows > len(samples) and len(list(tmp_path.rglob("*.safetensors"))) == n_windows
    loaded.model.forward = None  # every window is served from the cache
    second = run_samples(samples, loaded, words, cache)
    assert torch.equal(first.scores, second.scores) and torch.equal(first.residuals, second.residuals)
    assert torch.equal(first.span_lasts, second.span_lasts)  # each window's code-last readout, cached


def test_each_readout_equals_hand_computed_positions_of_a_plain_forward(data_root, tokenizer, tmp_path):
    """answer = the last prompt token; code-mean = the mean over the code's tokens; code-last = its last token;
    from the passes, and again from the activation cache."""
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
        (w,) = s.windows
        with torch.inference_mode():
            hidden = model(w.input_ids, output_hidden_states=True).hidden_states[:-1]  # the last one is normed
        start, end = w.code_span
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

    loaded = _loaded(tokenizer)
    words = AnswerWords(*map(tuple, answer_token_ids(tokenizer)))
    samples = build_samples(load_secllmholmes(data_root, ["hand-crafted"])[:2], loaded, "S1", cwe_names(data_root),
                            data_root)
    samples[1] = replace(samples[1], windows=tuple(replace(w, code_span=None) for w in samples[1].windows))
    sset = run_samples(samples, loaded, words)
    assert sset.readout(Readout.ANSWER).isfinite().all()
    for readout in (Readout.CODE_MEAN, Readout.CODE_LAST):
        with pytest.raises(DataError, match=samples[1].record.id):
            sset.readout(readout)
