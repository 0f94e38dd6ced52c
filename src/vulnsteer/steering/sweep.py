"""Score many interventions on one prompt by re-entering the block stack at the steered layer.

Answer scope: the prompt's prefix is never recomputed; each row re-runs only the blocks after its steered
layer, for the answer token, on top of the cached prefix. Every-position and code-span scopes re-run the
later blocks for the whole prompt from a full recording.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vulnsteer.activations.passes import PromptPass
from vulnsteer.activations.recorder import Recording
from vulnsteer.activations.scoring import AnswerWords
from vulnsteer.model.parts import ModelParts
from vulnsteer.model.precision import model_device
from vulnsteer.options import Scope
from vulnsteer.steering.block_reentry import reenter_logits
from vulnsteer.vectors.hooks import steer
from vulnsteer.vectors.operators import Intervention, apply


def score_interventions(
    parts: ModelParts,
    state: PromptPass,
    interventions: Sequence[Intervention],
    words: AnswerWords,
    full_vocab: bool = False,
) -> torch.Tensor:
    """Answer scores [R] (or full logits [R, vocab]) of single-layer interventions, in the order given.

    One pass up the stack serves every layer: rows steered at an earlier layer travel on as a batch, and
    each steered layer appends its new rows (edits of the recorded unsteered output there). Block j then
    runs once for all rows steered below it, so the matrix products are wide enough to be compute-bound.
    """
    if not interventions:
        return torch.empty(0)
    rec = state.answer_recording
    if rec is None or state.prefix_cache is None:
        raise ValueError("this PromptPass was run with keep_reentry=False")
    by_layer: dict[int, list[int]] = {}
    for k, iv in enumerate(interventions):
        by_layer.setdefault(iv.layer, []).append(k)
    layers = sorted(by_layer)
    order = [k for layer in layers for k in by_layer[layer]]

    def edit(layer: int, hidden: torch.Tensor) -> torch.Tensor:
        call = rec.calls[layer]
        assert call is not None
        base = call.output
        new = torch.cat([apply(base, interventions[k]) for k in by_layer[layer]])
        return new if layer == layers[0] else torch.cat([hidden, new])

    logits = reenter_logits(parts, rec, layers, edit, state.prefix_cache, None if full_vocab else words.rows)
    out = logits if full_vocab else words.score_rows(logits)
    result = torch.empty_like(out)
    result[torch.tensor(order)] = out
    return result


def score_interventions_all_positions(
    parts: ModelParts,
    recording: Recording,
    interventions: Sequence[Intervention],
    words: AnswerWords,
    full_vocab: bool = False,
    chunk: int = 8,
    span: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Like `score_interventions`, with every prompt position steered ("all" scope), or only the positions
    start <= p < end of `span` ("span" scope, e.g. the code's tokens); the answer is read at the last position.

    `recording` is an unsteered full-prompt pass (`block_reentry.record_full`); each intervention re-enters it at
    its own block for the whole prompt. Rows run `chunk` at a time: each carries the full sequence.
    """
    mask = None
    if span is not None:
        first = recording.calls[0]
        assert first is not None
        seq = first.output.shape[1]
        mask = torch.zeros(seq, 1, dtype=torch.bool, device=first.output.device)
        mask[span[0]:span[1]] = True
    out: list[torch.Tensor | None] = [None] * len(interventions)
    for start in range(0, len(interventions), chunk):
        part = list(range(start, min(start + chunk, len(interventions))))
        by_layer: dict[int, list[int]] = {}
        for k in part:
            by_layer.setdefault(interventions[k].layer, []).append(k)
        for layer, ks in by_layer.items():

            def edit(_layer: int, h: torch.Tensor, ks: list[int] = ks) -> torch.Tensor:
                rows = torch.cat([apply(h, interventions[k]) for k in ks])
                return rows if mask is None else torch.where(mask, rows, h)

            logits = reenter_logits(parts, recording, [layer], edit, None, None if full_vocab else words.rows)
            rows = logits if full_vocab else words.score_rows(logits)
            for k, row in zip(ks, rows):
                out[k] = row
    return torch.stack([o for o in out if o is not None])


@torch.inference_mode()
def score_full_forwards(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    interventions: Sequence[Intervention],
    words: AnswerWords,
    scope: Scope | str = Scope.ANSWER,
    full_vocab: bool = False,
    span: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Like `score_interventions`, by one full steered forward per intervention in a `vectors.hooks` scope
    (`span` for the "span" scope): the fallback for models where re-entry is not exact
    (`ModelParts.reentry_exact`, checked at load), and the reference the fast paths are tested against."""
    rows = []
    for iv in interventions:
        with steer(model, [iv], scope=scope, prompt_len=int(input_ids.shape[1]), span=span):
            ids = input_ids.to(model_device(model))
            logits = model(input_ids=ids, use_cache=False, logits_to_keep=1).logits[0, -1].float().cpu()
        rows.append(logits if full_vocab else words.score(logits))
    return torch.stack(rows) if rows else torch.empty(0)
