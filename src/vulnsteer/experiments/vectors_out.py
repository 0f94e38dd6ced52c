"""Write the steering vectors a run chose, one per fold (and CWE), as safetensors + JSON with provenance,
and as llama.cpp control vectors where llama.cpp can apply them (additive, not block 0)."""

from __future__ import annotations

import hashlib

import numpy as np

from vulnsteer.experiments.context import Context, RunDir
from vulnsteer.experiments.samples import SampleSet
from vulnsteer.experiments.steer import SteerConfig, SteerResult, training_set
from vulnsteer.vectors.gguf_io import export_control_vector
from vulnsteer.vectors.steering_vector import SteeringVector


def save_chosen_vectors(
    ctx: Context, run: RunDir, main: SampleSet, extra: SampleSet | None, result: SteerResult, cfg: SteerConfig
) -> list[str]:
    """Returns the written file stems, relative to the run folder."""
    written = []
    for f, (choice, chosen) in enumerate(zip(result.choices, result.directions)):
        train, val, test = result.folds.split(f)
        _, records = training_set(main, extra, train, np.concatenate([val, test]))
        for key, d in sorted(chosen.items()):
            used = [r for r in records if key in ("pooled", r.cwe)]
            digest = hashlib.sha256("".join(sorted(r.sha256 for r in used)).encode()).hexdigest()
            additive = choice.setting.operator == "add"
            sv = SteeringVector(
                directions={d.layer: d.u * d.scale(cfg.strength_unit) if additive else d.u},
                mu={d.layer: d.mu},
                method=d.method,
                position="answer",
                model_id=ctx.loaded.model_id,
                model_hash=ctx.loaded.source_hash,
                template_id=main.samples[0].template_id,
                record_ids=sorted(r.id for r in used),
                dataset_hash=digest,
                cwe=key,
                scaling=cfg.strength_unit if additive else "unit",
                extra={"fold": f, "operator": choice.setting.operator, "alpha": choice.setting.alpha,
                       "val_metrics": choice.val_metrics},
            )
            stem = f"steer/vectors/fold{f}-{key}"
            sv.save(run.path / stem)
            written.append(stem)
            if additive and d.layer > 0:
                hint = ctx.loaded.parts.model_type
                export_control_vector(sv, run.path / f"{stem}.gguf", hint, alpha=choice.setting.alpha)
    return written
