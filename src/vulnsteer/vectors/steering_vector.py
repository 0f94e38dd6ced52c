"""`SteeringVector`: the one type for "a direction, how to apply it, and where it came from".

A vector holds, per layer, a unit direction `u` (oriented towards "vulnerable"), the training centre
`mu` the amplify/ablate operators project from, and three scales an additive strength can be counted
in (`StrengthUnit`): the spread `sigma` of the training projections onto `u`, the mean residual norm at
that layer, and the norm of the direction as the method built it (`raw_norm`). It also carries how it
is meant to be applied (operator, alpha, unit, scope: what an experiment chose on validation data) and
its provenance. `apply(model)` is a context manager, as in steering-vectors; `+`, `-` and `*` work as
in repeng's `ControlVector`; `save`/`load` use safetensors + JSON; `to_gguf`/`from_gguf` write and read
llama.cpp control vectors.

Layer keys are vulnsteer layer indices: the 0-based block whose *output* is read and steered.

Its fields and their validation are in `VectorData` (vectors/vector_data.py); this module adds applying it,
the arithmetic (vectors/arithmetic.py) and its files: safetensors + JSON (vectors/vector_files.py; what
`vulnsteer run` saves is exactly the object its experiment scored) and GGUF (vectors/gguf_io.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from vulnsteer.errors import ModelError, VulnsteerError
from vulnsteer.model.loading import LoadedModel
from vulnsteer.options import Operator, Scope
from vulnsteer.vectors.arithmetic import add_vectors, scale_vector
from vulnsteer.vectors.gguf_io import export_control_vector, import_control_vector
from vulnsteer.vectors.hooks import steer
from vulnsteer.vectors.vector_data import VectorData
from vulnsteer.vectors.vector_files import load_vector, save_vector


class SteeringVector(VectorData):
    """Per-layer unit directions with their centres and scales, how to apply them, and provenance.

    `directions` may be given un-normalised (a raw mean difference, say) when `raw_norm` is None: they are
    then normalised and their norms kept as `raw_norm`, so `unit="raw"` adds exactly what was given.
    `sigma`/`mean_norm`/`mu` are None when unknown (e.g. after a GGUF import); operators needing them refuse.
    Fields: `VectorData`.
    """

    @contextmanager
    def apply(
        self,
        model: Any,
        alpha: float | None = None,
        operator: str | None = None,
        unit: str | None = None,
        scope: str | None = None,
        prompt_len: Any = None,
        span: Any = None,
        force: bool = False,
    ) -> Iterator[None]:
        """Steer `model` (a `LoadedModel` or a transformers model) inside the block; restored on exit.

        Arguments left None take the vector's own settings (what the experiment that built it chose).
        Scope "answer" steers the last prompt token; without `prompt_len` it is read from the first
        forward without a KV cache (the prompt), so `model.generate(...)` and a plain call both work.
        Scope "span" steers the token range `span` = (start, end) (one pair, or one per row).
        A vector built on another model (by source hash) is refused unless `force=True`: a direction is
        meaningless in another model's residual stream even where the widths agree.
        """
        net: torch.nn.Module
        if isinstance(model, LoadedModel):
            if self.model_hash and self.model_hash != model.source_hash and not force:
                raise ModelError(f"this steering vector was built on {self.model_id or self.model_hash[:12]}, not "
                                 f"{model.model_id}; apply it to the model it was fit on (force=True to insist)")
            net = model.model
        elif isinstance(model, torch.nn.Module):
            net = model
        else:
            raise VulnsteerError(f"apply steers a LoadedModel (vulnsteer.load_model) or a transformers model, "
                                 f"not a {type(model).__name__}")
        chosen = Scope(scope or self.scope).value
        ivs = self.interventions(alpha, operator, unit)
        with steer(net, ivs, scope=chosen, prompt_len=prompt_len, span=span):  # type: ignore[arg-type]
            yield

    # ----------------------------------------------------------------- arithmetic (repeng's ControlVector)
    def __add__(self, other: SteeringVector) -> SteeringVector:
        """What the two add together, each at its own alpha and unit (vectors/arithmetic.py)."""
        return add_vectors(self, other) if isinstance(other, SteeringVector) else NotImplemented

    def __mul__(self, k: float) -> SteeringVector:
        """k x the additive steering: `(k * v).apply(m, alpha=a)` adds what `v.apply(m, alpha=k * a)` adds."""
        if isinstance(k, bool) or not isinstance(k, (int, float)):
            return NotImplemented
        return scale_vector(self, float(k))

    __rmul__ = __mul__

    def __neg__(self) -> SteeringVector:
        return self * -1.0

    def __sub__(self, other: SteeringVector) -> SteeringVector:
        return self + (-other)

    # ----------------------------------------------------------------- files
    def save(self, path_stem: str | Path) -> tuple[Path, Path]:
        """Write `<stem>.safetensors` and `<stem>.json`; returns both paths."""
        return save_vector(self, path_stem)

    @classmethod
    def load(
        cls, path_stem: str | Path, expect_model_hash: str | None = None, expect_d_model: int | None = None
    ) -> SteeringVector:
        """Read a saved vector; refuses a missing, mismatched or invalid file, or one built for another model."""
        return load_vector(cls, path_stem, expect_model_hash, expect_d_model)

    def to_gguf(self, path: str | Path, model_hint: str | None = None, alpha: float | None = None) -> Path:
        """Write a llama.cpp control vector of the additive offset (alpha x unit x direction per layer).

        `model_hint`: the model's architecture (e.g. "qwen2"); by default the one recorded when the vector
        was trained, else its model id. Refuses a vector that applies by amplify or ablate: llama.cpp only adds.
        """
        if self.operator != Operator.ADD.value:
            raise VulnsteerError(f"this vector applies with operator {self.operator!r}, but llama.cpp control "
                                 "vectors only add; export with_application('add', alpha) instead")
        hint = model_hint or str(self.extra.get("architecture") or self.model_id.split("@")[0])
        if not hint:
            raise VulnsteerError("to_gguf needs model_hint (the model's architecture, e.g. 'qwen2'): the vector "
                                 "does not record its model")
        return export_control_vector(self, Path(path), hint, alpha=self.alpha if alpha is None else alpha)

    @classmethod
    def from_gguf(cls, path: str | Path) -> SteeringVector:
        """Read a llama.cpp / repeng / vulnsteer control-vector GGUF."""
        return import_control_vector(cls, Path(path))

