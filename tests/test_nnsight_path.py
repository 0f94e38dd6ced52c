from __future__ import annotations

import pytest
import torch

from vulnsteer.errors import VulnsteerError
from vulnsteer.model.tiny import tiny_model
from vulnsteer.steering.nnsight_path import nnsight_generate, nnsight_logits
from vulnsteer.vectors.hooks import steer
from vulnsteer.vectors.operators import Intervention

IDS = torch.tensor([[5, 6, 7, 8, 9, 10, 11]])
N = IDS.shape[1]


def _interventions(operator: str) -> list[Intervention]:
    g = torch.Generator().manual_seed(1)
    v1, v2, mu = torch.randn(64, generator=g) * 3, torch.randn(64, generator=g) * 3, torch.randn(64, generator=g)
    # two layers, so the nnsight body handles several blocks in one forward
    return [Intervention(1, operator, v1, 2.0, mu), Intervention(2, operator, v2, -1.5)]  # type: ignore[arg-type]


@pytest.mark.parametrize("operator", ["add", "amplify", "ablate"])
@pytest.mark.parametrize("scope", ["all", "answer"])
def test_logits_match_hook_path(model, tokenizer, operator, scope):
    ivs = _interventions(operator)
    with torch.no_grad():
        plain = model(IDS).logits
        with steer(model, ivs, scope, N):
            hooked = model(IDS).logits
    got = nnsight_logits(model, tokenizer, IDS, ivs, scope, N)
    assert not torch.allclose(hooked, plain)  # the comparison below would otherwise prove nothing
    torch.testing.assert_close(got, hooked, atol=1e-5, rtol=0)


@pytest.mark.parametrize("scope", ["all", "answer", "generated"])
def test_generation_matches_hook_path(model, tokenizer, scope):
    ivs = _interventions("add")
    with torch.no_grad():
        plain = model.generate(IDS, max_new_tokens=5, do_sample=False)
        with steer(model, ivs, scope, N):
            hooked = model.generate(IDS, max_new_tokens=5, do_sample=False)
    got = nnsight_generate(model, tokenizer, IDS, ivs, scope, N, max_new_tokens=5)
    assert not torch.equal(hooked, plain)
    assert torch.equal(got, hooked)


def test_left_padded_batch_matches_hook_path(model, tokenizer):
    batch = torch.cat([IDS, torch.cat([torch.zeros(1, 2, dtype=torch.long), IDS[:, 2:]], 1)])
    mask = torch.tensor([[1] * N, [0, 0] + [1] * (N - 2)])
    lengths = torch.tensor([N, N - 2])
    ivs = _interventions("add")
    inputs = {"input_ids": batch, "attention_mask": mask}
    # nnsight (like generate) numbers a left-padded row from its first real token; a plain forward does not
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        with steer(model, ivs, "answer", lengths):
            hooked_logits = model(**inputs, position_ids=position_ids).logits
        with steer(model, ivs, "generated", lengths):
            hooked_tokens = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    logits = nnsight_logits(model, tokenizer, inputs, ivs, "answer", lengths)
    torch.testing.assert_close(logits, hooked_logits, atol=1e-5, rtol=0)
    assert torch.equal(nnsight_generate(model, tokenizer, inputs, ivs, "generated", lengths, 4), hooked_tokens)


def test_leaves_model_and_tokenizer_as_they_were(tokenizer):
    model = tiny_model("qwen2")
    side = tokenizer.padding_side
    with torch.no_grad():
        before = model(IDS).logits
        nnsight_logits(model, tokenizer, IDS, _interventions("add"), "answer", N)
        nnsight_generate(model, tokenizer, IDS, _interventions("add"), "answer", N, max_new_tokens=2)
        after = model(IDS).logits
    assert torch.equal(before, after)
    assert tokenizer.padding_side == side  # nnsight sets "left" on the tokenizer it is handed: we hand it a copy


def test_no_interventions_is_plain_generation(tokenizer):
    model = tiny_model("llama")
    with torch.no_grad():
        plain = model.generate(IDS, max_new_tokens=4, do_sample=False)
    assert torch.equal(nnsight_generate(model, tokenizer, IDS, [], max_new_tokens=4), plain)


def test_remote_serialisation_round_trip(tokenizer):
    """remote="local" serialises the trace as for NDIF, hides non-installed modules, and runs it here."""
    model = tiny_model("llama")
    ivs = _interventions("amplify")
    with torch.no_grad(), steer(model, ivs, "answer", N):
        hooked = model(IDS).logits
    got = nnsight_logits(model, tokenizer, IDS, ivs, "answer", N, remote="local")
    torch.testing.assert_close(got, hooked, atol=1e-5, rtol=0)


def test_bad_inputs(tokenizer):
    model = tiny_model("gpt2")
    ivs = _interventions("add")
    with pytest.raises(VulnsteerError, match="tokenizer"):
        nnsight_logits(model, None, IDS, ivs)
    with pytest.raises(VulnsteerError, match=r"\[batch, seq\]"):
        nnsight_logits(model, tokenizer, IDS[0], ivs)
    with pytest.raises(VulnsteerError, match="prompt_len"):
        nnsight_logits(model, tokenizer, IDS, ivs, "answer")
    with pytest.raises(VulnsteerError, match="rows"):
        nnsight_generate(model, tokenizer, IDS, ivs, "answer", torch.tensor([3, 4]), max_new_tokens=2)


def test_block_output_tuple_or_tensor_keeps_its_form():
    from vulnsteer.steering.nnsight_path import _steered_output

    h = torch.randn(2, 3, 64)
    iv = [Intervention(0, "add", torch.ones(64), 1.0)]
    pad = torch.zeros(2, dtype=torch.long)
    as_tensor = _steered_output(h, iv, "answer", 2, 0, pad)
    as_tuple = _steered_output((h, "attn"), iv, "answer", 2, 0, pad)
    assert isinstance(as_tensor, torch.Tensor) and as_tensor.shape == h.shape  # both rows, not row 0
    assert isinstance(as_tuple, tuple) and as_tuple[1] == "attn"
    assert torch.equal(as_tuple[0], as_tensor)
    assert torch.equal(as_tensor[:, 1], h[:, 1] + 1) and torch.equal(as_tensor[:, [0, 2]], h[:, [0, 2]])
