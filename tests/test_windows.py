"""Pooling a file's windows: the score by max, readouts by mean, generated verdicts and texts."""

from __future__ import annotations

import pytest
import torch

from vulnsteer.data.fitting import CodeWindow
from vulnsteer.evaluation.generation import Generation
from vulnsteer.prompting.windows import (
    PromptWindow,
    flatten,
    pool_generations,
    pool_readouts,
    pool_scores,
    pool_verdicts,
    regroup,
)


def _window(lo: int, hi: int) -> PromptWindow:
    return PromptWindow("p", torch.zeros(1, 1, dtype=torch.long), None, CodeWindow("c", (lo, hi), 1))


def test_scores_pool_by_max_readouts_by_mean():
    scores = torch.tensor([[-2.0, 1.0], [0.5, -3.0], [0.1, 0.2]])  # [windows, interventions]
    assert pool_scores(scores).tolist() == [0.5, 1.0]
    x = torch.randn(3, 4, 5)
    torch.testing.assert_close(pool_readouts(x), (x[0] + x[1] + x[2]) / 3)
    one = torch.randn(1, 4, 5)
    assert torch.equal(pool_scores(one), one[0]) and torch.equal(pool_readouts(one), one[0])


@pytest.mark.parametrize("verdicts, pooled", [
    (["no", "yes", "unknown"], "yes"),
    (["no", "no"], "no"),
    (["no", "unknown"], "unknown"),
    (["unknown"], "unknown"),
    (["yes"], "yes"),
    ([], "unknown"),
])
def test_verdicts_pool_yes_if_any_no_if_all(verdicts, pooled):
    assert pool_verdicts(verdicts) == pooled


def test_one_window_answer_is_the_generation_itself():
    g = Generation("Yes, the code is vulnerable.", 7, False)
    answer = pool_generations([g], [_window(1, 40)])
    assert (answer.text, answer.verdict, answer.n_new_tokens, answer.hit_limit) == (g.text, "yes", 7, False)


def test_windows_answers_are_joined_under_headers_and_pooled():
    gens = [Generation("No, it is safe.", 5, False), Generation("Yes, there is an overflow.", 6, True),
            Generation("I cannot tell.", 4, False)]
    answer = pool_generations(gens, [_window(1, 30), _window(28, 60), _window(58, 70)])
    assert answer.verdict == "yes" and answer.n_new_tokens == 15 and answer.hit_limit
    lines = answer.text.splitlines()
    assert lines[0] == "===== window 1 of 3 (lines 1-30) =====" and lines[1] == gens[0].text
    assert "===== window 2 of 3 (lines 28-60) =====" in lines and "===== window 3 of 3 (lines 58-70) =====" in lines
    assert all(g.text in answer.text for g in gens)
    nos = pool_generations(gens[:1] * 2, [_window(1, 30), _window(28, 60)])
    assert nos.verdict == "no"
    with pytest.raises(ValueError):
        pool_generations(gens, [_window(1, 30)])


def test_flatten_and_regroup_are_inverse():
    groups = [["a", "b"], ["c"], ["d", "e", "f"]]
    flat, sizes = flatten(groups)
    assert flat == list("abcdef") and sizes == [2, 1, 3]
    assert regroup(flat, sizes) == groups
    with pytest.raises(ValueError):
        regroup(flat, [2, 2])
