"""The same interventions through nnsight, for users who run models on NDIF (`remote=True`).

The already-loaded transformers model is wrapped with `nnsight.modeling.transformers.TransformersModel`
(what the deprecated `nnsight.LanguageModel` is an alias for in nnsight 0.8), adopting a copy of the
tokenizer because nnsight sets `padding_side="left"` on the tokenizer it is given. Inside the trace a block's
output is a real value: a Tensor in transformers 5, a tuple in older versions, where `output[0]` on a
Tensor would silently be batch row 0, so the type is checked before reading or writing it.

Scopes and positions follow `vulnsteer.vectors.hooks`: the nnsight body keeps its own token offset (the
sum of sequence lengths of earlier decoding steps) and reads the padding from the attention mask passed in.
Generation steers every step with `for step in tracer.all():` (`with tracer.all():` does nothing).
For a left-padded batch nnsight adds mask-derived `position_ids` (as `generate` does; a plain
`model(**batch)` does not), so compare against the hook path with the same `position_ids`.

`remote=True` ships the trace to NDIF (needs an NDIF API key and a model deployed there under the same
name; it cannot be tested offline). The vulnsteer helpers the trace calls are registered with
`nnsight.register` so they travel by value. `remote="local"` runs that same serialize/deserialize path here.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from vulnsteer.errors import VulnsteerError
from vulnsteer.model.architecture import model_parts
from vulnsteer.model.parts import block_hidden, with_block_hidden
from vulnsteer.model.precision import model_device
from vulnsteer.options import Scope
from vulnsteer.vectors.hooks import (
    PromptLen,
    group_by_layer,
    left_padding,
    prompt_lengths,
    scope_mask,
    steer_hidden,
    token_positions,
)
from vulnsteer.vectors.operators import Intervention

Remote = bool | Literal["local"]


def wrap(model: nn.Module, tokenizer: Any) -> Any:
    """`model` as an nnsight TransformersModel (the weights are shared, not copied)."""
    from nnsight.modeling.transformers import TransformersModel

    if tokenizer is None:
        raise VulnsteerError("the nnsight path needs the model's tokenizer (nnsight builds a pipeline around it)")
    return TransformersModel(model, tokenizer=copy.deepcopy(tokenizer), task="text-generation")


def _block_envoys(lm: Any, model: nn.Module) -> Any:
    """The nnsight envoy of the decoder-block list (e.g. `lm.model.layers`), found via `model_parts`."""
    blocks = model_parts(model).blocks
    name = next(name for name, module in model.named_modules() if module is blocks)
    envoy = lm
    for part in name.split("."):
        envoy = getattr(envoy, part)
    return envoy


def _split_inputs(inputs: Tensor | Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    """input_ids and the kwargs that go with them (attention_mask, position_ids when given)."""
    if isinstance(inputs, Tensor):
        ids, extra = inputs, {}
    elif isinstance(inputs, Mapping) and "input_ids" in inputs:
        ids = inputs["input_ids"]
        extra = {k: inputs[k] for k in ("attention_mask", "position_ids") if inputs.get(k) is not None}
    else:
        raise VulnsteerError("inputs must be an input_ids tensor or a mapping with input_ids (a tokenizer's output)")
    if not isinstance(ids, Tensor) or ids.ndim != 2:
        raise VulnsteerError(f"input_ids must be a tensor [batch, seq], got shape {tuple(getattr(ids, 'shape', ()))}")
    return ids, extra


def _steered_output(
    output: Any,
    interventions: Sequence[Intervention],
    scope: Scope | str,
    prompt_len: PromptLen | None,
    offset: int,
    pad: Tensor,
) -> Any:
    """A block's output with the scoped interventions applied, in the same form (Tensor or tuple) it came in."""
    if isinstance(output, Tensor):
        hidden = output
    elif isinstance(output, tuple):
        hidden = block_hidden(output)
    else:
        raise TypeError(f"unexpected decoder block output of type {type(output).__name__}")
    mask = None
    if scope != "all":
        positions = token_positions(hidden.shape[1], offset, pad.to(hidden.device))
        assert prompt_len is not None  # checked on entry
        mask = scope_mask(scope, positions, prompt_lengths(prompt_len, hidden.shape[0], hidden.device))
    return with_block_hidden(output, steer_hidden(hidden, interventions, mask))


