"""Records -> rendered prompts (one per window of the code) -> one pass each, pooled per record: the shared
front half of every experiment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import torch

from vulnsteer.activations.cache import ActivationCache, CachedActivations, prompt_key
from vulnsteer.activations.memo import active_memo
from vulnsteer.activations.passes import PromptPass, run_prompt
from vulnsteer.activations.scoring import AnswerWords
from vulnsteer.data.fitting import CodeWindow, FitResult, changed_lines, fit_code, with_twin
from vulnsteer.data.prompts import TEMPLATES, build_messages, few_shot_examples, render_prompt
from vulnsteer.data.records import Record
from vulnsteer.data.secllmholmes import cwe_definition
from vulnsteer.errors import DataError
from vulnsteer.model.loading import LoadedModel
from vulnsteer.options import LongFiles, Readout
from vulnsteer.progress import progress_bar
from vulnsteer.prompting.pass_slots import Passes, Slot
from vulnsteer.prompting.windows import PromptWindow, pool_readouts, pool_scores


@dataclass
class Sample:
    """One record rendered for one template: the windows of its code the model reads (data/fitting.py)."""

    record: Record
    template_id: str
    windows: tuple[PromptWindow, ...]  # one for a file that fits; none when the long-file policy skipped it
    fit: FitResult


@dataclass
class SampleSet:
    """Samples with the results of their unsteered passes (stacked in sample order), pooled over each sample's
    windows (prompting/windows.py): the score by the maximum, the readouts by the mean."""

    samples: list[Sample]
    scores: torch.Tensor  # [n] log P(yes) - log P(no)
    residuals: torch.Tensor  # [n, n_layers + 1, d] at the answer position
    span_means: torch.Tensor | None  # [n, n_layers + 1, d] mean over code tokens
    states: Passes | None  # per sample, one resumable pass per window, for a steering sweep (run when first used)
    # Samples the long-file policy skipped: never run, kept out of every tensor above (so nothing averages
    # in a placeholder), listed so reports can count them.
    skipped: list[Sample] = field(default_factory=list)
    span_lasts: torch.Tensor | None = None  # [n, n_layers + 1, d] at the last code token
    # Each sample's windows' prompt keys (activations/cache.py) and the cache they came from: what later stages
    # key their stored results by (steered scores, answers), so a rerun reads them instead of computing them.
    keys: list[tuple[str, ...]] = field(default_factory=list)
    cache: ActivationCache | None = None

    def readout(self, which: Readout) -> torch.Tensor:
        """[n, n_layers + 1, d] residuals read at `which`: what probes and steering vectors are fit on."""
        which = Readout(which)
        if which is Readout.ANSWER:
            return self.residuals
        x = self.span_means if which is Readout.CODE_MEAN else self.span_lasts
        if x is None:
            x = torch.full_like(self.residuals, float("nan"))
        missing = [s.record.id for i, s in enumerate(self.samples) if not bool(x[i].isfinite().all())]
        if missing:
            raise DataError(f"readout {which.value}: no code token span for {len(missing)} prompt(s), e.g. "
                            f"{missing[0]} (the code was not found in the prompt or the tokenizer has no "
                            "offsets); use --readout answer")
        return x

    @property
    def results(self) -> ActivationCache | None:
        """Where later stages store and read what they compute from these samples' windows (None: nothing is
        stored, e.g. a set built without `run_samples`' keys)."""
        return self.cache if len(self.keys) == len(self.samples) else None

    @property
    def labels(self) -> torch.Tensor:
        return torch.tensor([s.record.label for s in self.samples])

    def subset(self, idx: Sequence[int]) -> "SampleSet":
        index = torch.as_tensor(list(idx), dtype=torch.long)
        return SampleSet(
            samples=[self.samples[i] for i in idx],
            scores=self.scores[index],
            residuals=self.residuals[index],
            span_means=None if self.span_means is None else self.span_means[index],
            span_lasts=None if self.span_lasts is None else self.span_lasts[index],
            states=None if self.states is None else self.states.subset(list(idx)),
            skipped=list(self.skipped),
            keys=[self.keys[i] for i in idx] if self.keys else [],
            cache=self.cache,
        )


