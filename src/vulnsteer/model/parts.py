"""The parts of a causal LM that vulnsteer touches (`ModelParts`), and the decoder-block output helpers.

Decoder blocks return a Tensor in transformers 5 but a tuple in older versions and some architectures;
`block_hidden` / `with_block_hidden` handle both so no caller indexes `output[0]` blindly (on a Tensor that
silently selects batch element 0). Where the parts are found: `model.architecture`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn


@dataclass(frozen=True)
class ModelParts:
    """The decoder blocks, final norm, input embedding and unembedding of one model."""

    blocks: nn.ModuleList
    final_norm: nn.Module
    embed: nn.Module
    unembed: nn.Linear
    model_type: str
    found_by: Literal["table", "structure"] = "table"
    # Whether re-entering the stack at a block (recorded calls, cached prefix) gives the full forward's
    # logits; set by `steering.reentry_check.check_reentry` at load. Where False, callers run full forwards.
    reentry_exact: bool = True
    reentry_note: str = ""

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    @property
    def d_model(self) -> int:
        return int(self.unembed.weight.shape[1])


def block_hidden(output: Any) -> torch.Tensor:
    """The residual-stream tensor [batch, seq, d] from a decoder block's output (Tensor or tuple)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(f"unexpected decoder block output of type {type(output).__name__}")


def with_block_hidden(output: Any, hidden: torch.Tensor) -> Any:
    """`output` with its residual-stream tensor replaced by `hidden`, keeping the original shape of output."""
    if isinstance(output, torch.Tensor):
        return hidden
    if isinstance(output, tuple):
        return (hidden, *output[1:])
    if isinstance(output, list):
        return [hidden, *output[1:]]
    raise TypeError(f"unexpected decoder block output of type {type(output).__name__}")