def _prepare(model, tokenizer, inputs, interventions, scope, prompt_len, remote):
    Scope(scope)  # a one-line error for an unknown scope, before anything is traced
    if scope != "all" and prompt_len is None:
        raise VulnsteerError(f"scope {scope!r} needs prompt_len (the prompt's length in tokens, without padding)")
    by_layer = group_by_layer(model, interventions)
    ids, kwargs = _split_inputs(inputs)
    if not remote:  # a remote trace ships the inputs as they are; the server places them
        device = model_device(model)
        ids, kwargs = ids.to(device), {k: v.to(device) for k, v in kwargs.items()}
    mask = kwargs.get("attention_mask")
    pad = left_padding(mask) if mask is not None else torch.zeros(ids.shape[0], dtype=torch.long)
    if scope != "all":
        prompt_lengths(prompt_len, ids.shape[0])  # fail before tracing, not inside it
    if remote:
        import nnsight

        nnsight.register("vulnsteer")  # the server has no vulnsteer: ship the helpers by value
    lm = wrap(model, tokenizer)
    return lm, _block_envoys(lm, model), by_layer, ids, kwargs, pad


def nnsight_logits(
    model: nn.Module,
    tokenizer: Any,
    inputs: Tensor | Mapping[str, Tensor],
    interventions: Sequence[Intervention],
    scope: Scope | str = Scope.ALL,
    prompt_len: PromptLen | None = None,
    remote: Remote = False,
) -> Tensor:
    """Logits [batch, seq, vocab] of one steered forward, run through nnsight."""
    lm, blocks, by_layer, ids, kwargs, pad = _prepare(
        model, tokenizer, inputs, interventions, scope, prompt_len, remote
    )
    with lm.trace(ids, remote=remote, **kwargs):
        for layer, ivs in by_layer.items():  # ascending: nnsight serves outputs in execution order
            blocks[layer].output = _steered_output(blocks[layer].output, ivs, scope, prompt_len, 0, pad)
        logits = lm.output.logits.save()
    return logits.detach()


def nnsight_generate(
    model: nn.Module,
    tokenizer: Any,
    inputs: Tensor | Mapping[str, Tensor],
    interventions: Sequence[Intervention],
    scope: Scope | str = Scope.ALL,
    prompt_len: PromptLen | None = None,
    max_new_tokens: int = 32,
    remote: Remote = False,
    **generate_kwargs: Any,
) -> Tensor:
    """Token ids [batch, prompt + new] of steered greedy generation (by default) run through nnsight."""
    if max_new_tokens < 1:
        raise VulnsteerError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    lm, blocks, by_layer, ids, kwargs, pad = _prepare(
        model, tokenizer, inputs, interventions, scope, prompt_len, remote
    )
    generate_kwargs.setdefault("do_sample", False)
    offset = [0]  # absolute position of this step's first token; a list so the trace body can update it
    with warnings.catch_warnings():
        # An open tracer.all() loop always ends with nnsight warning that the step after the last was not reached.
        warnings.filterwarnings("ignore", message=".*was never reached.*")
        with lm.generate(max_new_tokens=max_new_tokens, remote=remote, **generate_kwargs) as tracer:
            with tracer.invoke(ids, **kwargs):
                for _step in tracer.all() if by_layer else ():  # a loop that reads nothing never ends
                    seq_len = 0
                    for layer, ivs in by_layer.items():
                        output = blocks[layer].output
                        seq_len = block_hidden(output).shape[1]
                        blocks[layer].output = _steered_output(output, ivs, scope, prompt_len, offset[0], pad)
                    offset[0] += seq_len
            with tracer.invoke():  # statements after an open all() loop never run, so read the result here
                tokens = tracer.result.save()
    return tokens
