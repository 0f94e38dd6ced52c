"""Multi-token greedy generation of the model's answer, batched with left padding.

Decoding one token is a matrix-vector product per weight matrix; batching prompts turns it into a
matrix-matrix product that reuses each weight load, which is what makes 256-token answers affordable
on a CPU (prefill gains nothing from batching there, decoding does).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase, StoppingCriteria, StoppingCriteriaList
from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

from vulnsteer.activations.passes import PromptPass
from vulnsteer.model.precision import model_device
from vulnsteer.progress import progress_bar
from vulnsteer.vectors.hooks import steer
from vulnsteer.vectors.operators import Intervention


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
    model: PreTrainedModel,
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
    # A chat template writes its own BOS into the text; a plain-format prompt (no template, e.g. the Gemma 3
    # GGUF) needs the tokenizer's, as `prompting.samples` encodes it for the scored pass.
    add_special = not bool(getattr(tokenizer, "chat_template", None))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    # Similar lengths in one batch waste less padding; results are put back in the caller's order.
    order = list(range(len(prompts)))
    if sort_by_length:
        order.sort(key=lambda i: len(prompts[i]))
    by_index: dict[int, Generation] = {}
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        # counted in tokens, each decoding step as it happens (a batch's rows run until all stop)
        with progress_bar(description, total=len(prompts) * max_new_tokens, unit="tokens") as advance:
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                enc = tokenizer(
                    [prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=add_special
                ).to(model_device(model))
                tick = _Tick(advance, len(idx))
                out = model.generate(  # type: ignore[operator]  # transformers types generate via __getattr__
                    **enc, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=eos,
                    pad_token_id=pad_id, temperature=None, top_p=None, top_k=None,
                    stopping_criteria=StoppingCriteriaList([tick]),
                )
                new = out[:, enc["input_ids"].shape[1] :]
                for row, i in enumerate(idx):
                    by_index[i] = _finish(new[row].tolist(), set(eos), tokenizer, max_new_tokens)
                advance(len(idx) * max_new_tokens - tick.counted)  # the budget of rows that stopped early
    finally:
        tokenizer.padding_side = side
    return [by_index[i] for i in range(len(prompts))]


class _Tick(StoppingCriteria):
    """Counts each decoding step's tokens into the progress as `generate` runs it; never stops anything."""

    def __init__(self, advance: Callable[[int], None], rows: int) -> None:
        self.advance, self.rows, self.counted = advance, rows, 0

    def __call__(self, input_ids: torch.LongTensor, _scores: torch.FloatTensor, **_kwargs: object) -> torch.BoolTensor:
        self.advance(self.rows)
        self.counted += self.rows
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]


def _finish(tokens: list[int], eos: set[int], tokenizer: PreTrainedTokenizerBase, limit: int) -> Generation:
    stop = next((k for k, t in enumerate(tokens) if t in eos), None)
    kept = tokens if stop is None else tokens[:stop]
    text = str(tokenizer.decode(kept, skip_special_tokens=True))
    return Generation(text.strip(), len(kept), stop is None and len(tokens) >= limit)


def _merged_cache(states: Sequence[PromptPass]) -> tuple[DynamicCache, torch.Tensor]:
    """One left-padded batch cache from per-prompt prefix caches, and its 2-D attention mask.

    A sliding-window layer (Gemma 3's local attention) keeps only its last `window - 1` keys: each row's
    are right-aligned in the merged layer and its token count is the padded prefix length, which is the
    state a left-padded prefill by `generate` leaves behind.
    """
    snaps = [s.prefix_cache for s in states]
    lengths = [s.n_tokens - 1 for s in states]  # prefix tokens; a sliding layer may hold fewer keys
    width = max(lengths)
    layers: list[tuple[torch.Tensor, ...]] = []
    sliding: list[int] = []
    for index, template in enumerate(snaps[0].cache.layers):  # type: ignore[union-attr]
        rows = [snap.layer_states[index] for snap in snaps]  # type: ignore[union-attr]
        held = max(int(st["keys"].shape[2]) for st in rows)
        keys = [nn.functional.pad(st["keys"], (0, 0, held - st["keys"].shape[2], 0)) for st in rows]
        values = [nn.functional.pad(st["values"], (0, 0, held - st["values"].shape[2], 0)) for st in rows]
        if getattr(template, "is_sliding", False):
            sliding.append(index)
            layers.append((torch.cat(keys), torch.cat(values), torch.tensor(template.sliding_window)))
        else:
            layers.append((torch.cat(keys), torch.cat(values)))
    mask = torch.zeros(len(states), width, dtype=torch.long, device=layers[0][0].device)
    for row, n in enumerate(lengths):
        mask[row, width - n :] = 1
    cache = DynamicCache(ddp_cache_data=layers)
    for index in sliding:
        cache.layers[index].cumulative_length = width  # type: ignore[union-attr]  # tokens seen, not kept: positions the window mask
    return cache, mask


