from __future__ import annotations

import pytest
import torch

from vulnsteer.errors import ModelError, VulnsteerError
from vulnsteer.model.architecture import model_parts
from vulnsteer.options import Scope
from vulnsteer.vectors.hooks import capture_residuals, left_padding, scope_mask, steer, token_positions
from vulnsteer.vectors.operators import Intervention

LAYER, ALPHA = 1, 2.0
IDS = torch.tensor([[5, 6, 7, 8, 9, 10, 11, 12]])
PROMPT_LEN = 5  # shorter than IDS so positions on both sides of the prompt end are checked


def _direction(seed: int = 1, d: int = 64) -> torch.Tensor:
    return torch.randn(d, generator=torch.Generator().manual_seed(seed)) * 3


def _hook_counts(model) -> list[int]:
    modules = [model, *model_parts(model).blocks]
    return [len(m._forward_hooks) + len(m._forward_pre_hooks) for m in modules]


def test_positions_and_scopes_by_hand():
    pad = left_padding(torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]]))
    assert pad.tolist() == [2, 0, 5]
    pos = token_positions(2, 3, pad[:2])  # two tokens after three cached ones
    assert pos.tolist() == [[1, 2], [3, 4]]
    lengths = torch.tensor([2, 4])
    assert scope_mask("prompt", pos, lengths).tolist() == [[True, False], [True, False]]
    assert scope_mask("answer", pos, lengths).tolist() == [[True, False], [True, False]]
    assert scope_mask("generated", pos, lengths).tolist() == [[False, True], [False, True]]
    assert scope_mask("prompt", token_positions(3, 0, torch.tensor([2])), torch.tensor([1])).tolist() == [
        [False, False, True]  # padding is never "prompt"
    ]
    assert scope_mask(Scope.GENERATED, pos, lengths).tolist() == [[False, True], [False, True]]  # the enum, as text


def test_restores_model_exactly_also_after_exception(model):
    before_hooks = _hook_counts(model)
    with torch.no_grad():
        before = model(IDS).logits
        with pytest.raises(RuntimeError, match="boom"):
            with steer(model, [Intervention(LAYER, "add", _direction(), ALPHA)], "answer", PROMPT_LEN):
                assert _hook_counts(model) != before_hooks
                assert not torch.equal(model(IDS).logits, before)
                raise RuntimeError("boom")
        after = model(IDS).logits
    assert torch.equal(before, after)
    assert _hook_counts(model) == before_hooks


def test_add_all_shifts_capture_by_exactly_alpha_v(model):
    v = _direction()
    layers = [LAYER - 1, LAYER, LAYER + 1]
    with torch.no_grad():
        with capture_residuals(model, layers) as plain:
            model(IDS, output_hidden_states=True)  # transformers installs its capture hooks now, before ours
        with steer(model, [Intervention(LAYER, "add", v, ALPHA)]), capture_residuals(model, layers) as steered:
            hidden_states = model(IDS, output_hidden_states=True).hidden_states
    assert torch.equal(steered[LAYER - 1][0], plain[LAYER - 1][0])
    assert torch.equal(steered[LAYER][0], plain[LAYER][0] + ALPHA * v)
    assert not torch.allclose(steered[LAYER + 1][0], plain[LAYER + 1][0])
    # steering hooks are prepended, so transformers' own hidden_states (block k = index k + 1) see them too
    assert torch.equal(hidden_states[LAYER + 1], steered[LAYER][0])


def test_capture_sees_steering_whichever_context_is_entered_first(model):
    iv = [Intervention(LAYER, "add", _direction(), ALPHA)]
    with torch.no_grad():
        with steer(model, iv), capture_residuals(model, [LAYER]) as inner:
            model(IDS)
        with capture_residuals(model, [LAYER]) as outer, steer(model, iv):
            model(IDS)
    assert torch.equal(inner[LAYER][0], outer[LAYER][0])


def test_answer_scope_changes_only_last_prompt_position(model):
    v = _direction()
    with torch.no_grad():
        with capture_residuals(model, [LAYER, LAYER + 1]) as plain:
            model(IDS)
        with steer(model, [Intervention(LAYER, "add", v, ALPHA)], "answer", PROMPT_LEN):
            with capture_residuals(model, [LAYER, LAYER + 1]) as steered:
                model(IDS)
    diff = steered[LAYER][0] - plain[LAYER][0]
    changed = diff.abs().amax(-1)[0] > 0
    assert changed.tolist() == [i == PROMPT_LEN - 1 for i in range(IDS.shape[1])]
    assert torch.equal(steered[LAYER][0][0, PROMPT_LEN - 1], plain[LAYER][0][0, PROMPT_LEN - 1] + ALPHA * v)
    # causal: the next block sees the change only from that position on
    nxt = (steered[LAYER + 1][0] - plain[LAYER + 1][0]).abs().amax(-1)[0] > 0
    assert not nxt[: PROMPT_LEN - 1].any() and nxt[PROMPT_LEN - 1 :].all()


