from __future__ import annotations

import torch

from vulnsteer.activations.recorder import call_with_hidden, record_blocks
from vulnsteer.model.architecture import model_parts


def test_recording_matches_hidden_states_and_replays_exactly(model, tokenizer):
    ids = tokenizer("int main(void) { return 0; }", return_tensors="pt").input_ids
    parts = model_parts(model)
    def hook_count() -> int:
        return sum(len(b._forward_hooks) + len(b._forward_pre_hooks) for b in parts.blocks)

    before = hook_count()
    with torch.inference_mode():
        with record_blocks(parts) as rec:
            model(ids, use_cache=False)
        assert hook_count() == before, "hooks removed on exit"
        hidden = model(ids, output_hidden_states=True, use_cache=False).hidden_states
    residuals = rec.residuals()
    assert len(residuals) == parts.n_layers + 1
    for k in range(parts.n_layers):  # the last hidden state is after the final norm in transformers
        torch.testing.assert_close(residuals[k], hidden[k])
    with torch.inference_mode():
        replay = call_with_hidden(parts.blocks[1], rec.calls[1], rec.calls[0].output)
    torch.testing.assert_close(replay, rec.calls[1].output)
