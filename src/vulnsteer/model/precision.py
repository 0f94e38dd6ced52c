"""The precision a model computes in and the device it runs on.

The model cache holds one float32 copy; every other precision is derived from it at load time
(`to_precision`): casting 0.5B float32 weights to bfloat16 takes well under a second, far less than
reading a second cached copy would save. Whatever the model computes in, what vulnsteer stores
(residuals, means, projections, PCA, probes, steering directions) stays float32 on the CPU: only the
forward passes change precision.

int8 (int8 weights per channel, dynamic per-token int8 activations, through torchao) was measured and
failed the fidelity bar on the default model (docs/BENCHMARKS.md), so it is not offered here;
benchmarks/precision.py still measures it. bfloat16 failed the bar too (answer-score Spearman 0.94,
probe curve off by up to 0.087 AUROC), so it is offered but float32 stays the default.

bf16-mixed runs only the blocks' Linear layers in bfloat16: their weights are stored in bfloat16 and their
inputs rounded to it, and each output comes back to float32 before the (float32) bias and residual add.
Everything that accumulates across layers (the residual stream, norms, attention scores, softmax) and the
unembedding stay float32. Measured on the default model (benchmarks/precision.py): rounding the weights
alone leaves answer scores unchanged (max difference 0.005); what costs fidelity in plain bfloat16 is the
bf16 residual stream and unembedding, which this mode keeps in float32. Its prompt passes run 1.8x to 3.3x
faster than float32's. Its sweep once crawled because the re-entry check's float32 bound sent it to one
full forward per configuration; the bound now follows the precision's own rounding (`steering.reentry_check`).
What remains of one-token work is profiled in docs/BENCHMARKS.md. On the 48 hand-crafted files it misses the
fidelity bar by one criterion (the probe curve moves by up to 0.029 AUROC, the bar allows 0.02), so float32
stays the default; on 500 SVEN files it passes (0.019), so a large study cell may choose it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vulnsteer.errors import ModelError, VulnsteerError
from vulnsteer.options import DEFAULT_PRECISION, Device, Precision

__all__ = ["DEFAULT_PRECISION", "Device", "Precision", "TORCH_DTYPES", "parse_precision", "resolve_device"]


# The dtype of the tensors a forward carries between layers (the residual stream).
TORCH_DTYPES: dict[Precision, torch.dtype] = {
    Precision.FLOAT32: torch.float32, Precision.BF16_MIXED: torch.float32, Precision.BFLOAT16: torch.bfloat16,
}


def parse_precision(value: Precision | str) -> Precision:
    try:
        return Precision(value)  # a Precision, or its value string
    except (ValueError, VulnsteerError):
        names = ", ".join(p.value for p in Precision)
        hint = " (int8 failed the fidelity bar, see docs/BENCHMARKS.md)" if value == "int8" else ""
        raise ModelError(f"unknown dtype {value!r}{hint}; use one of {names}") from None


def resolve_device(value: Device | str | torch.device) -> torch.device:
    """`auto` -> cuda if available, else mps if available, else cpu; an unavailable device is an error."""
    requested: torch.device | None
    if isinstance(value, torch.device):
        kind, requested = value.type, value
    else:
        text = value.value if isinstance(value, Device) else str(value)  # str() of a str-Enum is "Device.AUTO"
        try:
            kind = Device(text.split(":")[0]).value
            requested = None if kind == "auto" else torch.device(text)
        except (ValueError, RuntimeError, VulnsteerError):
            raise ModelError(f"unknown device {text!r}; use one of {', '.join(d.value for d in Device)}") from None
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    assert requested is not None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"device {requested} asked for but this torch has no usable CUDA; "
                         "install a CUDA build of torch or use --device cpu")
    if kind == "mps" and not _mps_available():
        raise ModelError(f"device {requested} asked for but MPS is not available here; "
                         "use --device cpu (MPS needs Apple silicon)")
    return requested


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


# torch 2.13's CPU kernel for a bfloat16 Linear takes a slow path on a strided input: a [48, 1, 896] view
# took 224 ms against 0.76 ms contiguous (/tmp/s3/smallm2.py, this machine). Prefill passes contiguous
# activations, but batched decoding and the sweep's re-entry pass views, so both bfloat16 Linears below
# hand F.linear a contiguous input (free when it already is).


class ContiguousLinear(nn.Linear):
    """nn.Linear with a contiguous input: plain bfloat16's Linear layers (see the comment above)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.contiguous(), self.weight, self.bias)


class MixedLinear(nn.Linear):
    """A Linear whose matmul runs in bfloat16 and whose output, bias and everything after are float32.

    Assigned as the `__class__` of an existing nn.Linear (`to_precision`), so module names, hooks and the
    model's structure stay as they were.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x.to(self.weight.dtype).contiguous(), self.weight).to(x.dtype)
        return y if self.bias is None else y + self.bias.to(x.dtype)


def _output_linears(model: nn.Module) -> set[int]:
    getter = getattr(model, "get_output_embeddings", None)
    out = getter() if callable(getter) else None
    return {id(out)} if isinstance(out, nn.Linear) else set()


def to_precision(model: nn.Module, precision: Precision | str) -> nn.Module:
    """Convert a loaded float32 model in place to `precision` (returns it)."""
    p = parse_precision(precision)
    if p is Precision.FLOAT32:
        return model.to(torch.float32)
    if p is Precision.BFLOAT16:
        model = model.to(torch.bfloat16)
        for module in model.modules():
            if type(module) is nn.Linear:
                module.__class__ = ContiguousLinear
        return model
    keep = _output_linears(model)  # the unembedding reads the answer: float32 (see the module docstring)
    for module in model.modules():
        if type(module) is nn.Linear and id(module) not in keep:
            module.weight.data = module.weight.data.to(torch.bfloat16)
            module.__class__ = MixedLinear
    return model


def model_device(model: nn.Module) -> torch.device:
    """Where the model's weights live: inputs of a forward go there."""
    return next(model.parameters()).device
