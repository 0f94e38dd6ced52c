"""One unsteered pass over a prompt that yields everything later stages need.

A single pass gives (1) the next-token logits at the answer position (the last prompt token),
(2) the residual stream after every block at that position, averaged over the code's tokens and at the
code's last token, and
(3) a resumable record of the answer token's trip through the stack on top of the prompt's KV cache,
so a steered evaluation at the answer position recomputes only the blocks after the steered layer for
one token instead of the whole prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vulnsteer.activations.recorder import Recording, record_blocks
from vulnsteer.errors import ModelError
from vulnsteer.model.parts import ModelParts
from vulnsteer.model.precision import model_device


@dataclass
class CacheSnapshot:
    """The per-layer state of a transformers KV cache, restorable after a forward appended to it.

    DynamicLayer.update rebinds its tensors (torch.cat) rather than writing in place, so keeping the
    attribute dicts is enough to undo an append exactly and at no copy cost.
    """

    cache: Any
    layer_states: list[dict[str, Any]]

    @classmethod
    def take(cls, cache: Any) -> "CacheSnapshot":
        return cls(cache=cache, layer_states=[dict(vars(layer)) for layer in cache.layers])

    def restore(self) -> None:
        for index in range(len(self.layer_states)):
            self.restore_layer(index)

    def restore_layer(self, index: int) -> None:
        layer = self.cache.layers[index]
        layer.__dict__.clear()
        layer.__dict__.update(self.layer_states[index])

    def broadcast_layer(self, index: int, batch: int) -> None:
        """Let layer `index` serve `batch` rows that share this prefix (expand is a view, no copy)."""
        layer = self.cache.layers[index]
        for name in ("keys", "values"):
            tensor = self.layer_states[index].get(name)
            if isinstance(tensor, torch.Tensor) and tensor.ndim == 4 and tensor.shape[0] == 1:
                setattr(layer, name, tensor.expand(batch, *tensor.shape[1:]))


@dataclass
class PromptPass:
    """Result of `run_prompt`: unsteered answer logits, residuals, and the resumable answer-token state."""

    n_tokens: int
    answer_logits: torch.Tensor  # [vocab] at the last prompt token; float32 on the CPU, like the two below
    answer_residuals: torch.Tensor  # [n_layers + 1, d]: block-0 input, then each block's output
    span_mean: torch.Tensor | None  # [n_layers + 1, d] mean over the span's tokens, if a span was given
    span_last: torch.Tensor | None  # [n_layers + 1, d] at the span's last token, if a span was given
    answer_recording: Recording | None  # the last token's block calls (model dtype and device), for re-entry
    prefix_cache: CacheSnapshot | None  # KV cache of all tokens but the last (model dtype and device)


def _residual_stack(residuals: list[torch.Tensor], position: int) -> torch.Tensor:
    """Stored residuals are float32 on the CPU whatever the model computes in (means, PCA, probes use them)."""
    return torch.stack([r[0, position] for r in residuals]).float().cpu()


def _span_readouts(
    residuals: list[torch.Tensor], span: tuple[int, int] | None, n: int
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Mean over the span and its last token, from [1, T, d] residuals of (at least) the prefix.

    The span is clipped to the prefix (the tokens before the answer position), the tokens both passes record."""
    if span is None:
        return None, None
    start, end = max(span[0], 0), min(span[1], n - 1)
    if end <= start:
        return None, None
    mean = torch.stack([r[0, start:end].float().mean(0) for r in residuals]).cpu()
    return mean, _residual_stack(residuals, end - 1)


def check_finite(logits: torch.Tensor, model: nn.Module) -> None:
    """NaN/inf logits mean broken weights or an overflowing precision: stop rather than score garbage."""
    if not bool(torch.isfinite(logits).all()):
        name = getattr(getattr(model, "config", None), "name_or_path", "") or type(model).__name__
        raise ModelError(
            f"model {name} produced non-finite logits (NaN or inf); its weights may be corrupted, or try --dtype float32"
        )


@torch.inference_mode()
def run_prompt(
    model: nn.Module,
    parts: ModelParts,
    input_ids: torch.Tensor,
    span: tuple[int, int] | None = None,
    keep_reentry: bool = True,
) -> PromptPass:
    """Run the prompt `input_ids` ([1, T]) once: prefix with a KV cache, then the answer token on top.

    `span` = (start, end) token indices (end exclusive) to average residuals over, e.g. the code.
    With keep_reentry=False the KV cache and the block calls are dropped once read (extraction only).
    Where re-entry is not exact for the model (`parts.reentry_exact`), the prompt runs as one full forward
    and nothing resumable is kept: callers then steer with full forwards.
    """
    if input_ids.ndim != 2 or input_ids.shape[0] != 1:
        raise ValueError("run_prompt takes one prompt of shape [1, T]")
    if not parts.reentry_exact:
        return _full_pass(model, parts, input_ids, span)
    n = int(input_ids.shape[1])
    input_ids = input_ids.to(model_device(model))
    span_mean = span_last = None
    cache = None
    if n > 1:
        with record_blocks(parts, keep_calls=False) as prefix_rec:
            out = model(input_ids=input_ids[:, :-1], use_cache=True, logits_to_keep=1)
        cache = out.cache if hasattr(out, "cache") else out.past_key_values
        span_mean, span_last = _span_readouts(prefix_rec.residuals(), span, n)
        del prefix_rec
    snapshot = CacheSnapshot.take(cache) if cache is not None else None
    with record_blocks(parts, keep_calls=keep_reentry) as rec:
        out = model(input_ids=input_ids[:, -1:], cache=cache, use_cache=True, logits_to_keep=1)
    if snapshot is not None:
        snapshot.restore()
    answer_logits = out.logits[0, -1].float()
    check_finite(answer_logits, model)
    return PromptPass(
        n_tokens=n,
        answer_logits=answer_logits.cpu(),
        answer_residuals=_residual_stack(rec.residuals(), -1),
        span_mean=span_mean,
        span_last=span_last,
        answer_recording=rec if keep_reentry else None,
        prefix_cache=snapshot if keep_reentry else None,
    )


def _full_pass(model: nn.Module, parts: ModelParts, input_ids: torch.Tensor, span: tuple[int, int] | None) -> PromptPass:
    """`run_prompt` without the prefix/answer split: one forward, no cache, nothing resumable."""
    n = int(input_ids.shape[1])
    with record_blocks(parts, keep_calls=False) as rec:
        out = model(input_ids=input_ids, use_cache=False, logits_to_keep=1)
    span_mean, span_last = _span_readouts(rec.residuals(), span, n)  # the same span run_prompt reads
    return PromptPass(n_tokens=n, answer_logits=out.logits[0, -1].float(), answer_residuals=_residual_stack(rec.residuals(), -1),
                      span_mean=span_mean, span_last=span_last, answer_recording=None, prefix_cache=None)