def test_span_scope_changes_only_the_span(model):
    v, (start, end) = _direction(), (2, 5)
    with torch.no_grad():
        with capture_residuals(model, [LAYER]) as plain:
            model(IDS)
        with steer(model, [Intervention(LAYER, "add", v, ALPHA)], "span", span=(start, end)):
            with capture_residuals(model, [LAYER]) as steered:
                model(IDS)
    changed = (steered[LAYER][0] - plain[LAYER][0]).abs().amax(-1)[0] > 0
    assert changed.tolist() == [start <= i < end for i in range(IDS.shape[1])]
    torch.testing.assert_close(steered[LAYER][0][0, start:end], plain[LAYER][0][0, start:end] + ALPHA * v)


def test_span_scope_with_per_row_spans_in_a_left_padded_batch(model):
    """Spans are absolute positions within each row: left padding shifts the columns, not the span."""
    long, short = IDS[:, :PROMPT_LEN], IDS[:, 2:PROMPT_LEN]
    batch = torch.cat([long, torch.cat([torch.zeros(1, 2, dtype=torch.long), short], 1)])
    mask = torch.tensor([[1] * PROMPT_LEN, [0, 0] + [1] * (PROMPT_LEN - 2)])
    spans = [(1, 3), (0, 2)]
    iv = [Intervention(LAYER, "add", _direction(), ALPHA)]
    with torch.no_grad():  # generate: it derives each row's position ids from the mask
        with steer(model, iv, "span", span=spans):
            together = _generate(model, batch, attention_mask=mask).logits
        for row, ids in enumerate((long, short)):
            with steer(model, iv, "span", span=spans[row]):
                alone = _generate(model, ids).logits
            for got, want in zip(together, alone):
                torch.testing.assert_close(got[row], want[0], atol=1e-4, rtol=1e-4)
            assert not torch.allclose(alone[0], _generate(model, ids).logits[0])
    assert scope_mask("span", token_positions(4, 0, torch.tensor([1, 0])), torch.tensor([3, 4]),
                      torch.tensor(spans)).tolist() == [[False, False, True, True], [True, True, False, False]]


def test_span_scope_needs_a_valid_span(model):
    iv = [Intervention(LAYER, "add", _direction(), ALPHA)]
    for scope, span, message in (("span", None, "needs it"), ("answer", (1, 2), "goes with")):
        with pytest.raises(VulnsteerError, match=message), steer(model, iv, scope, span=span):
            pass
    for span, message in (((3, 3), "start < end"), ([(0, 2), (0, 2), (0, 2)], "rows")):
        with pytest.raises(VulnsteerError, match=message), steer(model, iv, "span", span=span):
            model(IDS)


