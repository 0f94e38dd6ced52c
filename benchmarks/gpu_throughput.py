"""Forward throughput on a GPU for a model of the default model's shape, built from a config (random
weights, no download), per precision; then vulnsteer's own pass and a 24 x 6 sweep on that device.

    python benchmarks/gpu_throughput.py [--device cuda] [--tokens 256] [--batch 8]

Run by benchmarks/gpu_check.sh. Random weights compute exactly as many multiply-adds as trained ones.
"""

from __future__ import annotations

import argparse
import time

import torch
from transformers import AutoModelForCausalLM

from vulnsteer.activations.passes import run_prompt
from vulnsteer.activations.scoring import AnswerWords
from vulnsteer.model.architecture import model_parts
from vulnsteer.model.precision import TORCH_DTYPES, Precision, resolve_device
from vulnsteer.model.tiny import tiny_config
from vulnsteer.options import StrengthUnit
from vulnsteer.steering.sweep import score_interventions
from vulnsteer.vectors.application import Application
from vulnsteer.vectors.provenance import Provenance
from vulnsteer.vectors.steering_vector import SteeringVector


def qwen05b_config():
    """Qwen2.5-Coder-0.5B's shape: 24 blocks, d=896, 14 heads (2 KV), MLP 4864, 151,936 tokens, tied."""
    cfg = tiny_config("qwen2", n_layers=24, d_model=896)
    cfg.num_attention_heads, cfg.num_key_value_heads = 14, 2
    cfg.intermediate_size, cfg.vocab_size, cfg.tie_word_embeddings = 4864, 151936, True
    return cfg


def synced(device: torch.device, fn) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    device = resolve_device(args.device)
    cfg = qwen05b_config()
    for precision in Precision:
        dtype = TORCH_DTYPES[precision]
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).to(dtype).to(device).eval()
        parts = model_parts(model)
        params = sum(p.numel() for p in model.parameters()) - parts.embed.weight.numel() + parts.unembed.weight.numel()
        ids = torch.randint(0, cfg.vocab_size, (args.batch, args.tokens), device=device)
        with torch.inference_mode():
            model(input_ids=ids, use_cache=False, logits_to_keep=1)  # warm-up
            seconds = synced(device, lambda: [model(input_ids=ids, use_cache=False) for _ in range(args.repeats)])
            n = args.batch * args.tokens * args.repeats
            a = torch.randn(args.batch * args.tokens, cfg.hidden_size, device=device, dtype=dtype)
            w = torch.randn(cfg.hidden_size, cfg.intermediate_size, device=device, dtype=dtype)
            a @ w
            mm = synced(device, lambda: [a @ w for _ in range(50)])
        peak = 2 * a.shape[0] * cfg.hidden_size * cfg.intermediate_size * 50 / mm / 1e9
        achieved = 2 * params * n / seconds / 1e9
        print(f"{precision.value} on {device}: forward {n / seconds:,.0f} tokens/s, {achieved:,.0f} GFLOP/s; "
              f"matmul {peak:,.0f} GFLOP/s ({achieved / peak:.0%} of it)")
        # vulnsteer's own path on the device: one prompt pass, then a 24-layer x 6-strength sweep on it
        state = run_prompt(model, parts, ids[:1], span=(0, 16))
        g = torch.Generator().manual_seed(0)
        ivs = []
        for layer in range(parts.n_layers):
            v = SteeringVector({layer: torch.randn(parts.d_model, generator=g)}, Application(unit=StrengthUnit.UNIT),
                               Provenance(method="random"))
            ivs += [iv for s in (-4.0, -2.0, -1.0, 1.0, 2.0, 4.0) for iv in v.interventions(s, "add")]
        words = AnswerWords((1, 2), (3, 4))
        sweep = synced(device, lambda: score_interventions(parts, state, ivs, words))
        scores = score_interventions(parts, state, ivs, words)
        assert scores.device.type == "cpu" and scores.dtype == torch.float32 and torch.isfinite(scores).all()
        print(f"  sweep of {len(ivs)} configurations on one {args.tokens}-token prompt: {sweep:.2f} s")
        model = state = None  # free before the next precision


if __name__ == "__main__":
    main()
