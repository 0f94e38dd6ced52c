"""Re-entry at a block is checked per model; where it is not exact, every path falls back to full forwards."""

from __future__ import annotations

import math

import pytest
import torch

from vulnsteer.activations.passes import run_prompt
from vulnsteer.activations.scoring import AnswerWords
from vulnsteer.data.prompts import answer_token_ids
from vulnsteer.evaluation.fluency import code_nll_many
from vulnsteer.model.architecture import model_parts
from vulnsteer.model.precision import to_precision
from vulnsteer.model.tiny import tiny_model
from vulnsteer.steering import reentry_check as reentry
from vulnsteer.steering.block_reentry import reenter_logits
from vulnsteer.steering.reentry_check import _probe_length, check_reentry, reentry_problem
from vulnsteer.steering.sweep import score_full_forwards
from vulnsteer.vectors.hooks import steer
from vulnsteer.vectors.operators import Intervention, apply

PROMPT = "int main(void) { char buf[16]; strcpy(buf, argv[1]); } Does this code contain a vulnerability? Answer yes"


def test_reentry_is_exact_on_every_tiny_architecture(model):
    assert reentry_problem(model, model_parts(model)) == ""


def test_probe_prompt_crosses_a_sliding_window_only_where_one_is_used():
    assert _probe_length(tiny_model("qwen2")) == 24
    gemma3 = tiny_model("gemma3_text")
    assert gemma3.config.sliding_window == 8 and _probe_length(gemma3) == 24
    gemma3.config.sliding_window = 100
    assert _probe_length(gemma3) == 108
    gemma3.config.layer_types = ["full_attention"] * 4
    assert _probe_length(gemma3) == 24


def _softcapped():
    """Tiny Gemma 2: it soft-caps its logits after the unembedding, which re-entry does not reproduce."""
    model = tiny_model("gemma2")
    assert model.config.final_logit_softcapping == 30.0
    # A random tiny model's logits are ~0.5, where a cap of 30 is the identity to 1e-5; real Gemma 2 logits
    # reach the cap. A cap at the tiny scale makes the same computation visible.
    model.config.final_logit_softcapping = 0.5
    return model


@pytest.fixture(scope="module")
def softcapped():
    return _softcapped()


def _drop_last_prefix_key(model):
    """A fault in the cached-prefix path: the answer token's forward loses the prefix's last key and value
    (as a cache that drops what a later token needs would)."""

    def pre(_m, args, kwargs):
        cache = kwargs.get("cache")
        if cache is not None and kwargs["input_ids"].shape[1] == 1:
            cache.crop(-1)

    model.register_forward_pre_hook(pre, with_kwargs=True)
    return model


@pytest.mark.parametrize("dtype", ["float32", "bf16-mixed", "bfloat16"])
def test_the_bound_is_the_precisions_rounding_and_faults_still_exceed_it(dtype):
    """Each precision's bound follows its own run-to-run rounding (float32's stays at the float32 bound),
    and a path that computes something else is caught at every precision."""
    model = to_precision(tiny_model("qwen2"), dtype)
    ids = torch.arange(24)[None] * 13 + 5
    with torch.inference_mode():
        full = model(input_ids=ids, use_cache=False).logits[0, -1]
        measured = reentry.rounding(model, ids, full)
    assert 0.0 <= measured * reentry._NOISE_FACTOR < reentry._TOLERANCE, "tiny models round below the float32 bound"
    assert reentry_problem(model, model_parts(model)) == ""
    faulty = _drop_last_prefix_key(to_precision(tiny_model("qwen2"), dtype))
    assert reentry_problem(faulty, model_parts(faulty)).startswith("the last token on the cached prefix")
    capped = to_precision(_softcapped(), dtype)
    assert reentry_problem(capped, model_parts(capped)).startswith("re-entering at block 2")


def test_softcapped_logits_are_detected_as_inexact(softcapped, tokenizer):
    parts = check_reentry(softcapped, model_parts(softcapped))
    assert not parts.reentry_exact and "re-entering at block 2" in parts.reentry_note and "\n" not in parts.reentry_note
    # the check is not crying wolf: the re-entry path really gives other logits than a steered forward
    ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    exact_parts = model_parts(softcapped)
    state = run_prompt(softcapped, exact_parts, ids)
    iv = Intervention(1, "add", torch.randn(exact_parts.d_model, generator=torch.Generator().manual_seed(0)), 3.0)
    with torch.inference_mode(), steer(softcapped, [iv], "answer", ids.shape[1]):
        want = softcapped(ids).logits[0, -1]
    got = reenter_logits(exact_parts, state.answer_recording, [1], lambda _l, h: apply(h, iv), state.prefix_cache)[0]
    assert not torch.allclose(got, want, atol=1e-3)


def test_inexact_models_get_full_forwards_everywhere(softcapped, tokenizer):
    parts = check_reentry(softcapped, model_parts(softcapped))
    ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    state = run_prompt(softcapped, parts, ids, span=(2, 8))
    assert state.answer_recording is None and state.prefix_cache is None
    with torch.inference_mode():
        hidden = softcapped(ids, output_hidden_states=True)
    torch.testing.assert_close(state.answer_logits, hidden.logits[0, -1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state.answer_residuals[1], hidden.hidden_states[1][0, -1], atol=1e-5, rtol=1e-5)
    assert state.span_mean is not None

    words = AnswerWords(*map(tuple, answer_token_ids(tokenizer)))
    g = torch.Generator().manual_seed(1)
    ivs = [Intervention(layer, "add", torch.randn(parts.d_model, generator=g), 3.0) for layer in (0, 2)]
    for scope in ("answer", "all"):
        scores = score_full_forwards(softcapped, ids, ivs, words, scope)
        for iv, got in zip(ivs, scores):
            with torch.inference_mode(), steer(softcapped, [iv], scope, ids.shape[1]):
                torch.testing.assert_close(got, words.score(softcapped(ids).logits[0, -1]), atol=1e-5, rtol=1e-5)
    assert scores.std() > 0

    code = "int main(void) { char buf[16]; strcpy(buf, argv[1]); return 0; }"
    code_ids = tokenizer(code, return_tensors="pt", add_special_tokens=False).input_ids
    nlls = code_nll_many(softcapped, parts, tokenizer, code, ivs)
    for got, iv in zip(nlls, [None, *ivs]):
        with torch.inference_mode(), steer(softcapped, [iv] if iv else [], "all"):
            logits = softcapped(code_ids).logits[0, :-1]
        assert math.isclose(got, float(torch.nn.functional.cross_entropy(logits, code_ids[0, 1:])), rel_tol=1e-5)
