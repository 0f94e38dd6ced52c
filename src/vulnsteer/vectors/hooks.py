"""Apply interventions to a running transformers model with forward hooks, limited to a token scope.

Scopes use absolute token positions p within each row (p = 0 is the row's first real token):

* all        every position, padding included
* prompt     0 <= p < prompt_len
* answer     p == prompt_len - 1 (the position whose logits give the answer's first token)
* generated  p >= prompt_len
* span       start <= p < end, for `span` = (start, end) per row (e.g. the code's tokens)

Positions stay absolute across KV-cached forwards (`generate`, or one token on a prefix cache): a pre-hook on
the top-level model reads the offset from its `cache` kwarg (`cache.get_seq_length()`, the number of tokens
already cached) and the per-row left padding from its 2-D `attention_mask` (leading zeros). Rows must be
left- or right-padded, not packed. `prompt_len` is an int for every row or a tensor of per-row lengths that
exclude padding. Scopes other than "all" therefore need the model to be called through its top-level
forward (`model(...)` / `model.generate(...)`), not a submodule.

Steering hooks are registered with prepend=True so they run before any other hook on the block: captures
from `capture_residuals` and transformers' `output_hidden_states` both see the steered residual, whichever
context was entered first. Unlike the steering-vectors library (`min_token_index`, relative to each
forward), the output is replaced rather than edited in place, and every hook is removed on exit, also on
an exception.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from vulnsteer.errors import ModelError, VulnsteerError
from vulnsteer.model.architecture import model_parts
from vulnsteer.model.parts import block_hidden, with_block_hidden
from vulnsteer.options import Scope
from vulnsteer.vectors.operators import Intervention, apply

PromptLen = int | Sequence[int] | Tensor
Span = tuple[int, int] | Sequence[tuple[int, int]] | Tensor  # (start, end), end exclusive; one pair or one per row


def left_padding(attention_mask: Tensor) -> Tensor:
    """Per-row count of leading zeros of a 2-D mask [batch, seq] -> LongTensor [batch]."""
    real = attention_mask.bool()
    first = real.to(torch.int8).argmax(dim=-1)  # argmax returns the first maximal index
    return torch.where(real.any(dim=-1), first, real.shape[-1]).long()


def token_positions(seq_len: int, offset: int, pad: Tensor) -> Tensor:
    """Absolute positions [batch, seq_len] of this forward's tokens: column index + offset - row padding."""
    cols = torch.arange(offset, offset + seq_len, device=pad.device)
    return cols.unsqueeze(0) - pad.unsqueeze(1)


def prompt_lengths(prompt_len: PromptLen, batch: int, device: torch.device | str = "cpu") -> Tensor:
    """`prompt_len` as a LongTensor [batch]; checks it has one entry per row and every entry is >= 1."""
    lengths = torch.as_tensor(prompt_len, dtype=torch.long, device=device)
    if lengths.ndim == 0:
        lengths = lengths.expand(batch)
    if lengths.ndim != 1 or lengths.shape[0] != batch:
        raise VulnsteerError(
            f"prompt_len has {tuple(lengths.shape)} entries but the batch has {batch} rows; "
            "pass an int or one length per row"
        )
    if bool((lengths < 1).any()):
        raise VulnsteerError(f"prompt_len must be >= 1, got {lengths.tolist()}")
    return lengths


def spans(span: Span, batch: int, device: torch.device | str = "cpu") -> Tensor:
    """`span` as a LongTensor [batch, 2] of (start, end); checks one pair per row and 0 <= start < end."""
    pairs = torch.as_tensor(span, dtype=torch.long, device=device)
    if pairs.ndim == 1 and pairs.shape[0] == 2:
        pairs = pairs.unsqueeze(0).expand(batch, 2)
    if pairs.ndim != 2 or pairs.shape != (batch, 2):
        raise VulnsteerError(f"span has shape {tuple(pairs.shape)} but the batch has {batch} rows; "
                             "pass one (start, end) or one per row")
    if bool((pairs[:, 0] < 0).any()) or bool((pairs[:, 1] <= pairs[:, 0]).any()):
        raise VulnsteerError(f"span must satisfy 0 <= start < end, got {pairs.tolist()}")
    return pairs


