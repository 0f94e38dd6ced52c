"""What steering costs the model as a language model: next-token NLL on held-out code, steered vs not.

Steering that improves a yes/no answer by wrecking the model's grip on code is not a finding; this is
the number that shows it. The steering applies at every position (scope "all"), the harshest case.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from vulnsteer.steering.hooks import steer
from vulnsteer.steering.operators import Intervention


@torch.inference_mode()
def code_nll(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    code: str,
    interventions: Sequence[Intervention] = (),
    max_tokens: int = 512,
) -> float:
    """Mean next-token negative log-likelihood (nats) of `code`, optionally steered at every position."""
    ids = tokenizer(code, return_tensors="pt", add_special_tokens=False)["input_ids"][:, :max_tokens]
    if ids.shape[1] < 2:
        raise ValueError("code too short to measure next-token NLL")
    with steer(model, list(interventions), scope="all"):
        logits = model(input_ids=ids, use_cache=False).logits[0, :-1].float()
    return float(nn.functional.cross_entropy(logits, ids[0, 1:]))
