"""Find the parts of a decoder-only model that is not in the layout table, and prove them with one forward.

The search reads only the module tree:

* blocks: the outermost `nn.ModuleList` whose children all share one class, preferring one whose length
  is the config's layer count, else the longest (an MoE expert list sits inside a block, so it is never
  outermost);
* final norm: in the module that holds the block list (the decoder stack), the first child registered
  after the list whose name says norm (`norm`, `ln_f`, `final_layer_norm`, ...). transformers registers
  submodules in the order the forward uses them, and a norm before the blocks (an embedding norm) is
  never the final one;
* embedding and unembedding: the model's own `get_input_embeddings()` / `get_output_embeddings()`.

A guess is never trusted: hooks on every found block during one forward must reproduce the model's
own `output_hidden_states` (block 0's input, each block's output, and the final norm of the last), or
the model is refused with one line.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from vulnsteer.errors import ModelError
from vulnsteer.model.parts import ModelParts, block_hidden

_NORM_NAME = re.compile(r"norm|^ln(_|$)", re.IGNORECASE)  # norm, norm_f, final_layer_norm, ln_f, ln_out
_CHECK_TOKENS = 12
_TOLERANCE = 1e-4  # relative to the largest hidden value: the same tensors, maybe in another order of ops


def _uniform_lists(model: nn.Module) -> list[tuple[str, nn.ModuleList]]:
    """Non-empty ModuleLists whose children share one class, outermost only, in registration order."""
    found: list[tuple[str, nn.ModuleList]] = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0:
            continue
        if len({type(child) for child in module}) != 1:
            continue
        if any(name.startswith(outer + ".") for outer, _ in found):
            continue  # inside a block of an outer list (attention heads, experts)
        found.append((name, module))
    return found


def _layer_count(model: nn.Module) -> int | None:
    config = model.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config  # type: ignore[operator]
    for key in ("num_hidden_layers", "n_layer", "num_layers", "n_layers"):
        value = getattr(text, key, None)
        if isinstance(value, int):
            return value
    return None


def _parent(model: nn.Module, name: str) -> nn.Module:
    return model.get_submodule(name.rpartition(".")[0]) if "." in name else model


def _final_norm(stack: nn.Module, blocks: nn.ModuleList) -> nn.Module | None:
    after = False
    for name, child in stack.named_children():
        if child is blocks:
            after = True
        elif after and _NORM_NAME.search(name):
            return child
    return None


def search_parts(model: nn.Module) -> ModelParts:
    """The parts the module tree suggests, not yet validated (see `find_parts`)."""
    model_type = str(getattr(model.config, "model_type", type(model).__name__))
    what = f"{type(model).__name__} (model_type={model_type!r})"
    lists = _uniform_lists(model)
    if not lists:
        raise ModelError(f"{what}: no list of decoder blocks found; vulnsteer needs a decoder-only transformer")
    n_layers = _layer_count(model)
    matching = [entry for entry in lists if len(entry[1]) == n_layers]
    name, blocks = matching[0] if matching else max(lists, key=lambda entry: len(entry[1]))
    norm = _final_norm(_parent(model, name), blocks)
    if norm is None:
        raise ModelError(f"{what}: no final norm after the blocks {name!r} (a child named *norm*/ln_f); "
                         "add its layout to vulnsteer.model.architecture._LAYOUTS")
    embed = model.get_input_embeddings()  # type: ignore[operator]  # PreTrainedModel methods, typed via nn.Module
    unembed = model.get_output_embeddings()  # type: ignore[operator]
    if not isinstance(unembed, nn.Linear) or embed is None:
        raise ModelError(f"{what}: no linear output embedding (lm_head); pass a *ForCausalLM model")
    return ModelParts(blocks=blocks, final_norm=norm, embed=embed, unembed=unembed, model_type=model_type,
                      found_by="structure")


def _differs(got: torch.Tensor, want: torch.Tensor) -> bool:
    if got.shape != want.shape:
        return True
    scale = max(float(want.abs().max()), 1.0)
    return not torch.allclose(got.float(), want.float(), rtol=0.0, atol=_TOLERANCE * scale)


@torch.inference_mode()
def validate_parts(model: nn.Module, parts: ModelParts) -> None:
    """Refuse `parts` unless hooks on its blocks reproduce the model's `output_hidden_states` in one forward."""
    what = f"{type(model).__name__} (model_type={parts.model_type!r}, found by structure)"
    vocab = int(parts.unembed.weight.shape[0])
    ids = (torch.arange(_CHECK_TOKENS) * 7 + 3).remainder(vocab)[None].to(parts.unembed.weight.device)
    seen: dict[int, torch.Tensor] = {}
    handles = [block.register_forward_hook(lambda _m, _i, out, k=k: seen.__setitem__(k, block_hidden(out)))
               for k, block in enumerate(parts.blocks)]
    first: list[torch.Tensor] = []
    handles.append(parts.blocks[0].register_forward_pre_hook(
        lambda _m, args, kwargs: first.append(args[0] if args else kwargs["hidden_states"]), with_kwargs=True))
    try:
        hidden = model(input_ids=ids, output_hidden_states=True, use_cache=False).hidden_states
    finally:
        for handle in handles:
            handle.remove()
    n = parts.n_layers
    if hidden is None or len(hidden) != n + 1 or len(seen) != n or not first:
        ran = len(seen)
        raise ModelError(f"{what}: {ran} of the {n} blocks found ran, and the model reports "
                         f"{len(hidden) - 1 if hidden else 0} layers; not a plain decoder stack, add its layout to _LAYOUTS")
    mine = [first[0]] + [seen[k] for k in range(n - 1)] + [parts.final_norm(seen[n - 1])]
    for k, (got, want) in enumerate(zip(mine, hidden)):
        if _differs(got, want):
            where = "the input of block 0" if k == 0 else ("the final norm" if k == n else f"block {k - 1}")
            raise ModelError(f"{what}: hooks at the found blocks do not reproduce hidden state {k} "
                             f"({where}); add its layout to vulnsteer.model.architecture._LAYOUTS")


def find_parts(model: nn.Module) -> ModelParts:
    """Search the module tree for the parts and validate them with one recorded forward."""
    parts = search_parts(model)
    validate_parts(model, parts)
    return parts