def scope_mask(scope: Scope | str, positions: Tensor, prompt_len: Tensor, span: Tensor | None = None) -> Tensor:
    """Bool [batch, seq]: which positions `scope` steers, given absolute positions and per-row prompt lengths
    (and, for the span scope, per-row (start, end) pairs [batch, 2] from `spans`)."""
    scope = Scope(scope)
    limit = prompt_len.to(positions.device).unsqueeze(1)
    if scope is Scope.ALL:
        return torch.ones_like(positions, dtype=torch.bool)
    if scope is Scope.SPAN:
        if span is None:
            raise VulnsteerError("scope 'span' needs span=(start, end): the token range to steer")
        pairs = span.to(positions.device)
        return (positions >= pairs[:, :1]) & (positions < pairs[:, 1:])
    if scope is Scope.PROMPT:
        return (positions >= 0) & (positions < limit)
    if scope is Scope.ANSWER:
        return positions == limit - 1
    return positions >= limit  # Scope.GENERATED


def steer_hidden(h: Tensor, interventions: Sequence[Intervention], mask: Tensor | None) -> Tensor:
    """`h` [batch, seq, d] with `interventions` applied in order where `mask` [batch, seq] is True (None: all)."""
    steered = h
    for iv in interventions:
        steered = apply(steered, iv)
    if mask is None:
        return steered
    return torch.where(mask.unsqueeze(-1), steered, h)


def group_by_layer(model: nn.Module, interventions: Sequence[Intervention]) -> dict[int, list[Intervention]]:
    """Interventions per block index, in the order given; checks layer range and width against `model`."""
    parts = model_parts(model)
    grouped: dict[int, list[Intervention]] = {}
    for iv in interventions:
        if not isinstance(iv, Intervention):
            raise VulnsteerError(f"expected an Intervention, got {type(iv).__name__}")
        if iv.layer >= parts.n_layers:
            raise ModelError(f"steering layer {iv.layer} out of range: the model has {parts.n_layers} blocks (0-based)")
        if iv.d_model != parts.d_model:
            raise ModelError(f"direction for layer {iv.layer} has d={iv.d_model} but the model has d={parts.d_model}")
        grouped.setdefault(iv.layer, []).append(iv)
    return dict(sorted(grouped.items()))


@dataclass
class _ForwardState:
    """Where the current top-level forward's tokens sit; set by the model pre-hook, cleared after it."""

    active: bool = False
    offset: int = 0
    pad: Tensor | None = None  # [batch] left padding; None = no mask given (no padding)
    seq: int = 0  # tokens in this forward
    inferred: Tensor | None = None  # per-row prompt lengths read off the first forward without a cache


def _cache_offset(kwargs: dict[str, Any]) -> int:
    cache = kwargs.get("cache", kwargs.get("past_key_values"))
    if cache is None:
        return 0
    if not hasattr(cache, "get_seq_length"):
        raise ModelError(f"cannot read the token offset from a cache of type {type(cache).__name__}; pass a Cache")
    return int(cache.get_seq_length())


def _pre_hook(state: _ForwardState):
    def hook(_module: nn.Module, _args: tuple, kwargs: dict[str, Any]) -> None:
        mask = kwargs.get("attention_mask")
        if mask is not None and (not isinstance(mask, Tensor) or mask.ndim != 2):
            raise ModelError("scoped steering needs a 2-D attention_mask [batch, seq] (or none); got another form")
        state.offset = _cache_offset(kwargs)
        state.pad = None if mask is None else left_padding(mask)
        ids = kwargs.get("input_ids", _args[0] if _args else None)
        if ids is None:
            ids = kwargs.get("inputs_embeds")
        state.seq = int(ids.shape[1]) if isinstance(ids, Tensor) and ids.ndim >= 2 else 0
        if state.offset == 0 and state.seq:
            # The prompt: with left padding each row's real tokens end at the last column.
            pad = state.pad if state.pad is not None else torch.zeros(1, dtype=torch.long)
            state.inferred = state.seq - pad
        state.active = True

    return hook


