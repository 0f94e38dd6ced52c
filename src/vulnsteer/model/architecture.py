"""One accessor for the parts of a causal LM that vulnsteer touches, whatever the architecture.

Known model types are read from `_LAYOUTS` (no forward needed, and no doubt about what was found); any
other decoder-only model is searched by structure (`model.structure`) and accepted only if one recorded
forward through the found parts reproduces the model's own hidden states.

The parts themselves and the block-output helpers are in `model.parts`, which the structure search imports
too: this module imports the search, so the search cannot import this module.
"""

from __future__ import annotations

import weakref

from torch import nn

from vulnsteer.errors import ModelError
from vulnsteer.model.parts import ModelParts
from vulnsteer.model.structure import find_parts

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
