"""Run-to-run rounding per precision on the real default model, and the re-entry check's bound (issue 15).

    python benchmarks/rounding.py [--model qwen2.5-coder-0.5b] [--precisions float32,bf16-mixed,bfloat16]

Per precision and probe length: the largest logit change, relative to the largest logit, when the same full
forward runs batched with a copy of itself or one token longer (`steering.reentry_check.rounding`, what the check
derives its bound from), the bound, the cached-prefix path's difference from the full forward, and the
check's verdict (`reentry_problem`, "" = exact).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import torch

from vulnsteer.activations.passes import run_prompt
from vulnsteer.model.loading import default_cache_dir, load_model
from vulnsteer.steering import reentry_check as reentry


@torch.inference_mode()
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--precisions", default="float32,bf16-mixed,bfloat16")
    args = ap.parse_args()
    print("| precision | tokens | rounding | bound | cached prefix vs full | check |")
    print("|---|---|---|---|---|---|")
    for name in args.precisions.split(","):
        loaded = load_model(args.model, cache_dir=default_cache_dir() / "models", dtype=name)
        model, parts = loaded.model, replace(loaded.parts, reentry_exact=True)
        vocab = int(parts.unembed.weight.shape[0])
        for length in (reentry._probe_length(model), 64, 200):
            ids = (torch.arange(length) * 13 + 5).remainder(vocab)[None]
            full = model(input_ids=ids, use_cache=False).logits[0, -1]
            noise = reentry.rounding(model, ids, full)
            cached = float((run_prompt(model, parts, ids).answer_logits - full.float()).abs().max()) / reentry._scale(full)
            bound = max(reentry._TOLERANCE, reentry._NOISE_FACTOR * noise)
            # the check runs at the probe length only
            verdict = (reentry.reentry_problem(model, parts) or "exact") if length == reentry._probe_length(model) else "-"
            print(f"| {name} | {length} | {noise:.2e} | {bound:.2e} | {cached:.2e} | {verdict} |", flush=True)


if __name__ == "__main__":
    main()
