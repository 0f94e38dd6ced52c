"""One accessor for the parts of a causal LM that vulnsteer touches, whatever the architecture.

Known model types are read from `_LAYOUTS` (no forward needed, and no doubt about what was found); any
other decoder-only model is searched by structure (`model.structure`) and accepted only if one recorded
forward through the found parts reproduces the model's own hidden states.

Decoder blocks return a Tensor in transformers 5 but a tuple in older versions and some architectures;
`block_hidden` / `with_block_hidden` handle both so no caller indexes `output[0]` blindly (on a Tensor that
silently selects batch element 0).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from vulnsteer.errors import ModelError

# model_type -> (path to the decoder stack, blocks attr, final norm attr, embedding attr, unembedding attr)
_LAYOUTS: dict[str, tuple[str, str, str, str, str]] = {
    "qwen2": ("model", "layers", "norm", "embed_tokens", "lm_head"),
    "qwen3": ("model", "layers", "norm", "embed_tokens", "lm_head"),
    "llama": ("model", "layers", "norm", "embed_tokens", "lm_head"),
    "mistral": ("model", "layers", "norm", "embed_tokens", "lm_head"),
    "gemma": ("model", "layers", "norm", "embed_tokens", "lm_head"),
    "gemma2": ("model", "layers", "norm", "embed_tokens", "lm_head"),
    "gemma3_text": ("model", "layers", "norm", "embed_tokens", "lm_head"),
    "starcoder2": ("model", "layers", "norm", "embed_tokens", "lm_head"),
    "gpt_bigcode": ("transformer", "h", "ln_f", "wte", "lm_head"),
    "gpt2": ("transformer", "h", "ln_f", "wte", "lm_head"),
    "gpt_neox": ("gpt_neox", "layers", "final_layer_norm", "embed_in", "lm_head"),
}


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


# Parts found by structure, per model object: the search runs a validating forward, so once per model.
_FOUND: "weakref.WeakKeyDictionary[nn.Module, ModelParts]" = weakref.WeakKeyDictionary()


def table_model_types() -> list[str]:
    """The model types whose layout is written down; others are found by structure search."""
    return sorted(_LAYOUTS)


def model_parts(model: nn.Module) -> ModelParts:
    """Locate the parts of `model` (a transformers *ForCausalLM): from the table, else by validated structure."""
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    layout = _LAYOUTS.get(str(model_type))
    if layout is None:
        if config is None or not isinstance(model, nn.Module):
            raise ModelError(
                f"unsupported architecture {type(model).__name__}: no transformers config; pass a decoder-only "
                f"*ForCausalLM (laid out in advance: {', '.join(table_model_types())}; others found by structure)"
            )
        if model not in _FOUND:
            from vulnsteer.model.structure import find_parts  # runs a forward; imports the recorder

            _FOUND[model] = find_parts(model)
        return _FOUND[model]
    stack_attr, blocks_attr, norm_attr, embed_attr, unembed_attr = layout
    stack = getattr(model, stack_attr)
    return ModelParts(
        blocks=getattr(stack, blocks_attr),
        final_norm=getattr(stack, norm_attr),
        embed=getattr(stack, embed_attr),
        unembed=getattr(model, unembed_attr),
        model_type=str(model_type),
    )


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
