from __future__ import annotations

import math

import torch

from vulnsteer.evaluation.fluency import code_nll_many
from vulnsteer.model.architecture import model_parts
from vulnsteer.vectors.hooks import steer
from vulnsteer.vectors.operators import Intervention

CODE = "int main(void) { char buf[16]; strcpy(buf, argv[1]); return 0; }"


def code_nll(model, tokenizer, code, interventions=()):
    """Reference: a full forward with hook-based steering at every position."""
    ids = tokenizer(code, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.inference_mode(), steer(model, list(interventions), scope="all"):
        logits = model(input_ids=ids, use_cache=False).logits[0, :-1].float()
    return float(torch.nn.functional.cross_entropy(logits, ids[0, 1:]))


def test_nll_by_hand_and_steering_changes_it(model, tokenizer):
    parts = model_parts(model)
    ids = tokenizer(CODE, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.inference_mode():
        logits = model(ids).logits[0, :-1]
    by_hand = float(-logits.log_softmax(-1).gather(1, ids[0, 1:, None]).mean())
    base = code_nll_many(model, parts, tokenizer, CODE, [])[0]
    assert math.isclose(base, by_hand, rel_tol=1e-5)
    d = model.config.hidden_size
    zero = Intervention(1, "add", torch.zeros(d), 5.0)
    assert math.isclose(code_nll_many(model, parts, tokenizer, CODE, [zero])[1], base, rel_tol=1e-6)
    big = Intervention(1, "add", torch.randn(d, generator=torch.Generator().manual_seed(0)), 20.0)
    # a random tiny model predicts nearly uniformly (NLL ~ ln 512), so even a large edit moves NLL a little
    assert abs(code_nll_many(model, parts, tokenizer, CODE, [big])[1] - base) > 1e-4
    with torch.inference_mode():
        assert torch.equal(model(ids).logits[0, :-1], logits), "the model is restored after steering"


def test_nll_from_one_recorded_pass_equals_full_steered_forwards(model, tokenizer):
    d = model.config.hidden_size
    g = torch.Generator().manual_seed(0)
    ivs = [Intervention(1, "add", torch.randn(d, generator=g), 3.0),
           Intervention(2, "amplify", torch.randn(d, generator=g), 4.0, torch.randn(d, generator=g))]
    many = code_nll_many(model, model_parts(model), tokenizer, CODE, ivs)
    expected = [code_nll(model, tokenizer, CODE)] + [code_nll(model, tokenizer, CODE, [iv]) for iv in ivs]
    for a, b in zip(many, expected):
        assert math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-5)
    assert len(set(round(x, 4) for x in many)) == 3
