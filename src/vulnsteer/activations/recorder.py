"""Forward hooks that record what every decoder block received and returned during one forward.

Recording the exact call (args and kwargs: masks, rotary embeddings, cache, positions) lets a later
computation re-enter the stack at any block with a modified residual and get the same result the full
model would, for any architecture, without re-implementing its forward.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from vulnsteer.model.parts import ModelParts, block_hidden


@dataclass
class BlockCall:
    """One block invocation: positional args (hidden first) and kwargs, plus the hidden it returned."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    output: torch.Tensor  # [batch, seq, d] residual after the block


@dataclass
class Recording:
    """The residual entering block 0 and every block call of the most recent forward."""

    embeddings: torch.Tensor | None = None
    calls: list[BlockCall | None] = field(default_factory=list)

    def residuals(self) -> list[torch.Tensor]:
        """[embeddings, block_0 out, ..., block_{L-1} out], each [batch, seq, d]."""
        assert self.embeddings is not None, "no forward was recorded"
        outs = []
        for call in self.calls:
            assert call is not None, "a block did not run during the recorded forward"
            outs.append(call.output)
        return [self.embeddings, *outs]


def hidden_arg(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor:
    """The residual stream passed to a block, positionally or as `hidden_states=`."""
    return args[0] if args else kwargs["hidden_states"]


def call_with_hidden(block: nn.Module, call: BlockCall, hidden: torch.Tensor) -> torch.Tensor:
    """Re-run `block` exactly as recorded but on `hidden`; returns the new residual."""
    if call.args:
        out = block(hidden, *call.args[1:], **call.kwargs)
    else:
        out = block(**{**call.kwargs, "hidden_states": hidden})
    return block_hidden(out)


@contextmanager
def record_blocks(parts: ModelParts, keep_calls: bool = True) -> Iterator[Recording]:
    """Record the residual entering block 0 and every block's inputs/outputs while the context is open.

    With keep_calls=False only outputs are kept (args/kwargs dropped), for plain activation extraction.
    """
    rec = Recording(calls=[None] * parts.n_layers)
    pending: dict[int, tuple[tuple[Any, ...], dict[str, Any]]] = {}
    handles: list[torch.utils.hooks.RemovableHandle] = []

    def make_pre(i: int):
        def pre(_m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if i == 0:
                # The input of block 0, not the token embedding's output: GPT-2 adds position embeddings
                # and Gemma scales after the embedding module, so only this is the true residual start.
                rec.embeddings = hidden_arg(args, kwargs).detach()
            if keep_calls:
                pending[i] = (args, dict(kwargs))

        return pre

    def make_post(i: int):
        def post(_m: nn.Module, _args: Any, _kwargs: Any, out: Any) -> None:
            args, kwargs = pending.pop(i, ((), {}))
            rec.calls[i] = BlockCall(args=args, kwargs=kwargs, output=block_hidden(out).detach())

        return post

    for i, block in enumerate(parts.blocks):
        handles.append(block.register_forward_pre_hook(make_pre(i), with_kwargs=True))
        handles.append(block.register_forward_hook(make_post(i), with_kwargs=True))
    try:
        yield rec
    finally:
        for h in handles:
            h.remove()
