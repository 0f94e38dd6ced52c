"""Generated answers kept in the activation cache's folder (activations/cache.py `result_key`), so a rerun
reads them instead of decoding again: decoding is the costliest stage after the passes (256 tokens a file).

Key: the window's prompt key (model, template, exact prompt), the token budget, and the interventions that
steered the answer with their scope (none for an unsteered answer). Greedy decoding is deterministic, and
the two decoders (from cached prefixes, from the prompt) are tested equal token for token, so an answer is
the same whichever produced it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from vulnsteer.activations.cache import ActivationCache, result_key
from vulnsteer.evaluation.generation import Generation
from vulnsteer.vectors.operators import Intervention, fingerprint


def answer_key(prompt_key: str, max_new_tokens: int, ivs: Sequence[Intervention] = (), scope: str = "") -> str:
    return result_key("answer", prompt_key, str(max_new_tokens), scope, *fingerprint(ivs))


def stored_answers(
    cache: ActivationCache | None, keys: Sequence[str], compute: Callable[[list[int]], list[Generation]]
) -> list[Generation]:
    """The answer for each key: stored ones read, the rest from `compute(indices)` (in the order given) and
    stored. `compute` is not called when every answer is stored."""
    known: list[Generation | None] = [None] * len(keys)
    if cache is not None:
        for i, key in enumerate(keys):
            found = cache.result(key)
            if found is not None and "n" in found.tensors and found.tensors["n"].numel() == 2:
                n, limit = found.tensors["n"].tolist()
                known[i] = Generation(text=found.text, n_new_tokens=int(n), hit_limit=bool(limit))
    todo = [i for i, g in enumerate(known) if g is None]
    if todo:
        for i, g in zip(todo, compute(todo)):
            known[i] = g
            if cache is not None:
                cache.keep_result(keys[i], {"n": torch.tensor([g.n_new_tokens, int(g.hit_limit)])}, g.text)
    return [g for g in known if g is not None]
