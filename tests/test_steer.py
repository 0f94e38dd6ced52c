"""The steering experiment on a tiny model: folds never leak a scenario, choice uses validation only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vulnsteer.activations.scoring import AnswerWords
from vulnsteer.data.prompts import answer_token_ids
from vulnsteer.data.secllmholmes import cwe_names, load_secllmholmes
from vulnsteer.experiments.config import SteerConfig
from vulnsteer.experiments.steer import _choose, run_steering, training_set
from vulnsteer.model.architecture import model_parts
from vulnsteer.model.loading import LoadedModel
from vulnsteer.model.tiny import tiny_model
from vulnsteer.options import Operator, Readout, Scope
from vulnsteer.prompting.samples import build_samples, run_samples
from vulnsteer.steering.sweep import score_full_forwards
from vulnsteer.vectors.training import POOLED

CWES = ("CWE-787", "CWE-89", "CWE-22")


@pytest.fixture(scope="module")
def setup(data_root):
    from vulnsteer.model.tiny import tiny_tokenizer

    tok = tiny_tokenizer()
    m = tiny_model("qwen2")
    loaded = LoadedModel(m, tok, "tiny", "1" * 64, model_parts(m), "hf_dir", "tiny", None)  # type: ignore[arg-type]
    words = AnswerWords(*map(tuple, answer_token_ids(tok)))
    names = cwe_names(data_root)
    main_recs = [r for r in load_secllmholmes(data_root, ["hand-crafted"]) if r.cwe in CWES]
    extra_recs = [r for r in load_secllmholmes(data_root, ["augmented-trivial"]) if r.cwe in CWES]
    main = run_samples(build_samples(main_recs, loaded, "S1", names, data_root), loaded, words, keep_states=True)
    extra = run_samples(build_samples(extra_recs, loaded, "S1", names, data_root), loaded, words)
    return loaded, words, main, extra


def test_training_sets_exclude_every_held_out_scenario(setup):
    loaded, words, main, extra = setup
    cfg = SteerConfig(layers=(0, 2), methods=("caa", "probe"), add_alphas=(-1.0, 1.0), amplify_alphas=(2.0,),
                      k_folds=3, n_random=2)
    result = run_steering(loaded.parts, main, words, cfg, Readout.ANSWER, extra)
    tested = sorted(r.index for r in result.test)
    assert tested == list(range(len(main.samples))), "every sample is tested exactly once"
    for f, (train, val, test) in enumerate(result.folds):
        held = {main.samples[i].record.group for i in np.concatenate([val, test])}
        _, recs = training_set(main, extra, train, np.concatenate([val, test]), Readout.ANSWER)
        assert held.isdisjoint({r.group for r in recs})
        # augmentations of training scenarios do join (otherwise the extra data would be useless)
        assert any(r.subset == "augmented-trivial" for r in recs)
        val_ids = {main.samples[i].record.id for i in val}
        assert {row["id"] for row in result.sweep if row["fold"] == f} == val_ids
    for row in result.test:
        assert len(row.random) == 2 and np.isfinite(row.steered) and row.kl_answer > -1e-5


def test_choice_is_the_best_validation_configuration(setup):
    _, _, main, _ = setup
    labels = main.labels.numpy()
    val = np.arange(6)
    sweep = []
    for layer, alpha in ((0, 1.0), (1, -1.0)):
        for i in val:
            perfect = layer == 1
            score = (1.0 if labels[i] == 1 else -1.0) if perfect else 1.0
            sweep.append(dict(fold=0, index=int(i), layer=layer, method="caa", operator="add", alpha=alpha, score=score))
    choice = _choose(sweep, 0, main, val, SteerConfig())
    assert (choice.layer, choice.operator, choice.alpha) == (1, Operator.ADD, -1.0)
    assert choice.val_metrics["balanced_accuracy"] == 1.0


@pytest.mark.parametrize("scope, readout", [("answer", "answer"), ("all", "answer"), ("code", "code-last")])
def test_long_files_are_steered_in_every_window_and_pooled_by_max(data_root, scope, readout):
    """The sweep's steered score of a file read in windows is the max over full steered forwards of its windows
    (in the code scope, each window steered on its own code's tokens, with vectors from pooled code-last rows)."""
    from vulnsteer.model.tiny import tiny_tokenizer

    tok = tiny_tokenizer()
    m = tiny_model("qwen2")
    loaded = LoadedModel(m, tok, "tiny", "1" * 64, model_parts(m), "hf_dir", "tiny", None)  # type: ignore[arg-type]
    words = AnswerWords(*map(tuple, answer_token_ids(tok)))
    recs = [r for r in load_secllmholmes(data_root, ["hand-crafted"]) if r.cwe in CWES]
    main = run_samples(build_samples(recs, loaded, "S1", cwe_names(data_root), data_root, max_code_tokens=200),
                       loaded, words, keep_states=True)
    long = {i for i, s in enumerate(main.samples) if len(s.windows) > 1}
    assert len(long) > len(main.samples) // 2
    cfg = SteerConfig(layers=(1,), methods=("caa",), add_alphas=(-8.0, 8.0), amplify_alphas=(), ablate=False,
                      wide_add_alphas=(-8.0, 8.0), wide_amplify_alphas=(), k_folds=3, n_random=1, scope=scope)
    result = run_steering(loaded.parts, main, words, cfg, Readout(readout), model=m)
    assert all(v.provenance.position is Readout(readout) for fold in result.vectors for v in fold.values())
    hook_scope = "span" if scope == "code" else scope
    for row in [r for r in result.test if r.index in long][:4]:
        windows = main.samples[row.index].windows
        ivs = result.vectors[row.fold][row.vector_cwe].interventions()
        per_window = [float(score_full_forwards(m, w.input_ids, ivs, words, hook_scope,
                                                span=w.code_span if scope == "code" else None)[0]) for w in windows]
        assert len(set(per_window)) > 1
        assert row.steered == pytest.approx(max(per_window), abs=1e-4)
        with torch.inference_mode():
            plain = [float(words.score(m(input_ids=w.input_ids).logits[0, -1].float())) for w in windows]
        assert row.baseline == pytest.approx(max(plain), abs=1e-4)  # the unsteered score is pooled the same way


def _caa_by_hand(x, records, layer: int):
    """Mean over complete vulnerable/patched pairs of (vulnerable - patched) at block `layer`'s output, unit."""
    by_pair: dict = {}
    for row, r in zip(x, records):
        by_pair.setdefault(r.pair_id, {})[r.label] = row[layer + 1]
    diffs = [p[1] - p[0] for p in by_pair.values() if set(p) == {0, 1}]
    v = torch.stack(diffs).mean(0)
    return v / v.norm()


@pytest.mark.parametrize("readout", list(Readout))
def test_training_residuals_are_the_chosen_readout(setup, readout):
    _, _, main, extra = setup
    train, held = np.arange(0, 10), np.arange(10, len(main.samples))
    x, recs = training_set(main, extra, train, held, readout)
    source = {Readout.ANSWER: "residuals", Readout.CODE_MEAN: "span_means", Readout.CODE_LAST: "span_lasts"}[readout]
    by_id = {s.record.id: getattr(sset, source)[i] for sset in (main, extra) for i, s in enumerate(sset.samples)}
    torch.testing.assert_close(x, torch.stack([by_id[r.id] for r in recs]))


def test_code_scope_steers_the_code_with_vectors_from_code_mean_residuals(setup):
    """Directions are CAA of the training folds' span means; each steered test score equals a full forward
    with the chosen vector on the code's tokens only."""
    loaded, words, main, _ = setup
    cfg = SteerConfig(layers=(1,), methods=("caa",), scope="code", k_folds=3, n_random=1, wide_add_alphas=(-4.0, 4.0),
                      wide_amplify_alphas=())
    result = run_steering(loaded.parts, main, words, cfg, Readout.CODE_MEAN, model=loaded.model)
    assert {row["alpha"] for row in result.sweep} == {-4.0, 4.0, 0.0}  # the wide grid: two strengths and ablate
    for f, (train, _val, test) in enumerate(result.folds):
        vector = result.vectors[f][POOLED]
        assert vector.provenance.position is Readout.CODE_MEAN and vector.application.scope is Scope.SPAN
        records = [main.samples[i].record for i in train]
        by_hand = _caa_by_hand(main.span_means[train], records, 1)
        torch.testing.assert_close(vector.directions[1], by_hand, atol=1e-5, rtol=1e-5)
        assert float(vector.directions[1] @ _caa_by_hand(main.residuals[train], records, 1)) < 0.999  # not the answer's
        rows = {r.index: r for r in result.test if r.fold == f}
        for i in test[:2]:
            s = main.samples[i]
            (w,) = s.windows
            want = score_full_forwards(loaded.model, w.input_ids, vector.interventions(), words, "span", span=w.code_span)
            assert abs(rows[int(i)].steered - float(want[0])) < 1e-4


def test_amplify_is_reported_apart_at_its_best_validation_configuration(setup):
    from vulnsteer.experiments.steer import _applied
    from vulnsteer.vectors.training import POOLED, fit_vectors

    loaded, words, main, _ = setup
    cfg = SteerConfig(layers=(0, 2), methods=("caa",), add_alphas=(-4.0, 4.0), amplify_alphas=(2.0, 8.0),
                      ablate=False, k_folds=3, n_random=1)
    result = run_steering(loaded.parts, main, words, cfg, Readout.ANSWER)
    for f, (train, val, test) in enumerate(result.folds):
        amp = _choose(result.sweep, f, main, val, cfg, Operator.AMPLIFY)
        assert amp.operator is Operator.AMPLIFY
        vector = _applied({POOLED: fit_vectors(*training_set(main, None, train, np.concatenate([val, test]), Readout.ANSWER),
                                               [0, 2], cfg.methods)}, amp, cfg)[POOLED]
        from vulnsteer.prompting.scorer import SampleScorer

        score = SampleScorer(loaded.parts, main, words, cfg.scope, None)
        for row in (r for r in result.test if r.fold == f):
            assert row.amplify_config == amp.label()
            assert row.amplify == float(score(row.index, vector.interventions())[0])
    no_amp = run_steering(loaded.parts, main, words, SteerConfig(layers=(0,), methods=("caa",), add_alphas=(4.0,),
                                                                 amplify_alphas=(), k_folds=3, n_random=1), Readout.ANSWER)
    assert all(r.amplify != r.amplify and r.amplify_config == "" for r in no_amp.test)


def test_coarse_fine_scores_part_of_the_grid_alike_and_conditional_steering_reads_the_subsample(setup):
    from vulnsteer.experiments.conditional import conditional_steering
    from vulnsteer.experiments.search import coarse_settings

    loaded, words, main, _ = setup
    common = dict(layers=(0, 1, 2, 3), methods=("caa", "probe"), add_alphas=(-4.0, -1.0, 1.0, 4.0),
                  amplify_alphas=(2.0, 8.0), k_folds=3, n_random=1, search_subsample=4)
    grid = run_steering(loaded.parts, main, words, SteerConfig(**common), Readout.ANSWER)
    cfg = SteerConfig(**common, search="coarse-fine", search_top=2)
    fine = run_steering(loaded.parts, main, words, cfg, Readout.ANSWER)
    key = lambda r: (r["fold"], r["index"], r["layer"], r["method"], r["operator"], r["alpha"])  # noqa: E731
    grid_scores = {key(r): r["score"] for r in grid.sweep}
    assert all(abs(grid_scores[key(r)] - r["score"]) < 1e-5 for r in fine.sweep)  # same vectors, same samples
    n_settings, n_coarse = len(cfg.settings()), len(coarse_settings(cfg))
    for f, (_, val, _) in enumerate(fine.folds):
        rows = [r for r in fine.sweep if r["fold"] == f]
        n_val = len({r["index"] for r in rows})
        assert n_val == 4 < len(val) and {r["index"] for r in grid.sweep if r["fold"] == f} == {r["index"] for r in rows}
        assert len(rows) == n_val * (4 * 2 * n_coarse + 2 * (n_settings - n_coarse))
        g, c = grid.choices[f], fine.choices[f]
        assert c.val_metrics["balanced_accuracy"] <= g.val_metrics["balanced_accuracy"]
        if any((r["layer"], r["method"], r["operator"], r["alpha"]) == (g.layer, g.method, g.operator, g.alpha)
               for r in rows):
            assert c.label() == g.label()  # the grid's best was scored: the same rule chooses it
    cond = conditional_steering(main, fine, cfg.select, Readout.ANSWER)
    assert [c.n_val for c in cond.choices] == [4, 4, 4]