def _greedy_full_recompute(model, ids: torch.Tensor, steps: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Greedy decoding with a full forward per step: no cache, so positions are plain column indices."""
    logits = []
    for _ in range(steps):
        last = model(ids).logits[:, -1]
        logits.append(last)
        ids = torch.cat([ids, last.argmax(-1, keepdim=True)], dim=1)
    return ids, logits


def _generate(model, ids, **kw):
    return model.generate(
        ids, max_new_tokens=5, do_sample=False, output_logits=True, return_dict_in_generate=True, **kw
    )


@pytest.mark.parametrize("scope", ["prompt", "answer", "generated"])
def test_scoped_generate_matches_full_recompute(model, scope):
    ids = IDS[:, :PROMPT_LEN]
    iv = [Intervention(LAYER, "add", _direction(), ALPHA)]
    with torch.no_grad():
        plain = _generate(model, ids)
        with steer(model, iv, scope, PROMPT_LEN):
            cached = _generate(model, ids)
            manual_ids, manual_logits = _greedy_full_recompute(model, ids, len(cached.logits))
    assert torch.equal(cached.sequences, manual_ids)
    for got, want in zip(cached.logits, manual_logits):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    first_step_unchanged = torch.equal(cached.logits[0], plain.logits[0])
    # the prompt forward's positions are all < prompt_len: "generated" must not touch it, the others must
    assert first_step_unchanged == (scope == "generated")
    later_changed = any(not torch.allclose(a, b) for a, b in zip(cached.logits[1:], plain.logits[1:]))
    assert later_changed


def test_last_token_on_prefix_cache_gets_absolute_position(model):
    iv = [Intervention(LAYER, "amplify", _direction(), ALPHA)]
    n = IDS.shape[1]
    with torch.no_grad():
        plain_last = model(IDS).logits[:, -1]
        with steer(model, iv, "answer", n):
            full_last = model(IDS).logits[:, -1]
        cache = model(IDS[:, :-1], use_cache=True).cache  # the prefix is unsteered under "answer"
        assert cache.get_seq_length() == n - 1
        with steer(model, iv, "answer", n):
            cached_last = model(IDS[:, -1:], cache=cache).logits[:, -1]
    torch.testing.assert_close(cached_last, full_last, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(cached_last, plain_last)


def test_left_padded_batch_with_per_row_prompt_len(model):
    long, short = IDS[:, :PROMPT_LEN], IDS[:, 2:PROMPT_LEN]
    batch = torch.cat([long, torch.cat([torch.zeros(1, 2, dtype=torch.long), short], 1)])
    mask = torch.tensor([[1] * PROMPT_LEN, [0, 0] + [1] * (PROMPT_LEN - 2)])
    lengths = torch.tensor([PROMPT_LEN, PROMPT_LEN - 2])
    iv = [Intervention(LAYER, "add", _direction(), ALPHA)]
    with torch.no_grad():
        for scope in ("answer", "generated"):
            with steer(model, iv, scope, lengths):
                together = model.generate(batch, attention_mask=mask, max_new_tokens=5, do_sample=False)
            for row, (ids, n) in enumerate(((long, PROMPT_LEN), (short, PROMPT_LEN - 2))):
                with steer(model, iv, scope, n):
                    alone = model.generate(ids, max_new_tokens=5, do_sample=False)
                assert together[row, -5:].tolist() == alone[0, -5:].tolist(), (scope, row)


def test_capture_in_generate_has_one_tensor_per_step(model):
    with torch.no_grad(), capture_residuals(model, [0]) as captured:
        model.generate(IDS[:, :PROMPT_LEN], max_new_tokens=3, min_new_tokens=3, do_sample=False)
    assert [t.shape[1] for t in captured[0]] == [PROMPT_LEN, 1, 1]


def test_prompt_len_is_read_off_the_prompt_forward_when_not_given(model):
    iv = Intervention(LAYER, "add", _direction(), 3.0)
    prompt = IDS[:, :PROMPT_LEN]
    with torch.no_grad():
        with steer(model, [iv], "answer", PROMPT_LEN):
            explicit = model.generate(prompt, max_new_tokens=4, min_new_tokens=4, do_sample=False)
        with steer(model, [iv], "answer"):
            inferred = model.generate(prompt, max_new_tokens=4, min_new_tokens=4, do_sample=False)
        with steer(model, [iv], "answer"):
            last = model(prompt).logits[0, -1]
        with steer(model, [iv], "answer", PROMPT_LEN):
            last_explicit = model(prompt).logits[0, -1]
        plain = model(prompt).logits[0, -1]
    assert torch.equal(explicit, inferred)
    assert torch.equal(last, last_explicit) and not torch.equal(last, plain)


def test_bad_arguments(model):
    iv = Intervention(LAYER, "add", _direction())
    with pytest.raises(VulnsteerError, match="top-level"), steer(model, [iv], "answer"):
        model.base_model(IDS)  # a submodule call: no prompt forward seen, no prompt_len
    with pytest.raises(VulnsteerError, match="unknown scope 'middle'; use one of all, prompt"):
        with steer(model, [iv], "middle", 3):
            pass
    with pytest.raises(ModelError, match="out of range"):
        with steer(model, [Intervention(99, "add", _direction())]):
            pass
    with pytest.raises(ModelError, match="d=32"):
        with steer(model, [Intervention(0, "add", torch.ones(32))]):
            pass
    with pytest.raises(VulnsteerError, match="rows"), steer(model, [iv], "answer", torch.tensor([3, 4])):
        model(IDS)
    # a submodule call skips the top-level pre-hook, so positions are unknown: refuse rather than guess
    with pytest.raises(VulnsteerError, match="top-level"), steer(model, [iv], "answer", 3):
        model.base_model(IDS)
