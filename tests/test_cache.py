from __future__ import annotations

import torch

from vulnsteer.activations.cache import ActivationCache, CachedActivations, prompt_key


def test_round_trip_and_key_sensitivity(tmp_path):
    cache = ActivationCache(tmp_path)
    value = CachedActivations(torch.randn(5, 8), torch.randn(5, 8), torch.randn(4), 123)
    key = prompt_key("hash", "S1", "prompt text", [1, 2])
    assert cache.get(key) is None
    cache.put(key, value)
    got = cache.get(key)
    assert got is not None and got.n_tokens == 123
    assert torch.equal(got.answer_residuals, value.answer_residuals) and torch.equal(got.span_mean, value.span_mean)
    for other in (prompt_key("hash2", "S1", "prompt text", [1, 2]), prompt_key("hash", "S2", "prompt text", [1, 2]),
                  prompt_key("hash", "S1", "prompt text!", [1, 2]), prompt_key("hash", "S1", "prompt text", [1, 3])):
        assert cache.get(other) is None


def test_torn_file_is_a_miss_not_a_crash(tmp_path):
    cache = ActivationCache(tmp_path)
    key = prompt_key("h", "S1", "p", [1])
    cache.put(key, CachedActivations(torch.zeros(2, 2), None, torch.zeros(2), 3))
    path = next(tmp_path.rglob("*.safetensors"))
    path.write_bytes(path.read_bytes()[:20])
    assert cache.get(key) is None
