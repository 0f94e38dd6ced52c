"""The batched multi-layer sweep must give each row the score of its own full steered forward."""

from __future__ import annotations

import torch

from vulnsteer.activations.passes import run_prompt
from vulnsteer.activations.scoring import AnswerWords
from vulnsteer.data.prompts import answer_token_ids
from vulnsteer.model.architecture import model_parts
from vulnsteer.options import Operator
from vulnsteer.steering.sweep import score_interventions
from vulnsteer.vectors.application import Application
from vulnsteer.vectors.directions import Directions
from vulnsteer.vectors.hooks import steer
from vulnsteer.vectors.operators import Intervention
from vulnsteer.vectors.steering_vector import SteeringVector

PROMPT = "def query(db, name): return db.execute('SELECT * FROM users WHERE name = ' + name) Answer yes or no"


def test_sweep_rows_equal_individual_steered_forwards(model, tokenizer):
    parts = model_parts(model)
    ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    words = AnswerWords(*map(tuple, answer_token_ids(tokenizer)))
    state = run_prompt(model, parts, ids)
    g = torch.Generator().manual_seed(0)
    ivs = []
    for layer in (2, 0, 3):  # unsorted on purpose: results must come back in the order given
        v = SteeringVector(Directions({layer: torch.randn(parts.d_model, generator=g)},
                                      mu={layer: torch.randn(parts.d_model, generator=g)}, sigma={layer: 1.5}),
                           Application(unit="sigma"))
        for op, alpha in (("add", -2.0), ("add", 4.0), ("amplify", 3.0), ("ablate", 0.0)):
            ivs += v.interventions(alpha, op)
    scores = score_interventions(parts, state, ivs, words)
    assert scores.shape == (len(ivs),)
    for iv, got in zip(ivs, scores):
        with torch.inference_mode(), steer(model, [iv], scope="answer", prompt_len=ids.shape[1]):
            ref = words.score(model(ids).logits[0, -1])
        torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
    assert scores.std() > 0, "different interventions must give different scores"
    full = score_interventions(parts, state, ivs[:2], words, full_vocab=True)
    assert full.shape[0] == 2 and full.shape[1] >= max(words.rows) + 1
    torch.testing.assert_close(words.score(full), scores[:2], atol=1e-5, rtol=1e-5)


def test_intervention_scales_additive_strength_by_sigma():
    v = SteeringVector(Directions({1: torch.tensor([3.0, 0.0])}, sigma={1: 2.5}), Application(unit="sigma"))
    (iv,) = v.interventions(2.0, "add")
    assert isinstance(iv, Intervention) and iv.operator is Operator.ADD
    torch.testing.assert_close(iv.alpha * iv.direction, torch.tensor([5.0, 0.0]))
    (raw,) = v.interventions(2.0, "add", unit="raw")  # the direction as given: length 3
    torch.testing.assert_close(raw.alpha * raw.direction, torch.tensor([6.0, 0.0]))


def test_all_position_rows_equal_full_steered_forwards(model, tokenizer):
    from vulnsteer.steering.block_reentry import record_full
    from vulnsteer.steering.sweep import score_interventions_all_positions

    parts = model_parts(model)
    ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    words = AnswerWords(*map(tuple, answer_token_ids(tokenizer)))
    g = torch.Generator().manual_seed(1)
    ivs = [Intervention(layer, op, torch.randn(parts.d_model, generator=g), alpha, torch.randn(parts.d_model, generator=g))
           for layer in (3, 1) for op, alpha in (("add", 2.0), ("amplify", 3.0), ("ablate", 1.0))]
    scores = score_interventions_all_positions(parts, record_full(model, parts, ids), ivs, words, chunk=4)
    for iv, got in zip(ivs, scores):
        with torch.inference_mode(), steer(model, [iv], scope="all"):
            ref = words.score(model(ids).logits[0, -1])
        torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)


def test_code_span_rows_equal_full_forwards_steered_only_on_the_span(model, tokenizer):
    """The code scope's fast path (re-entry from a full recording, edits masked to the span) equals one full
    forward per intervention with the hooks steering only the span, on every tiny architecture."""
    from vulnsteer.steering.block_reentry import record_full
    from vulnsteer.steering.sweep import score_full_forwards, score_interventions_all_positions

    parts = model_parts(model)
    ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    words = AnswerWords(*map(tuple, answer_token_ids(tokenizer)))
    g = torch.Generator().manual_seed(2)
    ivs = [Intervention(layer, op, torch.randn(parts.d_model, generator=g), alpha, torch.randn(parts.d_model, generator=g))
           for layer in (2, 0) for op, alpha in (("add", 3.0), ("amplify", 3.0), ("ablate", 1.0))]
    span = (3, ids.shape[1] - 4)
    rec = record_full(model, parts, ids)
    fast = score_interventions_all_positions(parts, rec, ivs, words, chunk=4, span=span)
    slow = score_full_forwards(model, ids, ivs, words, scope="span", span=span)
    torch.testing.assert_close(fast, slow, atol=1e-4, rtol=1e-4)
    full_vocab = score_interventions_all_positions(parts, rec, ivs[:2], words, full_vocab=True, span=span)
    torch.testing.assert_close(words.score(full_vocab), fast[:2], atol=1e-5, rtol=1e-5)
    every = score_interventions_all_positions(parts, rec, ivs, words, chunk=4)
    assert not torch.allclose(fast, every, atol=1e-3), "steering the span must differ from steering every position"
    base = words.score(model(ids).logits[0, -1].detach())
    assert not torch.allclose(fast, base.expand_as(fast), atol=1e-3), "steering the span must move the answer"
