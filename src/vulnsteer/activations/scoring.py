"""The answer score: log P(yes-words) - log P(no-words) at the answer position.

Only the yes/no rows of the unembedding are needed: the softmax normaliser cancels in the difference,
so scoring a steered configuration costs a handful of dot products instead of a full-vocabulary matmul.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class AnswerWords:
    """Token ids whose probabilities make up P(yes) and P(no); `rows` is yes_ids followed by no_ids."""

    yes_ids: tuple[int, ...]
    no_ids: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.yes_ids or not self.no_ids:
            raise ValueError("need at least one yes and one no token id")

    @property
    def rows(self) -> torch.Tensor:
        return torch.tensor([*self.yes_ids, *self.no_ids], dtype=torch.long)

    def score_rows(self, row_logits: torch.Tensor) -> torch.Tensor:
        """Scores from logits restricted to `rows` ([..., len(rows)])."""
        n_yes = len(self.yes_ids)
        return row_logits[..., :n_yes].logsumexp(-1) - row_logits[..., n_yes:].logsumexp(-1)

    def score(self, logits: torch.Tensor) -> torch.Tensor:
        """Scores from full-vocabulary logits ([..., vocab])."""
        return self.score_rows(logits[..., self.rows])


def verdict(score: float, threshold: float = 0.0) -> str:
    """'yes' when the score favours the yes-words, else 'no' (a NaN score gives 'unknown')."""
    if score != score:  # NaN
        return "unknown"
    return "yes" if score > threshold else "no"