def _post_hook(state: _ForwardState):
    def hook(_module: nn.Module, _args: tuple, _output: Any) -> None:
        state.active = False
        state.pad = None

    return hook


def _block_hook(interventions: list[Intervention], scope: Scope, prompt_len: PromptLen | None, span: Span | None,
                state: _ForwardState):
    def hook(_module: nn.Module, _args: tuple, output: Any) -> Any:
        h = block_hidden(output)
        if scope is Scope.ALL:
            return with_block_hidden(output, steer_hidden(h, interventions, None))
        if not state.active:
            raise VulnsteerError(
                f"scope {scope.value!r} needs the model called through its top-level forward (model(...) or model.generate)"
            )
        batch, seq = h.shape[0], h.shape[1]
        pad = state.pad if state.pad is not None else torch.zeros(batch, dtype=torch.long)
        pad = pad.to(h.device)
        if pad.shape[0] != batch:
            raise VulnsteerError(f"attention_mask has {pad.shape[0]} rows but the block saw {batch}")
        positions = token_positions(seq, state.offset, pad)
        lengths = prompt_len if prompt_len is not None else state.inferred
        if lengths is None:
            raise VulnsteerError(f"scope {scope.value!r}: no prompt_len given and no prompt forward seen; pass prompt_len")
        pairs = None if span is None else spans(span, batch, h.device)
        mask = scope_mask(scope, positions, prompt_lengths(lengths, batch, h.device), pairs)
        if not bool(mask.any()):
            return None  # leave the output object untouched
        return with_block_hidden(output, steer_hidden(h, interventions, mask))

    return hook


@contextmanager
def steer(
    model: nn.Module,
    interventions: Sequence[Intervention],
    scope: Scope | str = Scope.ALL,
    prompt_len: PromptLen | None = None,
    span: Span | None = None,
) -> Iterator[None]:
    """Steer `model` inside the block; the model is exactly restored on exit, also after an exception.

    Several interventions on one layer apply in the order given. `prompt_len`: see the module docstring;
    None reads it off the first forward without a KV cache (the prompt, as in `generate`), assuming left
    padding. `span`: the (start, end) token range the "span" scope steers, one pair or one per row.
    Nested `steer` blocks on one layer: the innermost acts first (each prepends its hook).
    """
    scope = Scope(scope)  # text from a caller outside vulnsteer: checked and converted once, here
    if (scope is Scope.SPAN) != (span is not None):
        raise VulnsteerError("span=(start, end) goes with scope 'span', and scope 'span' needs it")
    by_layer = group_by_layer(model, interventions)
    blocks = model_parts(model).blocks
    state = _ForwardState()
    handles = []
    try:
        if scope is not Scope.ALL:
            handles.append(model.register_forward_pre_hook(_pre_hook(state), with_kwargs=True))
            handles.append(model.register_forward_hook(_post_hook(state), always_call=True))
        for layer, ivs in by_layer.items():
            hook = _block_hook(ivs, scope, prompt_len, span, state)
            handles.append(blocks[layer].register_forward_hook(hook, prepend=True))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def capture_residuals(model: nn.Module, layers: Sequence[int]) -> Iterator[dict[int, list[Tensor]]]:
    """Record each listed block's output residual [batch, seq, d], one tensor per forward (detached copies).

    Runs after the steering hooks, so under `steer` it records the steered residual. In `generate` each
    decoding step appends its own [batch, new_tokens, d] tensor.
    """
    blocks = model_parts(model).blocks
    for layer in layers:
        if not 0 <= layer < len(blocks):
            raise ModelError(f"capture layer {layer} out of range: the model has {len(blocks)} blocks (0-based)")
    captured: dict[int, list[Tensor]] = {layer: [] for layer in layers}

    def make(layer: int):
        def hook(_module: nn.Module, _args: tuple, output: Any) -> None:
            # clone: a later hook editing the output in place must not change what we recorded
            captured[layer].append(block_hidden(output).detach().clone())

        return hook

    handles = [blocks[layer].register_forward_hook(make(layer)) for layer in captured]
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()
