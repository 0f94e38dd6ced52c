"""torch.profiler tables of the sweep and batched decoding per precision on the default model (issue 15).

    python benchmarks/profile_precision.py [--precisions float32,bf16-mixed] [--samples 4] [--tokens 8]

Per precision: the prompt passes of the first `--samples` hand-crafted CWE-22/CWE-787 files under S1, then
a sweep of 3 layers (8, 12, 16) x 39 additive strengths of seeded random directions on every window, run
twice (the first run pays one-off costs such as oneDNN creating a primitive for each new matrix shape), and
`generate_from_passes` decoding `--tokens` tokens for every window. Each profiled stage prints its wall time
and its top operators by self CPU time.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from vulnsteer.evaluation.generation import generate_from_passes
from vulnsteer.options import StrengthUnit
from vulnsteer.prompting.context import open_context
from vulnsteer.prompting.samples import build_samples, run_samples
from vulnsteer.steering.sweep import score_interventions
from vulnsteer.vectors.application import Application
from vulnsteer.vectors.provenance import Provenance
from vulnsteer.vectors.steering_vector import SteeringVector


def top(prof: profile, n: int = 8) -> str:
    return str(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=n, max_name_column_width=36))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--precisions", default="float32,bf16-mixed")
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=8)
    args = ap.parse_args()
    for name in args.precisions.split(","):
        ctx = open_context(args.model, None, None, ["hand-crafted"], cwes=["CWE-22", "CWE-787"], dtype=name)
        loaded = ctx.loaded
        print(f"{name}: re-entry exact: {loaded.parts.reentry_exact} {loaded.parts.reentry_note}", flush=True)
        samples = build_samples(ctx.records, loaded, "S1", ctx.cwe_names, ctx.data_root)[: args.samples]
        t = time.perf_counter()
        sset = run_samples(samples, loaded, ctx.words, cache=None, keep_states=True, description="passes")
        print(f"{name}: prompt passes, {len(samples)} files: {time.perf_counter() - t:.2f} s", flush=True)
        g = torch.Generator().manual_seed(0)
        ivs = []
        for layer in (8, 12, 16):
            v = SteeringVector({layer: torch.randn(loaded.parts.d_model, generator=g)}, Application(unit=StrengthUnit.UNIT),
                               Provenance(method="random"))
            ivs += [iv for a in torch.linspace(-8, 8, 39).tolist() for iv in v.interventions(a, "add")]
        states = [st for per_file in sset.states or [] for st in per_file]
        for run in (1, 2):
            t = time.perf_counter()
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for st in states:
                    score_interventions(loaded.parts, st, ivs, ctx.words)
            print(f"{name}: sweep of {len(ivs)} configurations on {len(states)} windows, run {run}: "
                  f"{time.perf_counter() - t:.2f} s", flush=True)
            print(top(prof), flush=True)
        ids = [w.input_ids for s in samples for w in s.windows]
        t = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            generate_from_passes(loaded.model, loaded.tokenizer, states, ids, max_new_tokens=args.tokens)
        print(f"{name}: decoding {len(states)} windows x {args.tokens} tokens: {time.perf_counter() - t:.2f} s", flush=True)
        print(top(prof), flush=True)


if __name__ == "__main__":
    main()
