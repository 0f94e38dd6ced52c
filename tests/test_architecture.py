from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from vulnsteer.errors import ModelError
from vulnsteer.model.architecture import block_hidden, model_parts, table_model_types, with_block_hidden
from vulnsteer.model.tiny import TINY_ARCHITECTURES

IDS = torch.tensor([[5, 17, 42, 99, 3, 250]])


def test_every_tiny_architecture_is_supported():
    assert set(TINY_ARCHITECTURES) <= set(table_model_types())


def test_model_parts_shapes(model, arch):
    parts = model_parts(model)
    assert parts.model_type == arch
    assert parts.n_layers == 4 and parts.d_model == 64
    assert isinstance(parts.blocks, nn.ModuleList) and isinstance(parts.unembed, nn.Linear)
    assert parts.unembed.weight.shape == (512, 64)
    assert parts.embed(IDS).shape == (1, IDS.shape[1], 64)


def test_model_parts_are_the_ones_the_forward_uses(model, arch):
    """final_norm(unembed) applied to the last block's output reproduces the logits exactly."""
    parts = model_parts(model)
    seen: dict[str, torch.Tensor] = {}
    handle = parts.blocks[-1].register_forward_hook(lambda m, i, o: seen.__setitem__("h", block_hidden(o)))
    try:
        with torch.no_grad():
            logits = model(IDS).logits
            rebuilt = parts.unembed(parts.final_norm(seen["h"]))
    finally:
        handle.remove()
    assert seen["h"].shape == (1, IDS.shape[1], 64)
    torch.testing.assert_close(rebuilt, logits, rtol=1e-5, atol=1e-5)


def test_with_block_hidden_in_a_hook_steers_the_model(model, arch):
    parts = model_parts(model)
    with torch.no_grad():
        clean = model(IDS).logits
    shift = torch.zeros(64)
    shift[0] = 5.0

    def identity(module, inputs, output):
        return with_block_hidden(output, block_hidden(output))

    def add(module, inputs, output):
        return with_block_hidden(output, block_hidden(output) + shift)

    for hook, changes in ((identity, False), (add, True)):
        handle = parts.blocks[1].register_forward_hook(hook)
        try:
            with torch.no_grad():
                steered = model(IDS).logits
        finally:
            handle.remove()
        assert torch.equal(steered, clean) is not changes, hook.__name__


def test_block_hidden_tensor_and_sequences():
    hidden = torch.randn(2, 3, 4)
    extra = torch.randn(2, 2)
    assert block_hidden(hidden) is hidden
    assert block_hidden((hidden, extra)) is hidden
    assert block_hidden([hidden, None]) is hidden


def test_block_hidden_keeps_batch_dimension_of_tensor_output():
    # Indexing output[0] on a Tensor would silently pick batch element 0.
    hidden = torch.randn(3, 5, 8)
    assert block_hidden(hidden).shape == (3, 5, 8)


@pytest.mark.parametrize("bad", [None, (), ("not a tensor",), {"hidden": torch.zeros(1)}])
def test_block_hidden_rejects_unknown_outputs(bad):
    with pytest.raises(TypeError):
        block_hidden(bad)


def test_with_block_hidden_keeps_output_shape():
    old, new, extra = torch.zeros(1, 2, 3), torch.ones(1, 2, 3), object()
    assert with_block_hidden(old, new) is new
    replaced = with_block_hidden((old, extra), new)
    assert isinstance(replaced, tuple) and replaced[0] is new and replaced[1] is extra and len(replaced) == 2
    replaced_list = with_block_hidden([old, extra], new)
    assert isinstance(replaced_list, list) and replaced_list[0] is new and replaced_list[1] is extra
    with pytest.raises(TypeError):
        with_block_hidden({"h": old}, new)


def test_with_block_hidden_on_a_module_returning_a_tuple():
    """Older transformers blocks return (hidden, extras...); a hook must keep the extras."""

    class TupleBlock(nn.Module):
        def forward(self, x):
            return x * 2, "cache"

    block = TupleBlock()
    block.register_forward_hook(lambda m, i, o: with_block_hidden(o, block_hidden(o) + 1))
    hidden, extra = block(torch.ones(1, 2, 3))
    assert torch.equal(hidden, torch.full((1, 2, 3), 3.0)) and extra == "cache"


@pytest.mark.parametrize(
    "module",
    [nn.Linear(2, 2), SimpleNamespace(config=SimpleNamespace(model_type="rwkv"))],
    ids=["no-config", "unknown-model-type"],
)
def test_unknown_architecture_is_a_clear_error(module):
    with pytest.raises(ModelError) as info:
        model_parts(module)
    message = str(info.value)
    assert "unsupported architecture" in message and "\n" not in message
    assert all(t in message for t in table_model_types())
