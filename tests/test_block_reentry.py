"""Re-entering the stack at the steered layer must equal a full steered forward, on every architecture."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from vulnsteer.activations.passes import run_prompt
from vulnsteer.model.architecture import model_parts
from vulnsteer.steering.block_reentry import record_full, reenter_logits
from vulnsteer.vectors.hooks import steer
from vulnsteer.vectors.operators import Intervention, apply

PROMPT = "int main(void) { char buf[16]; strcpy(buf, argv[1]); } Does this code contain a vulnerability? Answer yes"


def _ids(tokenizer) -> torch.Tensor:
    return tokenizer(PROMPT, return_tensors="pt").input_ids


def reenter_answer(parts, state, layers, edit):
    """Answer-scope re-entry: the last token's recorded calls on top of the cached prefix."""
    return reenter_logits(parts, state.answer_recording, layers, edit, state.prefix_cache)


def _edit(iv: Intervention):
    return lambda _layer, h: apply(h, iv)


def test_prompt_pass_matches_plain_forward(model, tokenizer):
    ids = _ids(tokenizer)
    state = run_prompt(model, model_parts(model), ids, span=(2, 8))
    with torch.inference_mode():
        full = model(ids).logits[0, -1]
        hidden = model(ids, output_hidden_states=True).hidden_states
    torch.testing.assert_close(state.answer_logits, full, atol=1e-5, rtol=1e-5)
    # residual after the last block is before the final norm: compare the blocks transformers does not norm
    for k in range(len(hidden) - 1):
        torch.testing.assert_close(state.answer_residuals[k], hidden[k][0, -1], atol=1e-5, rtol=1e-5)
    assert state.span_mean is not None and state.span_mean.shape == state.answer_residuals.shape


@pytest.mark.parametrize("reentry_exact", [True, False])
def test_span_readouts_equal_hand_computed_means_and_positions(model, tokenizer, reentry_exact):
    """The span's mean and last-token residuals, from the split pass and from the one-forward fallback, equal
    those read off `output_hidden_states`; a span reaching the answer token stops before it."""
    ids = _ids(tokenizer)
    parts = replace(model_parts(model), reentry_exact=reentry_exact)
    with torch.inference_mode():
        hidden = model(ids, output_hidden_states=True).hidden_states[:-1]  # the last one is normed
    n = ids.shape[1]
    for span, (start, end) in (((2, 8), (2, 8)), ((3, n + 4), (3, n - 1))):
        state = run_prompt(model, parts, ids, span=span, keep_reentry=False)
        assert state.span_mean is not None and state.span_last is not None
        for k, h in enumerate(hidden):
            torch.testing.assert_close(state.span_mean[k], h[0, start:end].mean(0), atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(state.span_last[k], h[0, end - 1], atol=1e-5, rtol=1e-5)
    empty = run_prompt(model, parts, ids, span=(n - 1, n), keep_reentry=False)
    assert empty.span_mean is None and empty.span_last is None


def test_answer_scope_reentry_equals_full_steered_forward(model, tokenizer):
    ids = _ids(tokenizer)
    parts = model_parts(model)
    state = run_prompt(model, parts, ids)
    torch.manual_seed(1)
    for op in ("add", "amplify", "ablate"):
        iv = Intervention(1, op, torch.randn(parts.d_model), 3.0, torch.randn(parts.d_model))
        with torch.inference_mode(), steer(model, [iv], scope="answer", prompt_len=ids.shape[1]):
            ref = model(ids).logits[0, -1]
        got = reenter_answer(parts, state, [1], _edit(iv))[0]
        torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
        assert not torch.allclose(got, state.answer_logits, atol=1e-3), "the intervention must change the logits"
    # the prefix cache is restored: an unsteered re-entry reproduces the unsteered logits exactly
    again = reenter_answer(parts, state, [0], lambda _l, h: h)[0]
    torch.testing.assert_close(again, state.answer_logits, atol=1e-5, rtol=1e-5)


def test_all_scope_reentry_equals_full_steered_forward(model, tokenizer):
    ids = _ids(tokenizer)
    parts = model_parts(model)
    rec = record_full(model, parts, ids)
    iv = Intervention(2, "add", torch.randn(parts.d_model), 2.0)
    with torch.inference_mode(), steer(model, [iv], scope="all"):
        ref = model(ids).logits[0, -1]
    got = reenter_logits(parts, rec, [2], _edit(iv))[0]
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
