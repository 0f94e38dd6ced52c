"""Steered answer scores of one sample in the steering experiment: every window of the sample steered alike,
then pooled as its unsteered score is (prompting/windows.py), so steered and unsteered stay comparable.
In the code scope each window is steered on its own code's tokens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from vulnsteer.activations.cache import result_key
from vulnsteer.activations.recorder import Recording
from vulnsteer.activations.scoring import AnswerWords
from vulnsteer.errors import DataError
from vulnsteer.model.parts import ModelParts
from vulnsteer.options import SweepScope
from vulnsteer.prompting.samples import Sample, SampleSet
from vulnsteer.prompting.windows import pool_scores
from vulnsteer.steering.block_reentry import record_full
from vulnsteer.steering.sweep import score_full_forwards, score_interventions, score_interventions_all_positions
from vulnsteer.vectors.operators import Intervention, fingerprint


def code_spans(sample: Sample) -> list[tuple[int, int]]:
    """The token range of each window's code (in window order), which the code scope steers; one-line error
    where one is unknown."""
    spans = []
    for w in sample.windows:
        if w.code_span is None:
            raise DataError(f"--scope code: no code token span for {sample.record.id} (the code was not found in "
                            "the prompt or the tokenizer has no offsets); use --scope answer or all")
        spans.append(w.code_span)
    return spans


@dataclass
class SampleScorer:
    """Scores interventions on sample i in the configured scope; a full-prompt recording of each window (code
    and all scopes) is kept for the sample last asked about (the test rows ask twice per sample). Full
    forwards where re-entry is not exact."""

    parts: ModelParts
    main: SampleSet
    words: AnswerWords
    scope: SweepScope
    model: nn.Module | None
    _last: tuple[int, list[Recording]] | None = None

    def __call__(self, i: int, ivs: list[Intervention]) -> torch.Tensor:
        """[len(ivs)] steered answer scores of sample i, the maximum over its windows."""
        return pool_scores(self._stored("scores", i, ivs, lambda: torch.stack(self._per_window(i, ivs))))

    def kls(self, i: int, ivs: list[Intervention]) -> torch.Tensor:
        """[n_windows, len(ivs) - 1]: per window of sample i, KL(row 0 || row k) of the whole next-token
        distribution at the answer, for each later intervention k (row 0: the reference, e.g. a no-op edit)."""
        return self._stored("kls", i, ivs, lambda: torch.stack([_kl(full.float().log_softmax(-1))
                                                                 for full in self._per_window(i, ivs, True)]))

    def _stored(self, kind: str, i: int, ivs: list[Intervention], compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """`compute()`, or what a run before stored for the same windows, scope and interventions (no pass
        runs then: prompting/pass_slots.py); stored for the next run."""
        cache, keys = self.main.results, self.main.keys
        if cache is None:
            return compute()
        key = result_key(kind, self.scope.value, *keys[i], *fingerprint(ivs))
        found = cache.result(key)
        if found is not None and kind in found.tensors:
            return found.tensors[kind]
        value = compute()
        cache.keep_result(key, {kind: value})
        return value

    def _per_window(self, i: int, ivs: list[Intervention], full_vocab: bool = False) -> list[torch.Tensor]:
        """One [len(ivs)] (or [len(ivs), vocab] with full_vocab) tensor per window of sample i."""
        sample = self.main.samples[i]
        windows = sample.windows
        spans: list[tuple[int, int] | None] = (
            list(code_spans(sample)) if self.scope is SweepScope.CODE else [None] * len(windows))
        if not self.parts.reentry_exact:
            assert self.model is not None, "full-forward scoring needs the model"
            return [score_full_forwards(self.model, w.input_ids, ivs, self.words, self.scope.hook_scope,
                                        full_vocab, span) for w, span in zip(windows, spans)]
        if self.scope is SweepScope.ANSWER:
            assert self.main.states is not None
            return [score_interventions(self.parts, st, ivs, self.words, full_vocab) for st in self.main.states[i]]
        if self._last is None or self._last[0] != i:
            assert self.model is not None, "the code and all scopes need the model"
            self._last = (i, [record_full(self.model, self.parts, w.input_ids) for w in windows])
        return [score_interventions_all_positions(self.parts, rec, ivs, self.words, full_vocab, span=span)
                for rec, span in zip(self._last[1], spans)]


def _kl(logp: torch.Tensor) -> torch.Tensor:
    """KL(row 0 || row k) for each later row k of next-token log-probabilities [rows, vocab]."""
    return (logp[0].exp() * (logp[0] - logp[1:])).sum(-1)
