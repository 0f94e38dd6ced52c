"""`SteeringVector`: the one type for "a direction, how to apply it, and where it came from", made of three parts:

* `v.directions` (`Directions`, vectors/directions.py): the maths. Per layer a unit direction `u` (oriented
  towards "vulnerable"), the training centre `mu` the amplify/ablate operators project from, and three scales
  an additive strength can be counted in (`raw_norm`, `sigma`, `mean_norm`); a mapping layer -> u.
* `v.application` (`Application`, vectors/application.py): how it applies itself by default (operator, alpha,
  unit, scope: what an experiment chose on validation data), as the enums of vulnsteer.options.
* `v.provenance` (`Provenance`, vectors/provenance.py): method, readout position, model, template, records,
  dataset hash, CWE, creation time, extra.

Each part is frozen and checks itself when built, whichever way the vector was made (by hand, fitted, loaded,
combined). A field is read through its part (`v.application.alpha`, `v.provenance.model_id`), one name per
fact, rather than through 19 pass-through properties; only the shape a notebook reaches for on every line,
`v.layers` and `v.d_model`, is also on the vector. `SteeringVector({layer: tensor})` builds one from raw
directions with the default application and provenance.

`apply(model)` is a context manager, as in steering-vectors; `+`, `-` and `*` work as in repeng's
`ControlVector`; `save`/`load` use safetensors + JSON (vectors/vector_files.py; what `vulnsteer run` saves is
exactly the object its experiment scored); `to_gguf`/`from_gguf` write and read llama.cpp control vectors
(vectors/gguf_io.py). Layer keys are vulnsteer layer indices: the 0-based block whose *output* is steered.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vulnsteer.errors import ModelError, VulnsteerError
from vulnsteer.model.loading import LoadedModel
from vulnsteer.options import Operator, Scope, StrengthUnit
from vulnsteer.vectors.application import Application
from vulnsteer.vectors.directions import Directions
from vulnsteer.vectors.gguf_io import export_control_vector, import_control_vector
from vulnsteer.vectors.hooks import steer
from vulnsteer.vectors.operators import Intervention
from vulnsteer.vectors.provenance import Provenance
from vulnsteer.vectors.vector_files import load_vector, metadata, save_vector


@dataclass(frozen=True, eq=False, init=False)  # eq=False: field-wise == on tensors is ambiguous
class SteeringVector:
    """Per-layer directions with their centres and scales, how to apply them, and provenance.

    `SteeringVector(directions, application=Application(), provenance=Provenance())`; `directions` is a
    `Directions` or a plain {layer: tensor} dict of raw directions (normalised, their norms kept as `raw_norm`,
    so the default `unit="raw"`, `alpha=1` adds exactly what was given).
    """

    # No dataclass defaults: `__init__` below fills the parts (a dict becomes Directions, None the default part).
    directions: Directions
    application: Application
    provenance: Provenance

    def __init__(self, directions: Directions | dict[int, Tensor], application: Application | None = None,
                 provenance: Provenance | None = None) -> None:
        if application is not None and not isinstance(application, Application):
            raise VulnsteerError(f"a steering vector's application must be an Application, not {type(application).__name__}")
        if provenance is not None and not isinstance(provenance, Provenance):
            raise VulnsteerError(f"a steering vector's provenance must be a Provenance, not {type(provenance).__name__}")
        dirs = directions if isinstance(directions, Directions) else Directions(directions)
        object.__setattr__(self, "directions", dirs)
        object.__setattr__(self, "application", application or Application())
        object.__setattr__(self, "provenance", provenance or Provenance())

    def __repr__(self) -> str:
        """One line: the tensors are thousands of numbers a notebook cell has no use for."""
        d, a, p = self.directions, self.application, self.provenance
        return (f"SteeringVector({p.method or 'raw'}, layers={d.layers}, d_model={d.d_model}, "
                f"model={p.model_id or '?'}, applies {a.operator} alpha={a.alpha:g} unit={a.unit} scope={a.scope}, "
                f"stats=[{','.join(d.stats())}], mu={'yes' if d.mu is not None else 'no'}, cwe={p.cwe or '?'}, "
                f"fit on {len(p.record_ids)} records)")

    @property
    def layers(self) -> list[int]:
        return self.directions.layers

    @property
    def d_model(self) -> int:
        return self.directions.d_model

    def at_layer(self, layer: int) -> SteeringVector:
        """The same vector restricted to one layer."""
        return replace(self, directions=self.directions.at_layer(layer))

    def with_application(self, operator: Operator | str, alpha: float, unit: StrengthUnit | str | None = None,
                         scope: Scope | str | None = None) -> SteeringVector:
        """A copy that applies itself with these settings by default (unit and scope: the vector's own when None)."""
        old = self.application
        return replace(self, application=Application(Operator(operator), alpha,
                                                     StrengthUnit(unit or old.unit), Scope(scope or old.scope)))

    def metadata(self) -> dict[str, Any]:
        """The JSON-able description (everything but the tensors), as the vector's .json stores it."""
        return metadata(self.directions, self.application, self.provenance)

    # ----------------------------------------------------------------- applying
    def interventions(self, alpha: float | None = None, operator: Operator | str | None = None,
                      unit: StrengthUnit | str | None = None) -> list[Intervention]:
        """One `Intervention` per layer (the hook-level edit); None: the vector's own setting."""
        own = self.application
        op = Operator(operator or own.operator)
        a = own.alpha if alpha is None else float(alpha)  # Intervention checks it is finite
        if op is Operator.ADD:
            return [Intervention(layer, op, offset, a)
                    for layer, offset in self.directions.offsets(1.0, unit or own.unit).items()]
        mu = self.directions.mu
        return [Intervention(layer, op, u, a if op is Operator.AMPLIFY else 1.0, None if mu is None else mu[layer])
                for layer, u in self.directions.items()]

    @contextmanager
    def apply(
        self,
        model: Any,
        alpha: float | None = None,
        operator: Operator | str | None = None,
        unit: StrengthUnit | str | None = None,
        scope: Scope | str | None = None,
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
        prov = self.provenance
        if isinstance(model, LoadedModel):
            if prov.model_hash and prov.model_hash != model.source_hash and not force:
                raise ModelError(f"this steering vector was built on {prov.model_id or prov.model_hash[:12]}, not "
                                 f"{model.model_id}; apply it to the model it was fit on (force=True to insist)")
            net = model.model
        elif isinstance(model, torch.nn.Module):
            net = model
        else:
            raise VulnsteerError(f"apply steers a LoadedModel (vulnsteer.load_model) or a transformers model, "
                                 f"not a {type(model).__name__}")
        chosen = Scope(scope or self.application.scope)
        ivs = self.interventions(alpha, operator, unit)
        with steer(net, ivs, scope=chosen, prompt_len=prompt_len, span=span):
            yield

    # ----------------------------------------------------------------- arithmetic (repeng's ControlVector)
    def offsets(self) -> dict[int, Tensor]:
        """What `apply` adds by default at each layer: alpha x scale(unit) x u (additive vectors only)."""
        a = self.application
        if a.operator is not Operator.ADD:
            raise VulnsteerError(f"+ and - combine additive vectors; this one applies with operator "
                                 f"{a.operator.value!r} (use with_application('add', alpha) first)")
        return self.directions.offsets(a.alpha, a.unit)

    def __add__(self, other: SteeringVector) -> SteeringVector:
        """What the two add together, each at its own alpha and unit. Being a new direction, the sum has no
        training statistics and applies in raw lengths (alpha 1 = exactly the sum)."""
        if not isinstance(other, SteeringVector):
            return NotImplemented
        p, q = self.provenance, other.provenance
        if other.d_model != self.d_model:
            raise VulnsteerError(f"cannot add vectors of widths {self.d_model} and {other.d_model}")
        if other.application.scope is not self.application.scope:
            raise VulnsteerError(f"cannot add vectors applied in scopes {self.application.scope.value!r} and "
                                 f"{other.application.scope.value!r}")
        if p.model_hash and q.model_hash and p.model_hash != q.model_hash:
            raise VulnsteerError(f"cannot add vectors of two models ({p.model_id} and {q.model_id})")
        x, y = self.offsets(), other.offsets()
        zero = torch.zeros(self.d_model)
        summed = {k: x.get(k, zero) + y.get(k, zero) for k in sorted(set(x) | set(y))}
        return SteeringVector(summed, Application(scope=self.application.scope), Provenance(
            method=f"({p.method}+{q.method})", position=p.position, model_id=p.model_id or q.model_id,
            model_hash=p.model_hash or q.model_hash, template_id=p.template_id, cwe=p.cwe,
            extra={"combined_from": [self.metadata(), other.metadata()]}))

    def __mul__(self, k: float) -> SteeringVector:
        """k x the additive steering: `(k * v).apply(m, alpha=a)` adds what `v.apply(m, alpha=k * a)` adds in
        whichever of raw, sigma, mean_norm the vector applies (a strength in `unit="unit"` counts lengths of the
        unit direction, which k does not change); k < 0 reverses the direction. Amplify and ablate project onto
        the direction, which k leaves alone."""
        if isinstance(k, bool) or not isinstance(k, (int, float)):
            return NotImplemented
        extra = self.provenance.extra
        return replace(self, directions=self.directions.scaled(float(k)), provenance=replace(
            self.provenance, extra={**extra, "scaled_by": float(k) * float(extra.get("scaled_by", 1.0))}))

    __rmul__ = __mul__

    def __neg__(self) -> SteeringVector:
        return self * -1.0

    def __sub__(self, other: SteeringVector) -> SteeringVector:
        return self + (-other)

    # ----------------------------------------------------------------- files
    def save(self, path_stem: str | Path) -> tuple[Path, Path]:
        """Write `<stem>.safetensors` and `<stem>.json`; returns both paths."""
        return save_vector(self.directions, self.application, self.provenance, path_stem)

    @classmethod
    def load(
        cls, path_stem: str | Path, expect_model_hash: str | None = None, expect_d_model: int | None = None
    ) -> SteeringVector:
        """Read a saved vector; refuses a missing, mismatched or invalid file, or one built for another model."""
        return cls(*load_vector(path_stem, expect_model_hash, expect_d_model))

    def to_gguf(self, path: str | Path, model_hint: str | None = None, alpha: float | None = None) -> Path:
        """Write a llama.cpp control vector of the additive offset (alpha x unit x direction per layer).

        `model_hint`: the model's architecture (e.g. "qwen2"); by default the one recorded when the vector
        was trained, else its model id. Refuses a vector that applies by amplify or ablate, or at a scope other
        than "all": llama.cpp only adds, at every token (the file records `vulnsteer.scope` = "all").
        """
        a, p = self.application, self.provenance
        if a.operator is not Operator.ADD:
            raise VulnsteerError(f"this vector applies with operator {a.operator.value!r}, but llama.cpp control "
                                 "vectors only add; export with_application('add', alpha) instead")
        if a.scope is not Scope.ALL:
            raise VulnsteerError(
                f"this vector steers scope {a.scope.value!r}, but llama.cpp adds a control vector at every token; "
                "export vector.with_application('add', alpha, scope='all') if that is what you mean to serve")
        hint = model_hint or str(p.extra.get("architecture") or p.model_id.split("@")[0])
        if not hint:
            raise VulnsteerError("to_gguf needs model_hint (the model's architecture, e.g. 'qwen2'): the vector "
                                 "does not record its model")
        return export_control_vector(self.directions.offsets(1.0, a.unit), self.metadata(), Path(path), hint,
                                     alpha=a.alpha if alpha is None else alpha)

    @classmethod
    def from_gguf(cls, path: str | Path) -> SteeringVector:
        """Read a llama.cpp / repeng / vulnsteer control-vector GGUF; it applies as stored (add, alpha 1, raw)."""
        directions, provenance = import_control_vector(Path(path))
        return cls(directions, Application(), provenance)