def _twins(records: Sequence[Record]) -> dict[str, Record]:
    by_pair: dict[str, list[Record]] = {}
    for r in records:
        if r.pair_id is not None:
            by_pair.setdefault(r.pair_id, []).append(r)
    twins: dict[str, Record] = {}
    for members in by_pair.values():
        if len(members) == 2:
            a, b = members
            twins[a.id], twins[b.id] = b, a
    return twins


def _code_span(tokenizer, prompt: str, code: str, add_special: bool) -> tuple[int, int] | None:
    start = prompt.find(code)
    if start < 0 or not getattr(tokenizer, "is_fast", False):
        return None
    end = start + len(code)
    offsets = tokenizer(prompt, return_offsets_mapping=True, add_special_tokens=add_special)["offset_mapping"]
    inside = [i for i, (a, b) in enumerate(offsets) if b > start and a < end]
    return (inside[0], inside[-1] + 1) if inside else None


def build_samples(
    records: Sequence[Record],
    loaded: LoadedModel,
    template_id: str,
    cwe_names: dict[str, str],
    data_root: Path | None,
    max_code_tokens: int = 1536,
    policy: LongFiles | str = LongFiles.WINDOWS,
) -> list[Sample]:
    """Render every record; a long file is read in windows, cut around the lines that differ from its twin,
    skipped, or skipped with its twin (`policy`), as each sample's FitResult records."""
    tok = loaded.tokenizer
    policy = LongFiles(policy)
    # diff-centred reads the twin's code, skip-pairs its fit; the other policies use nothing a user scanning
    # one file lacks.
    twins = _twins(records) if policy in (LongFiles.DIFF_CENTRED, LongFiles.SKIP_PAIRS) else {}
    add_special = not bool(getattr(tok, "chat_template", None))
    fits: dict[str, FitResult] = {}
    for record in records:
        twin = twins.get(record.id) if policy is LongFiles.DIFF_CENTRED else None
        focus = changed_lines(record.code, twin.code)[0] if twin is not None else []
        fits[record.id] = fit_code(record.code, tok, max_code_tokens, policy, focus, language=record.language)
    if policy is LongFiles.SKIP_PAIRS:
        over = {rid for rid, fit in fits.items() if fit.skipped}
        for rid, twin in twins.items():
            if twin.id in over and rid not in over:
                fits[rid] = with_twin(fits[rid], twin.id)
    return [Sample(record, template_id, tuple(_render(record, w, template_id, cwe_names, data_root, tok, add_special)
                                              for w in fits[record.id].windows), fits[record.id])
            for record in records]


def _render(record: Record, window: CodeWindow, template_id: str, cwe_names: dict[str, str],
            data_root: Path | None, tok, add_special: bool) -> PromptWindow:
    template = TEMPLATES[template_id]
    examples = (
        few_shot_examples(data_root, record.cwe, record.language, template.reasoning_dir)
        if template.few_shot and data_root else ()
    )
    definition = cwe_definition(data_root, record.cwe) if template.needs_definition and data_root else ""
    shown = replace(record, code=window.code)
    messages = build_messages(shown, template_id, cwe_names.get(record.cwe, record.cwe), examples, definition)
    prompt = render_prompt(messages, tok)
    ids = tok(prompt, return_tensors="pt", add_special_tokens=add_special)["input_ids"]
    return PromptWindow(prompt, ids, _code_span(tok, prompt, window.code, add_special), window)


def _pooled_span(readouts: list[torch.Tensor | None], n_res: int, d_model: int) -> torch.Tensor:
    """A code-span readout (span_mean or span_last) pooled by the mean over the windows that found the code;
    NaN when none did, which `SampleSet.readout` refuses rather than averaging a placeholder in."""
    found = [r for r in readouts if r is not None]
    return pool_readouts(torch.stack(found)) if found else torch.full((n_res, d_model), float("nan"))


