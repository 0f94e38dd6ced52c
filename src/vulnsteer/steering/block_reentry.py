"""Steered evaluation that re-enters the block stack at the steered layer instead of starting over.

Given a recorded unsteered pass, a steered result at layer k needs only blocks k+1.. re-run: blocks
before k see nothing of the intervention. For the answer-position scope the re-run covers one token on
top of the prompt's KV cache (`PromptPass`); for the every-position scope it covers the whole prompt
from the recorded output of block k (`record_full`). Both give the same logits as a full steered
forward (tests check this on every supported architecture).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from vulnsteer.activations.passes import CacheSnapshot
from vulnsteer.activations.recorder import Recording, call_with_hidden, record_blocks
from vulnsteer.model.parts import ModelParts
from vulnsteer.model.precision import model_device

# (layer, residual [batch, seq, d]) -> edited residual; called on the output of each steered block.
Edit = Callable[[int, torch.Tensor], torch.Tensor]


@torch.inference_mode()
def record_full(model: nn.Module, parts: ModelParts, input_ids: torch.Tensor) -> Recording:
    """An unsteered forward over the whole prompt, no KV cache, with every block call recorded."""
    with record_blocks(parts, keep_calls=True) as rec:
        model(input_ids=input_ids.to(model_device(model)), use_cache=False, logits_to_keep=1)
    return rec


@torch.inference_mode()
def reenter_logits(
    parts: ModelParts,
    recording: Recording,
    layers: list[int],
    edit: Edit,
    snapshot: CacheSnapshot | None = None,
    unembed_rows: torch.Tensor | None = None,
) -> torch.Tensor:
    """Last-position logits [batch, vocab] (float32, CPU) after editing the outputs of `layers` and re-running
    later blocks.

    `edit` may return a larger batch than it was given (one row per strength, say): each row is then
    evaluated against the same recorded prompt, which is how a sweep amortises one prompt pass.

    `unembed_rows` (token ids) restricts the unembedding to those rows: a yes/no score needs a handful
    of logits, not the whole vocabulary. The KV cache (if any) is restored before returning.
    """
    return unembed_last(parts, reenter_hidden(parts, recording, layers, edit, snapshot), unembed_rows)


@torch.inference_mode()
def reenter_hidden(
    parts: ModelParts,
    recording: Recording,
    layers: list[int],
    edit: Edit,
    snapshot: CacheSnapshot | None = None,
) -> torch.Tensor:
    """The last block's output [batch, seq, d] (before the final norm) after the edits; see reenter_logits."""
    if not layers:
        raise ValueError("re-entry needs at least one steered layer")
    steered = sorted(set(layers))
    first = steered[0]
    call = recording.calls[first]
    assert call is not None
    hidden = edit(first, call.output.clone())
    try:
        for j in range(first + 1, parts.n_layers):
            later = recording.calls[j]
            assert later is not None
            if snapshot is not None and hidden.shape[0] != call.output.shape[0]:
                # Several edits of one prompt as a batch share the prefix KV cache: broadcast it.
                snapshot.broadcast_layer(j, hidden.shape[0])
            hidden = call_with_hidden(parts.blocks[j], later, hidden)
            if snapshot is not None:
                snapshot.restore_layer(j)  # drop this block's appended (and batch-sized) keys at once
            if j in steered:
                hidden = edit(j, hidden)
    finally:
        if snapshot is not None:
            snapshot.restore()
    return hidden


def unembed_last(parts: ModelParts, hidden: torch.Tensor, unembed_rows: torch.Tensor | None = None) -> torch.Tensor:
    """Final norm and unembedding of the last position (float32, CPU); only `unembed_rows` when given."""
    last = parts.final_norm(hidden[:, -1])
    if unembed_rows is None:
        return parts.unembed(last).float().cpu()
    rows = unembed_rows.to(parts.unembed.weight.device)
    bias = parts.unembed.bias[rows] if parts.unembed.bias is not None else None
    return nn.functional.linear(last, parts.unembed.weight[rows], bias).float().cpu()
