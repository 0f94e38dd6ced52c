from __future__ import annotations

import math

import pytest
import torch

from vulnsteer.activations.scoring import AnswerWords, verdict


def test_score_is_log_ratio_of_summed_probabilities():
    words = AnswerWords(yes_ids=(1, 2), no_ids=(3,))
    logits = torch.tensor([0.0, 1.0, 2.0, 0.5, -3.0])
    p = logits.softmax(-1)
    expected = math.log((p[1] + p[2]) / p[3])
    assert math.isclose(float(words.score(logits)), expected, rel_tol=1e-5)
    # restricted rows give the same number: the normaliser cancels
    assert math.isclose(float(words.score_rows(logits[words.rows])), expected, rel_tol=1e-5)


def test_verdict_threshold_and_nan():
    assert verdict(0.3) == "yes" and verdict(-0.3) == "no" and verdict(0.0) == "no"
    assert verdict(float("nan")) == "unknown"


def test_answer_words_need_both_sides():
    with pytest.raises(ValueError):
        AnswerWords(yes_ids=(), no_ids=(1,))
