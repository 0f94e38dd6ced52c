from __future__ import annotations

import torch

from vulnsteer.activations.cache import ActivationCache, CachedActivations, prompt_key


def test_round_trip_and_key_sensitivity(tmp_path):
    cache = ActivationCache(tmp_path)
    value = CachedActivations(torch.randn(5, 8), torch.randn(5, 8), torch.randn(5, 8), torch.randn(4), 123)
    key = prompt_key("hash", "S1", "prompt text", [1, 2])
    assert cache.get(key) is None
    cache.put(key, value)
    got = cache.get(key)
    assert got is not None and got.n_tokens == 123
    assert torch.equal(got.answer_residuals, value.answer_residuals) and torch.equal(got.span_mean, value.span_mean)
    assert got.span_last is not None and torch.equal(got.span_last, value.span_last)
    for other in (prompt_key("hash2", "S1", "prompt text", [1, 2]), prompt_key("hash", "S2", "prompt text", [1, 2]),
                  prompt_key("hash", "S1", "prompt text!", [1, 2]), prompt_key("hash", "S1", "prompt text", [1, 3])):
        assert cache.get(other) is None


def test_torn_file_is_a_miss_not_a_crash(tmp_path):
    cache = ActivationCache(tmp_path)
    key = prompt_key("h", "S1", "p", [1])
    cache.put(key, CachedActivations(torch.zeros(2, 2), None, None, torch.zeros(2), 3))
    path = next(tmp_path.rglob("*.safetensors"))
    path.write_bytes(path.read_bytes()[:20])
    assert cache.get(key) is None


def test_an_entry_of_the_previous_format_is_a_miss(tmp_path, monkeypatch):
    """Version 1 entries have no span_last: a new vulnsteer must recompute them, not read them without it."""
    from vulnsteer.activations import cache as cache_mod

    monkeypatch.setattr(cache_mod, "FORMAT_VERSION", "1")
    old_key = prompt_key("h", "S1", "p", [1])
    ActivationCache(tmp_path).put(old_key, CachedActivations(torch.zeros(2, 2), torch.ones(2, 2), None, torch.zeros(2), 3))
    monkeypatch.undo()
    new_key = prompt_key("h", "S1", "p", [1])
    assert new_key != old_key and ActivationCache(tmp_path).get(new_key) is None
