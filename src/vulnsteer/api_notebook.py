"""The notebook half of the library: activations read once, vectors of several methods fit from them, the
probe curve, and answer scores and texts, steered inside `vector.apply(lm)`.

    acts = vs.read_activations(lm, pairs, cwe="CWE-787", language="c")   # one pass per prompt, cached
    caa = vs.train_steering_vector(lm, acts, layers=[-2], method="caa")   # no further passes
    pca = vs.train_steering_vector(lm, acts, layers=[-2], method="pca")
    curve = vs.probe_layers(acts)                                         # as `vulnsteer probe`

Every argument is checked before the first forward pass (api_inputs.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from vulnsteer.api_inputs import as_records, check_layers, check_model, check_record, check_template
from vulnsteer.data.records import Record
from vulnsteer.data.root import resolve_data_root
from vulnsteer.errors import DataError, VulnsteerError
from vulnsteer.model.loading import LoadedModel
from vulnsteer.options import Method, Readout

if TYPE_CHECKING:
    from vulnsteer.evaluation.probe_curve import ProbeCurve
    from vulnsteer.prompting.samples import Sample
    from vulnsteer.vectors.steering_vector import SteeringVector


@dataclass(frozen=True, eq=False)
class Activations:
    """One unsteered pass per record (the mean over a long file's windows): what vectors and probes are fit on."""

    records: tuple[Record, ...]  # in order; files the long-file policy skipped are left out (`skipped`)
    residuals: torch.Tensor  # [n, n_layers + 1, d] at `readout`: the embeddings, then each block's output
    scores: torch.Tensor  # [n] unsteered log P(yes) - log P(no)
    readout: Readout  # answer, code-mean or code-last
    template: str
    model_id: str
    model_hash: str
    architecture: str
    skipped: tuple[str, ...] = ()

    @property
    def labels(self) -> torch.Tensor:
        return torch.tensor([r.label for r in self.records])

    def __repr__(self) -> str:
        return (f"Activations({len(self.records)} records at {self.readout} under {self.template}, "
                f"{self.residuals.shape[1] - 1} blocks x {self.residuals.shape[2]}, model {self.model_id})")


def _build(lm: LoadedModel, records: Sequence[Record], template: str) -> list[Sample]:
    from vulnsteer.data.secllmholmes import cwe_names
    from vulnsteer.prompting.samples import build_samples

    root = None
    try:
        root = resolve_data_root(None)
    except DataError:
        pass  # few-shot templates and CWE names need the data root; zero-shot ones do not
    return build_samples(list(records), lm, template, cwe_names(root) if root else {}, root)


def _words(lm: LoadedModel) -> Any:
    from vulnsteer.activations.scoring import AnswerWords
    from vulnsteer.data.prompts import answer_token_ids

    yes, no = answer_token_ids(lm.tokenizer)
    return AnswerWords(tuple(yes), tuple(no))


def read_activations(lm: LoadedModel, records: Any, readout: Readout | str = Readout.ANSWER, template: str = "S1",
                     cwe: str | None = None, language: str | None = None,
                     cache_dir: Path | str | None = None) -> Activations:
    """The residuals of `records` (Records, or (vulnerable_code, secure_code) pairs of one `cwe` and `language`)
    at `readout`, one pass per prompt served from the same activation cache as the command line."""
    from vulnsteer.prompting.context import activation_cache
    from vulnsteer.prompting.samples import run_samples

    check_model(lm)
    chosen, template = Readout(readout), check_template(template)
    recs = as_records(records, cwe, language)
    cache = activation_cache(lm, Path(cache_dir) if cache_dir is not None else None)
    sset = run_samples(_build(lm, recs, template), lm, _words(lm), cache, description="forward passes")
    return Activations(records=tuple(s.record for s in sset.samples), residuals=sset.readout(chosen),
                       scores=sset.scores, readout=chosen, template=template, model_id=lm.model_id,
                       model_hash=lm.source_hash, architecture=lm.parts.model_type,
                       skipped=tuple(s.record.id for s in sset.skipped))


def train_steering_vector(lm: LoadedModel, records: Any, layers: int | Sequence[int] | None = None,
                          method: Method | str = Method.CAA, template: str | None = None,
                          readout: Readout | str | None = None, cwe: str | None = None,
                          language: str | None = None) -> SteeringVector:
    """Fit a vector of `method` at `layers` (every block when None; -1 is the last) on `records`: Records,
    (vulnerable_code, secure_code) pairs of one `cwe` and `language`, or `Activations` (no forward pass, so
    several methods cost one pass). CAA and PCA need vulnerable/secure pairs. Carries model and data provenance."""
    from vulnsteer.vectors.training import fit_vectors

    check_model(lm)
    chosen_method = Method(method)
    layer_list = check_layers(layers, lm.parts.n_layers)
    if isinstance(records, Activations):
        acts = records
        if acts.model_hash != lm.source_hash:
            raise VulnsteerError(f"these activations are of {acts.model_id}, not {lm.model_id}; read them on this model")
        for name, given, have in (("template", template, acts.template), ("readout", readout, acts.readout)):
            if given is not None and str(given) != have:
                raise VulnsteerError(f"{name} {given!r} differs from the activations' {have!r}; read them again")
        if cwe is not None or language is not None:
            raise VulnsteerError("cwe and language go with (vulnerable_code, secure_code) pairs, not Activations")
    else:
        acts = read_activations(lm, records, readout or Readout.ANSWER, template or "S1", cwe, language)
    vector = fit_vectors(acts.residuals, acts.records, layer_list, [chosen_method], position=acts.readout)[chosen_method]
    prov = vector.provenance
    return replace(vector, provenance=replace(prov, model_id=acts.model_id, model_hash=acts.model_hash,
                                              template_id=acts.template,
                                              extra={**prov.extra, "architecture": acts.architecture}))


def probe_layers(acts: Activations, k: int = 5, seed: int = 0, repeats: int = 3) -> ProbeCurve:
    """Per-layer logistic probes scored by grouped k-fold cross-validation, with the shuffled-label control,
    as `vulnsteer probe` computes them: `.result.auroc[l]` (l = block l's output) and `.control` [repeats, l]."""
    from vulnsteer.evaluation.probe_curve import probe_curve_of

    if not isinstance(acts, Activations):
        raise VulnsteerError(f"probe_layers takes the Activations of vulnsteer.read_activations, not {type(acts).__name__}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 2 or isinstance(repeats, bool) or not isinstance(repeats, int) \
            or repeats < 1:
        raise VulnsteerError(f"probe_layers needs k >= 2 folds and repeats >= 1, got k={k!r}, repeats={repeats!r}")
    return probe_curve_of(acts.residuals, acts.records, k=k, seed=seed, repeats=repeats)


def _plain_scores(lm: LoadedModel, sample: Sample) -> float:
    from vulnsteer.prompting.windows import pool_scores

    if sample.fit.skipped:
        raise DataError(f"{sample.record.id}: {sample.fit.note}")
    words = _words(lm)
    with torch.inference_mode():
        scores = [words.score(lm.model(input_ids=w.input_ids, logits_to_keep=1).logits[0, -1].float())
                  for w in sample.windows]
    return float(pool_scores(torch.stack(scores)))


def answer_score(lm: LoadedModel, record: Record, template: str = "S1") -> float:
    """log P(yes) - log P(no) at the answer position for one record under `template` (> 0 means "vulnerable").

    One plain forward of each rendered prompt, so a surrounding `vector.apply(lm, scope="answer")` steers
    exactly the last prompt token. A file over the token budget is read in windows and scored by the
    maximum over them, as `vulnsteer run` does (docs/PROMPTS.md)."""
    check_model(lm)
    check_record(record)
    (sample,) = _build(lm, [record], check_template(template))
    return _plain_scores(lm, sample)


def _steered(lm: LoadedModel) -> bool:
    """Hooks on the model or its blocks (steering, or the user's own) change what a pass computes."""
    modules = [lm.model, *lm.parts.blocks]
    return any(m._forward_hooks or m._forward_pre_hooks for m in modules)


def answer_scores(lm: LoadedModel, records: Sequence[Record], template: str = "S1") -> list[float]:
    """`answer_score` of many records. Unsteered, through the command line's path (one cached pass per prompt,
    served from the activation cache), so the numbers are `vulnsteer baseline`'s; inside `vector.apply(lm)`
    (or any hook on the model), plain forwards that the hooks steer, never the cache."""
    from vulnsteer.prompting.context import activation_cache
    from vulnsteer.prompting.samples import run_samples

    check_model(lm)
    recs = as_records(records, None, None)
    samples = _build(lm, recs, check_template(template))
    for s in samples:
        if s.fit.skipped:
            raise DataError(f"{s.record.id}: {s.fit.note}")
    if _steered(lm):
        return [_plain_scores(lm, s) for s in samples]
    sset = run_samples(samples, lm, _words(lm), activation_cache(lm), description="scoring passes")
    return [float(x) for x in sset.scores]


def generate_answer(lm: LoadedModel, record: Record, template: str = "S1", max_new_tokens: int = 128) -> str:
    """The model's greedy answer to `record` under `template` (steered inside `vector.apply(lm)`); a file read
    in windows gets one answer per window, each under a header line naming its lines."""
    from vulnsteer.evaluation.generation import generate_answers
    from vulnsteer.prompting.windows import pool_generations

    check_model(lm)
    check_record(record)
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise VulnsteerError(f"max_new_tokens must be a positive int, got {max_new_tokens!r}")
    (sample,) = _build(lm, [record], check_template(template))
    if sample.fit.skipped:
        raise DataError(f"{record.id}: {sample.fit.note}")
    generations = generate_answers(lm.model, lm.tokenizer, [w.prompt for w in sample.windows], max_new_tokens, 1,
                                   sort_by_length=False)
    return pool_generations(generations, sample.windows).text
