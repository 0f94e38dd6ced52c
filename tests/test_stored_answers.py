"""Generated answers read back from the cache instead of decoded again (evaluation/stored_answers.py)."""

from __future__ import annotations

import torch

from vulnsteer.activations.cache import ActivationCache
from vulnsteer.evaluation.generation import Generation
from vulnsteer.evaluation.stored_answers import answer_key, stored_answers
from vulnsteer.vectors.operators import Intervention


def _decoder(log: list[list[int]]):
    def decode(todo: list[int]) -> list[Generation]:
        log.append(list(todo))
        return [Generation(text=f"answer {i}", n_new_tokens=i + 1, hit_limit=i % 2 == 0) for i in todo]

    return decode


def test_only_missing_answers_are_decoded_and_stored_ones_read_back_equal(tmp_path):
    cache, log = ActivationCache(tmp_path), []
    keys = [answer_key(f"prompt{i}", 6) for i in range(3)]
    first = stored_answers(cache, keys[:2], _decoder(log))
    assert log == [[0, 1]]
    again = stored_answers(cache, keys, _decoder(log))
    assert log == [[0, 1], [2]], "the two stored answers were decoded again"
    assert again[:2] == first and again[2] == Generation("answer 2", 3, True)
    assert stored_answers(cache, keys, _decoder(log)) == again and len(log) == 2


def test_without_a_cache_every_answer_is_decoded():
    log: list[list[int]] = []
    assert len(stored_answers(None, ["a", "b"], _decoder(log))) == 2 and log == [[0, 1]]


def test_steered_and_unsteered_answers_have_their_own_keys():
    iv = Intervention(1, "add", torch.ones(4), 2.0)
    plain = answer_key("p", 6)
    assert len({plain, answer_key("p", 7), answer_key("p", 6, [iv], "answer"), answer_key("p", 6, [iv], "code"),
                answer_key("p", 6, [Intervention(1, "add", torch.ones(4), 2.5)], "answer")}) == 5
