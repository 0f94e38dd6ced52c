"""What only the real default model shows (marked real_model): the zero-shot "yes" bias, a residual
signal a probe can read, and steering mechanics that hold on a real 24-layer model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vulnsteer.activations.layers import block_outputs
from vulnsteer.activations.scoring import AnswerWords
from vulnsteer.data.prompts import answer_token_ids
from vulnsteer.data.secllmholmes import cwe_names, load_secllmholmes
from vulnsteer.model.loading import default_cache_dir, load_model
from vulnsteer.prompting.samples import build_samples, run_samples
from vulnsteer.steering import reentry_check as reentry
from vulnsteer.steering.sweep import score_interventions
from vulnsteer.vectors.hooks import steer
from vulnsteer.vectors.training import fit_vectors

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def real_samples(real_model, data_root):
    words = AnswerWords(*map(tuple, answer_token_ids(real_model.tokenizer)))
    records = [r for r in load_secllmholmes(data_root, ["hand-crafted"]) if r.cwe in ("CWE-787", "CWE-89", "CWE-476")]
    samples = build_samples(records, real_model, "S1", cwe_names(data_root), data_root)
    return words, run_samples(samples, real_model, words, keep_states=True)


def test_zero_shot_answers_are_mostly_yes_but_not_constant(real_samples):
    _, sset = real_samples
    scores = sset.scores.numpy()
    assert (scores > 0).mean() >= 0.8, "the 0.5B model says yes to (nearly) every file under S1"
    assert scores.std() > 0.01, "scores must vary with the code"


def test_steering_moves_the_real_answer_and_the_sweep_matches_a_full_forward(real_model, real_samples):
    words, sset = real_samples
    parts, model = real_model.parts, real_model.model
    records = [s.record for s in sset.samples]
    vector = fit_vectors(sset.residuals, records, [12], ["caa"])["caa"]
    (state,), (window,) = sset.states[0], sset.samples[0].windows  # a short file: one window
    ids = window.input_ids
    ivs = [iv for a in (-8.0, 8.0) for iv in vector.interventions(a, "add")]
    scores = score_interventions(parts, state, ivs, words)
    # Which way the answer moves is what the experiment measures; here only that a real edit moves it.
    assert (scores - sset.scores[0]).abs().max() > 1e-3
    with torch.inference_mode(), steer(model, [ivs[0]], scope="answer", prompt_len=ids.shape[1]):
        ref = words.score(model(ids).logits[0, -1])
    torch.testing.assert_close(scores[0], ref, atol=2e-3, rtol=1e-3)


def test_a_linear_probe_reads_more_than_the_answer_does(real_samples):
    from vulnsteer.evaluation.probes import layer_probes

    _, sset = real_samples
    groups = [s.record.group for s in sset.samples]
    result = layer_probes(block_outputs(sset.residuals).numpy(), sset.labels.numpy(), groups, k=3, seed=0)
    assert np.nanmax(result.auroc) > 0.6  # grouped CV: no scenario in both train and test


def test_bf16_mixed_reenters_on_the_cached_prefix(real_model, monkeypatch):  # real_model: skip without the model
    """bf16-mixed's cached prefix differs from its full forward by more than float32's bound, but by less than
    its own run-to-run rounding allows, so the sweep runs on the cached prefix (issue 15)."""
    loaded = load_model("qwen2.5-coder-0.5b", cache_dir=default_cache_dir() / "models", dtype="bf16-mixed")
    model, parts = loaded.model, loaded.parts
    assert reentry.reentry_problem(model, parts) == ""
    monkeypatch.setattr(reentry, "_NOISE_FACTOR", 0.0)  # the float32 bound alone, as before issue 15
    assert reentry.reentry_problem(model, parts).startswith("the last token on the cached prefix")