def run_samples(
    samples: Sequence[Sample],
    loaded: LoadedModel,
    words: AnswerWords,
    cache: ActivationCache | None = None,
    keep_states: bool = False,
    description: str = "forward passes",
) -> SampleSet:
    """One unsteered pass per window of each sample (served from the activation cache when possible), pooled
    per sample (prompting/windows.py).

    `keep_states`: each sample's resumable passes too (`SampleSet.states`). A sample whose readouts all came
    from the cache gets them only when a later stage first asks (prompting/pass_slots.py): a rerun whose
    steered scores and answers are stored runs no pass. Samples the long-file policy skipped are not run:
    they go to `SampleSet.skipped`, out of the tensors.
    """
    parts = loaded.parts
    n_res = parts.n_layers + 1
    rows = words.rows
    live = [s for s in samples if not s.fit.skipped]
    memo = active_memo()
    scores, residuals, spans, lasts, slots, keys = [], [], [], [], [], []
    with progress_bar(description, total=sum(len(s.windows) for s in live)) as advance:
        for s in live:
            hits, passes = [], []
            own = tuple(prompt_key(loaded.source_hash, s.template_id, w.prompt, rows.tolist()) for w in s.windows)
            for w, key in zip(s.windows, own):
                hit = None if cache is None else cache.get(key)
                shared = (key, loaded.dtype, loaded.device)  # a pass another run of this process kept
                state = memo.get(shared) if (memo is not None and keep_states) else None
                if hit is None or state is not None:
                    fresh = state is None
                    if state is None:
                        state = run_prompt(loaded.model, parts, w.input_ids, span=w.code_span, keep_reentry=keep_states)
                        if memo is not None and keep_states:
                            memo.put(shared, state)
                    hit = hit or CachedActivations(
                        answer_residuals=state.answer_residuals,
                        span_mean=state.span_mean,
                        span_last=state.span_last,
                        answer_row_logits=state.answer_logits[rows],
                        n_tokens=state.n_tokens,
                    )
                    if cache is not None and fresh:
                        cache.put(key, hit)
                    passes.append(state)
                hits.append(hit)
                advance(1)
            scores.append(pool_scores(torch.stack([words.score_rows(h.answer_row_logits) for h in hits])))
            residuals.append(pool_readouts(torch.stack([h.answer_residuals for h in hits])))
            spans.append(_pooled_span([h.span_mean for h in hits], n_res, parts.d_model))
            lasts.append(_pooled_span([h.span_last for h in hits], n_res, parts.d_model))
            keys.append(own)
            if keep_states:
                slots.append(Slot(tuple(passes)) if len(passes) == len(s.windows) else
                             Slot(make=partial(_passes_of, s, own, loaded)))
    empty = torch.empty(0, n_res, parts.d_model)
    return SampleSet(
        samples=live,
        scores=torch.stack(scores) if scores else torch.empty(0),
        residuals=torch.stack(residuals) if residuals else empty,
        span_means=torch.stack(spans) if spans else empty,
        states=Passes(slots) if keep_states else None,
        skipped=[s for s in samples if s.fit.skipped],
        span_lasts=torch.stack(lasts) if lasts else empty,
        keys=keys,
        cache=cache,
    )


def _passes_of(sample: Sample, keys: tuple[str, ...], loaded: LoadedModel) -> tuple[PromptPass, ...]:
    """A sample's resumable passes, run when first needed (shared through the memo as `run_samples` shares)."""
    memo, out = active_memo(), []
    for w, key in zip(sample.windows, keys):
        shared = (key, loaded.dtype, loaded.device)
        state = memo.get(shared) if memo is not None else None
        if state is None:
            state = run_prompt(loaded.model, loaded.parts, w.input_ids, span=w.code_span, keep_reentry=True)
            if memo is not None:
                memo.put(shared, state)
        out.append(state)
    return tuple(out)
