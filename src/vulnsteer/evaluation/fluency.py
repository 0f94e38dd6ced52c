"""What steering costs the model as a language model: next-token NLL on held-out code, steered vs not.

Steering that improves a yes/no answer by wrecking the model's grip on code is not a finding; this is
the number that shows it. The steering applies at every position (scope "all"), the harshest case.
`code_nll_many` measures several single-layer interventions from one recorded pass, re-entering each at
its layer (blocks below it are not recomputed).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from vulnsteer.model.parts import ModelParts
from vulnsteer.model.precision import model_device
from vulnsteer.steering.block_reentry import record_full, reenter_hidden
from vulnsteer.vectors.hooks import steer
from vulnsteer.vectors.operators import Intervention, apply


@torch.inference_mode()
def code_nll_many(
    model: nn.Module,
    parts: ModelParts,
    tokenizer: PreTrainedTokenizerBase,
    code: str,
    interventions: Sequence[Intervention],
    max_tokens: int = 512,
) -> list[float]:
    """[unsteered NLL, then one NLL per single-layer intervention] of `code`, every position steered."""
    ids = tokenizer(code, return_tensors="pt", add_special_tokens=False)["input_ids"][:, :max_tokens]
    if ids.shape[1] < 2:
        raise ValueError("code too short to measure next-token NLL")
    targets = ids[0, 1:].to(model_device(model))
    if not parts.reentry_exact:  # one full steered forward each (`ModelParts.reentry_exact`)
        out = []
        for ivs in ([], *([iv] for iv in interventions)):
            with steer(model, ivs, scope="all"):
                logits = model(input_ids=ids.to(model_device(model)), use_cache=False).logits[0, :-1].float()
            out.append(float(nn.functional.cross_entropy(logits, targets)))
        return out
    rec = record_full(model, parts, ids)

    def nll(hidden: torch.Tensor) -> float:
        logits = parts.unembed(parts.final_norm(hidden[0, :-1])).float()
        return float(nn.functional.cross_entropy(logits, targets))

    out = [nll(rec.calls[-1].output)]  # type: ignore[union-attr]
    for iv in interventions:
        def edit(_layer: int, h: torch.Tensor, iv: Intervention = iv) -> torch.Tensor:
            return apply(h, iv)

        out.append(nll(reenter_hidden(parts, rec, [iv.layer], edit)))
    return out
