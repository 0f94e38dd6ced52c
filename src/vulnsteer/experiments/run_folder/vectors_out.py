"""Write the steering vectors a run chose, one per fold (and CWE), exactly as the experiment scored them
(directions, centres, scales, operator, strength, unit, scope), with provenance; and as llama.cpp control
vectors where llama.cpp applies them as the experiment did (additive, not block 0, scope "all": llama.cpp adds
at every token, so a strength chosen at the answer position or the code's tokens is not exported)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from vulnsteer.experiments.run_folder.run_dir import RunDir
from vulnsteer.experiments.steer_results import SteerResult
from vulnsteer.options import Operator, Scope
from vulnsteer.prompting.context import Context


def save_chosen_vectors(ctx: Context, run: RunDir, templates: Sequence[str], result: SteerResult) -> list[str]:
    """`templates`: the prompt template each fold steered under. Returns the written file stems, relative to
    the run folder. The record ids and dataset hash were set when the vector was fit (vectors.training), from
    the fold's own training records."""
    written = []
    for f, (choice, chosen) in enumerate(zip(result.choices, result.vectors)):
        for key, vector in sorted(chosen.items()):
            prov = vector.provenance
            sv = replace(vector, provenance=replace(
                prov, model_id=ctx.loaded.model_id, model_hash=ctx.loaded.source_hash, template_id=templates[f],
                extra={**prov.extra, "fold": f, "val_metrics": choice.val_metrics},
            ))
            stem = f"steer/vectors/fold{f}-{key}"
            sv.save(run.path / stem)
            written.append(stem)
            if sv.application.operator is Operator.ADD and min(sv.layers) > 0 and sv.application.scope is Scope.ALL:
                sv.to_gguf(run.path / f"{stem}.gguf", ctx.loaded.parts.model_type)
    return written
