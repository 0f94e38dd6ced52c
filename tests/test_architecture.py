from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from vulnsteer.errors import ModelError
from vulnsteer.model.architecture import model_parts, table_model_types
from vulnsteer.model.parts import block_hidden, with_block_hidden
from vulnsteer.model.sources import TINY_ARCHITECTURES
from vulnsteer.model.structure import search_parts
from vulnsteer.model.tiny import tiny_model

IDS = torch.tensor([[5, 17, 42, 99, 3, 250]])


def test_every_tiny_architecture_is_supported_and_some_only_by_structure():
    found = {arch: model_parts(tiny_model(arch)).found_by for arch in TINY_ARCHITECTURES}
    outside = [arch for arch in TINY_ARCHITECTURES if arch not in table_model_types()]
    assert outside and all(found[arch] == "structure" for arch in outside)
    assert all(found[arch] == "table" for arch in TINY_ARCHITECTURES if arch not in outside)


def test_structure_search_agrees_with_the_table(model, arch):
    """On the architectures the table knows, the search must find the very same modules."""
    searched, table = search_parts(model), model_parts(model)
    assert searched.blocks is table.blocks and searched.final_norm is table.final_norm
    assert searched.embed is table.embed and searched.unembed is table.unembed


def test_falcon_is_found_by_structure():
    model = tiny_model("falcon")
    assert "falcon" not in table_model_types()
    parts = model_parts(model)
    assert parts.found_by == "structure" and parts.model_type == "falcon"
    assert parts.blocks is model.transformer.h and parts.final_norm is model.transformer.ln_f
    assert parts.embed is model.transformer.word_embeddings and parts.unembed is model.lm_head


def _reordered(parent: nn.Module, name: str, module: nn.Module, after: str) -> None:
    """Register `module` as `name` right after child `after`: the search reads the registration order."""
    items = list(parent._modules.items())
    at = [n for n, _ in items].index(after) + 1
    parent._modules = dict(items[:at] + [(name, module)] + items[at:])


def test_a_block_list_the_forward_never_runs_is_refused():
    model = tiny_model("olmo2")  # outside the table
    _reordered(model.model, "decoys", nn.ModuleList(nn.Linear(64, 64) for _ in range(4)), "embed_tokens")
    assert search_parts(model).blocks is model.model.decoys  # the search alone is fooled...
    with pytest.raises(ModelError) as info:
        model_parts(model)  # ...the recorded forward is not
    assert "0 of the 4 blocks found ran" in str(info.value) and "\n" not in str(info.value)


def test_a_norm_the_forward_does_not_apply_last_is_refused():
    model = tiny_model("stablelm")
    _reordered(model.model, "aux_norm", nn.LayerNorm(64), "layers")
    with torch.no_grad():
        model.model.aux_norm.weight.mul_(3.0)
    assert search_parts(model).final_norm is model.model.aux_norm
    with pytest.raises(ModelError, match="hidden state 4 \\(the final norm\\)"):
        model_parts(model)


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
    ids=["no-config", "not-a-module"],
)
def test_unknown_architecture_is_a_clear_error(module):
    with pytest.raises(ModelError) as info:
        model_parts(module)
    message = str(info.value)
    assert "unsupported architecture" in message and "\n" not in message
    assert all(t in message for t in table_model_types())


def test_a_model_without_a_block_list_is_refused():
    class Flat(nn.Module):
        config = SimpleNamespace(model_type="flat")

        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(4, 4)

    with pytest.raises(ModelError, match="no list of decoder blocks found"):
        model_parts(Flat())
