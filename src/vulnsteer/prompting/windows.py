"""A file read in several windows (the "windows" long-file policy, data/fitting.py): the prompt of each window,
and how the per-window readings become one reading per file.

A file that fits is one window, and every pooling below returns its single reading unchanged, so short files
score exactly as they would without windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch

from vulnsteer.data.fitting import CodeWindow
from vulnsteer.evaluation.generation import Generation
from vulnsteer.evaluation.parser import parse_answer

T = TypeVar("T")


@dataclass
class PromptWindow:
    """One window of a record's code rendered into the template: the exact text and tokens the model sees."""

    prompt: str
    input_ids: torch.Tensor  # [1, T]
    code_span: tuple[int, int] | None  # token range of the code inside the prompt
    code: CodeWindow  # which lines of the file, and the code as shown


def pool_scores(per_window: torch.Tensor) -> torch.Tensor:
    """Answer scores (log P(yes) - log P(no)) [n_windows, ...] -> [...]: the maximum over windows.

    A file is vulnerable if any part of it is, so a window that reads "yes" flags the file even when the
    others look clean; a mean would dilute a bug in one function by the clean rest of the file, the more so
    the longer the file. Steered scores are pooled the same way, so steered and unsteered stay comparable."""
    return per_window.amax(0)


def pool_readouts(per_window: torch.Tensor) -> torch.Tensor:
    """Residual readouts [n_windows, ...] -> [...]: the mean over windows. Every readout pools so (the answer
    position's residuals, the code's span mean and its last token, whichever `--readout` names).

    Probes and steering directions read the file's representation as a whole; the mean keeps the scale of a
    one-window file's residual, which a per-coordinate maximum would not."""
    return per_window.mean(0)


def pool_verdicts(verdicts: Sequence[str]) -> str:
    """Generated verdicts of a file's windows -> one: "yes" if any window says yes (as the score's max),
    "no" if every window says no, else "unknown"."""
    if "yes" in verdicts:
        return "yes"
    return "no" if verdicts and all(v == "no" for v in verdicts) else "unknown"


@dataclass(frozen=True)
class FileAnswer:
    """A file's generated answer, pooled over its windows."""

    text: str  # the windows' answers, each under a visible header when there are several
    verdict: str  # yes / no / unknown, pooled by `pool_verdicts`
    n_new_tokens: int  # summed over windows
    hit_limit: bool  # some window stopped at max_new_tokens


def window_header(code: CodeWindow, k: int, n: int) -> str:
    """The separator line above window `k` (0-based) of `n` in a joined answer."""
    lo, hi = code.line_range
    return f"===== window {k + 1} of {n} (lines {lo}-{hi}) ====="


def pool_generations(generations: Sequence[Generation], windows: Sequence[PromptWindow]) -> FileAnswer:
    """One file's answer from its windows' generations (in window order)."""
    if len(generations) != len(windows) or not windows:
        raise ValueError(f"{len(generations)} generations for {len(windows)} windows")
    if len(windows) == 1:
        text = generations[0].text
    else:
        text = "\n\n".join(f"{window_header(w.code, k, len(windows))}\n{g.text}"
                           for k, (g, w) in enumerate(zip(generations, windows)))
    return FileAnswer(text, pool_verdicts([parse_answer(g.text) for g in generations]),
                      sum(g.n_new_tokens for g in generations), any(g.hit_limit for g in generations))


def flatten(groups: Sequence[Sequence[T]]) -> tuple[list[T], list[int]]:
    """Per-file lists (windows, their passes) -> one list in file order, and each file's count."""
    return [x for g in groups for x in g], [len(g) for g in groups]


def regroup(items: Sequence[T], sizes: Sequence[int]) -> list[list[T]]:
    """The inverse of `flatten`: results of the flat list back into per-file lists."""
    if sum(sizes) != len(items):
        raise ValueError(f"{len(items)} items for groups of {sum(sizes)}")
    out, start = [], 0
    for n in sizes:
        out.append(list(items[start:start + n]))
        start += n
    return out
