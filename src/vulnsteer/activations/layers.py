"""Layer addressing in one place.

A residual stack holds `n_layers + 1` rows per sample: row 0 is the input of block 0 (the embeddings as the
blocks see them), row k + 1 the output of block k. Everywhere else vulnsteer names a layer by the 0-based
block whose *output* it reads or steers; only these functions know about the extra row.
"""

from __future__ import annotations

from torch import Tensor


def block_outputs(stack: Tensor) -> Tensor:
    """[..., n_layers + 1, d] -> [..., n_layers, d]: the outputs of blocks 0..n_layers-1."""
    return stack[..., 1:, :]


def block_output(stack: Tensor, layer: int) -> Tensor:
    """[..., n_layers + 1, d] -> [..., d]: the output of block `layer`."""
    return stack[..., layer + 1, :]