def can_decode_from_passes(states: Sequence[PromptPass | None]) -> bool:
    """Every prompt kept a plain per-layer KV cache (keys/values tensors) that batches can be merged from."""
    for st in states:
        if st is None or st.prefix_cache is None:
            return False
        if any(type(layer) not in (DynamicLayer, DynamicSlidingWindowLayer) for layer in st.prefix_cache.cache.layers):
            return False  # another cache layout (quantised, offloaded, linear attention): merge not written for it
        if any(not isinstance(ls.get("keys"), torch.Tensor) or ls["keys"].ndim != 4 for ls in st.prefix_cache.layer_states):
            return False
    return True


@torch.inference_mode()
def generate_from_passes(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    states: Sequence[PromptPass],
    input_ids: Sequence[torch.Tensor],
    max_new_tokens: int = 256,
    batch_size: int = 48,
    description: str = "generating",
    answer_interventions: Sequence[Intervention] = (),
) -> list[Generation]:
    """Greedy answers decoded on top of the prompts' cached prefixes (`run_samples(keep_states=True)`).

    `answer_interventions` steer the first decoding step only, whose single token per row is the last
    prompt token: that is the "answer" scope (the generated tokens then attend to its steered keys/values).

    Equal to `generate_answers` token for token (tested), but with no prompt re-encoding, no padding
    compute in the prompt, and finished rows dropped from the batch as they stop, so one wide batch
    decodes every prompt: wide matrix products are what a CPU runs efficiently.
    """
    eos = set(_eos_ids(model, tokenizer))
    order = sorted(range(len(states)), key=lambda i: int(input_ids[i].shape[1]))
    out: dict[int, Generation] = {}
    # counted in tokens (a row that stops early counts its unused budget then): a batch of rows that all run
    # to the limit would otherwise show 0 done until its very end
    with progress_bar(description, total=len(states) * max_new_tokens, unit="tokens") as advance:
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            cache, mask = _merged_cache([states[i] for i in rows])
            device = mask.device  # the model's: the cached keys live there
            token = torch.stack([input_ids[i][0, -1] for i in rows])[:, None].to(device)  # the last prompt token
            position = torch.tensor([int(input_ids[i].shape[1]) - 1 for i in rows], device=device)[:, None]
            active = list(rows)
            produced: dict[int, list[int]] = {i: [] for i in rows}
            for _step in range(max_new_tokens):
                mask = torch.cat([mask, torch.ones(len(active), 1, dtype=mask.dtype)], dim=1)
                with steer(model, answer_interventions if _step == 0 else [], scope="all"):
                    logits = model(input_ids=token, attention_mask=mask, position_ids=position, cache=cache,
                                   use_cache=True, logits_to_keep=1).logits[:, -1]
                nxt = logits.argmax(-1)
                for i, t in zip(active, nxt.tolist()):
                    produced[i].append(t)
                advance(len(active))
                keep = [k for k, t in enumerate(nxt.tolist()) if t not in eos]
                for k in sorted(set(range(len(active))) - set(keep)):
                    out[active[k]] = _finish(produced[active[k]], eos, tokenizer, max_new_tokens)
                    advance(max_new_tokens - _step - 1)
                if not keep:
                    break
                if len(keep) < len(active):  # drop finished rows: the batch only ever shrinks
                    idx = torch.tensor(keep, device=device)
                    cache.batch_select_indices(idx)
                    mask, nxt, position = mask[idx], nxt[idx], position[idx]
                    active = [active[k] for k in keep]
                token, position = nxt[:, None], position + 1
            for i in active:
                if i not in out:
                    out[i] = _finish(produced[i], eos, tokenizer, max_new_tokens)
    return [out[i] for i in range(len(states))]
