from __future__ import annotations

import math

import torch

from vulnsteer.evaluation.fluency import code_nll
from vulnsteer.steering.operators import Intervention

CODE = "int main(void) { char buf[16]; strcpy(buf, argv[1]); return 0; }"


def test_nll_by_hand_and_steering_changes_it(model, tokenizer):
    ids = tokenizer(CODE, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.inference_mode():
        logits = model(ids).logits[0, :-1]
    by_hand = float(-logits.log_softmax(-1).gather(1, ids[0, 1:, None]).mean())
    base = code_nll(model, tokenizer, CODE)
    assert math.isclose(base, by_hand, rel_tol=1e-5)
    d = model.config.hidden_size
    zero = Intervention(1, "add", torch.zeros(d), 5.0)
    assert math.isclose(code_nll(model, tokenizer, CODE, [zero]), base, rel_tol=1e-6)
    big = Intervention(1, "add", torch.ones(d), 20.0)
    assert not math.isclose(code_nll(model, tokenizer, CODE, [big]), base, rel_tol=1e-3)
    with torch.inference_mode():
        assert torch.equal(model(ids).logits[0, :-1], logits), "the model is restored after steering"
