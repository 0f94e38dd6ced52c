"""Multi-token greedy generation of the model's answer, batched with left padding.

Decoding one token is a matrix-vector product per weight matrix; batching prompts turns it into a
matrix-matrix product that reuses each weight load, which is what makes 256-token answers affordable
on a CPU (prefill gains nothing from batching there, decoding does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from vulnsteer.progress import progress_bar


@dataclass(frozen=True)
class Generation:
    text: str  # decoded new tokens, special tokens removed
    n_new_tokens: int
    hit_limit: bool  # stopped by max_new_tokens rather than an end-of-turn token


def _eos_ids(model: nn.Module, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    ids: set[int] = set()
    cfg = getattr(model, "generation_config", None)
    for value in (getattr(cfg, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    for special in ("<|im_end|>", "<|endoftext|>", "<|end|>", "<|eot_id|>"):
        tid = tokenizer.convert_tokens_to_ids(special)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid is not None and tid >= 0:
            ids.add(tid)
    return sorted(ids)


@torch.inference_mode()
def generate_answers(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    max_new_tokens: int = 256,
    batch_size: int = 8,
    description: str = "generating",
    sort_by_length: bool = True,
) -> list[Generation]:
    """Greedy answers to `prompts` (already rendered, chat template included).

    sort_by_length=False keeps the caller's row order inside each batch, which per-row steering
    scopes (prompt lengths given row by row) rely on.
    """
    eos = _eos_ids(model, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    results: list[Generation] = []
    # Similar lengths in one batch waste less padding; results are put back in the caller's order.
    order = list(range(len(prompts)))
    if sort_by_length:
        order.sort(key=lambda i: len(prompts[i]))
    by_index: dict[int, Generation] = {}
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        with progress_bar(description, total=len(prompts)) as advance:
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                enc = tokenizer(
                    [prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False
                )
                out = model.generate(
                    **enc, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=eos,
                    pad_token_id=pad_id, temperature=None, top_p=None, top_k=None,
                )
                new = out[:, enc["input_ids"].shape[1] :]
                for row, i in enumerate(idx):
                    tokens = new[row].tolist()
                    stop = next((k for k, t in enumerate(tokens) if t in eos), None)
                    kept = tokens if stop is None else tokens[:stop]
                    by_index[i] = Generation(
                        text=tokenizer.decode(kept, skip_special_tokens=True).strip(),
                        n_new_tokens=len(kept),
                        hit_limit=stop is None and len(tokens) >= max_new_tokens,
                    )
                advance(len(idx))
    finally:
        tokenizer.padding_side = side
    results = [by_index[i] for i in range(len(prompts))]
    return results
