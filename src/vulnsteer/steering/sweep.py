"""Score many interventions of one layer on one prompt in a single batched re-entry (answer scope).

The prompt's prefix is never recomputed: each row re-runs only the blocks after the steered layer, for
the answer token, on top of the cached prefix; all rows of a layer share one batched re-entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from vulnsteer.activations.passes import PromptPass
from vulnsteer.evaluation.scoring import AnswerWords
from vulnsteer.model.architecture import ModelParts
from vulnsteer.steering.operators import Intervention, apply
from vulnsteer.steering.resume import resume_answer
from vulnsteer.vectors.training import Direction

MAX_ROWS = 64  # rows per batched re-entry; bounds memory for long prompts


@dataclass(frozen=True)
class Setting:
    """How a direction is applied: operator and strength (additive strengths are in units of sigma)."""

    operator: str
    alpha: float

    def key(self) -> str:
        return f"{self.operator}:{self.alpha:g}"


def intervention(direction: Direction, setting: Setting) -> Intervention:
    if setting.operator == "add":
        return Intervention(direction.layer, "add", direction.u * direction.sigma, setting.alpha)
    if setting.operator == "amplify":
        return Intervention(direction.layer, "amplify", direction.u, setting.alpha, direction.mu)
    if setting.operator == "ablate":
        return Intervention(direction.layer, "ablate", direction.u, 1.0, direction.mu)
    raise ValueError(f"unknown operator {setting.operator!r}")


def score_rows(
    parts: ModelParts,
    state: PromptPass,
    interventions: Sequence[Intervention],
    words: AnswerWords,
    full_vocab: bool = False,
) -> torch.Tensor:
    """Answer scores [R] (or full logits [R, vocab]) for each single-layer intervention, same layer each."""
    layers = {iv.layer for iv in interventions}
    if len(layers) != 1:
        raise ValueError("score_rows takes interventions of one layer; group them by layer first")
    layer = layers.pop()
    outs = []
    for start in range(0, len(interventions), MAX_ROWS):
        chunk = interventions[start : start + MAX_ROWS]

        def edit(_layer: int, h: torch.Tensor, chunk: Sequence[Intervention] = chunk) -> torch.Tensor:
            return torch.cat([apply(h, iv) for iv in chunk])

        logits = resume_answer(parts, state, [layer], edit, None if full_vocab else words.rows)
        outs.append(logits if full_vocab else words.score_rows(logits))
    return torch.cat(outs)
