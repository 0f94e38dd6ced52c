"""What a steering direction does to one residual-stream vector: add, amplify or ablate.

Notation: v is the direction as built (e.g. a CAA mean difference, unnormalised), u = v / |v|, mu the mean
training activation at that layer (zeros when unknown), alpha the strength.

* add (CAA):         h + alpha * v
* amplify:           h + alpha * ((h - mu) . u) u
* ablate:            h - ((h - mu) . u) u

`add` shifts every input by the same offset. `amplify` scales how far each input already lies along u
(measured from the training mean), so inputs on opposite sides of mu move in opposite directions; alpha = -1
removes that component and equals `ablate`. `ablate` is mean ablation: the component along u is set to mu's
instead of to zero, which keeps activations near the data the model saw (zeroing it can push them off
distribution when mu . u is large). With mu = None both forms are the usual directional ablation
h - (h . u) u. `ablate` ignores alpha; `add` ignores mu.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from vulnsteer.errors import VulnsteerError
from vulnsteer.options import Operator


@dataclass(frozen=True, eq=False)  # eq=False: field-wise == on tensors is ambiguous
class Intervention:
    """One direction applied with one operator to the OUTPUT residual of block `layer` (0-based).

    Block k's output is `hidden_states[k + 1]` in transformers' numbering (index 0 is the embeddings).
    """

    layer: int
    operator: Operator  # text ("add") is accepted and turned into the enum here
    direction: Tensor  # [d], raw as built
    alpha: float = 1.0
    mu: Tensor | None = None  # [d], training mean at this layer; None -> zeros

    def __post_init__(self) -> None:
        object.__setattr__(self, "operator", Operator(self.operator))  # frozen: converted once, here
        if not isinstance(self.layer, int) or isinstance(self.layer, bool) or self.layer < 0:
            raise VulnsteerError(f"steering layer must be a block index >= 0, got {self.layer!r}")
        if not isinstance(self.direction, Tensor) or self.direction.ndim != 1:
            raise VulnsteerError("steering direction must be a 1-D tensor [d_model]")
        if not torch.isfinite(self.direction).all():
            raise VulnsteerError(f"steering direction for layer {self.layer} contains NaN or inf")
        if self.operator is not Operator.ADD and float(self.direction.norm()) == 0.0:
            raise VulnsteerError(f"{self.operator} needs a non-zero direction (layer {self.layer})")
        if not math.isfinite(float(self.alpha)):
            raise VulnsteerError(f"steering alpha must be finite, got {self.alpha!r}")
        if self.mu is not None and (not isinstance(self.mu, Tensor) or self.mu.shape != self.direction.shape):
            raise VulnsteerError(
                f"mu must be a tensor of shape {tuple(self.direction.shape)} like the direction (layer {self.layer})"
            )

    @property
    def d_model(self) -> int:
        return int(self.direction.shape[0])

    def unit(self) -> Tensor:
        """u = v / |v| in float32."""
        v = self.direction.float()
        return v / v.norm()


def apply(h: Tensor, iv: Intervention) -> Tensor:
    """`h` [..., d] after the intervention; same shape, dtype and device as `h`."""
    if h.shape[-1] != iv.d_model:
        raise VulnsteerError(f"direction has d={iv.d_model} but the activation has d={h.shape[-1]}")
    if iv.operator is Operator.ADD:
        return h + (iv.alpha * iv.direction.to(device=h.device, dtype=torch.float32)).to(h.dtype)
    # Projections in float32: in bf16 the dot product over thousands of dims loses most of its precision.
    u = iv.unit().to(h.device)
    centred = h.float() if iv.mu is None else h.float() - iv.mu.to(device=h.device, dtype=torch.float32)
    coef = centred @ u  # [...]
    scale = iv.alpha if iv.operator is Operator.AMPLIFY else -1.0
    return h + (scale * coef.unsqueeze(-1) * u).to(h.dtype)


def fingerprint(interventions: Sequence[Intervention]) -> list[str | Tensor]:
    """What identifies `interventions` in a stored result's key (activations/cache.py `result_key`): each one's
    layer, operator and strength as text, its direction and mean as tensors (their exact bytes)."""
    parts: list[str | Tensor] = []
    for iv in interventions:
        parts += [f"{iv.layer}|{iv.operator.value}|{float(iv.alpha)!r}", iv.direction, "mu" if iv.mu is not None else "-"]
        if iv.mu is not None:
            parts.append(iv.mu)
    return parts
