"""Speed of the parts a sweep depends on, measured in one run on this machine; prints ratios.

    python benchmarks/bench.py [--model qwen2.5-coder-0.5b] [--prompts 48] [--skip-cold]
                               [--dtype D] [--precisions float32,bf16-mixed,bfloat16] [--run-wall [--keep-runs DIR]]

(1) all-layer extraction / plain forward  (2) 24 layers x 6 strengths sweep / one baseline pass
(3) the naive sweep (one full forward per configuration), estimated from measured forward time
(4) cold vs warm model load  (5) achieved GFLOP/s of a forward against 2 x params x tokens
(1)-(5) run at --dtype (default: the package default precision).
(6) per precision: forward tokens/s and achieved GFLOP/s, beside a matmul of the MLP's shape in the same
    precision (the practical peak of this machine at that precision); int8 (torchao, not offered by
    vulnsteer, see docs/BENCHMARKS.md) can be listed too
(7) with --run-wall: wall time of `vulnsteer run` (defaults) per precision, in a subprocess each
(8) with --study-wall PRESET (alone: (1)-(7) are skipped): wall time of `vulnsteer study --preset PRESET`
    cold (an empty activation cache; the converted model is reused, its cold load is line (4)), warm (the same
    study into a new folder with that cache) and rerun (the same command into the same folder: every cell
    finished, skipped), each in a subprocess, with each stage's time summed over the cells
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from vulnsteer.activations.passes import run_prompt
from vulnsteer.model.loading import default_cache_dir, load_model
from vulnsteer.model.precision import DEFAULT_PRECISION, TORCH_DTYPES, Precision, to_precision
from vulnsteer.options import StrengthUnit
from vulnsteer.prompting.context import open_context
from vulnsteer.prompting.samples import build_samples
from vulnsteer.steering.sweep import score_interventions
from vulnsteer.vectors.application import Application
from vulnsteer.vectors.provenance import Provenance
from vulnsteer.vectors.steering_vector import SteeringVector

STRENGTHS = (-4.0, -2.0, -1.0, 1.0, 2.0, 4.0)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--prompts", type=int, default=48)
    ap.add_argument("--skip-cold", action="store_true", help="skip (4): a cold load dequantises the GGUF (minutes)")
    ap.add_argument("--dtype", default=DEFAULT_PRECISION.value, help="precision of (1)-(5)")
    ap.add_argument("--precisions", default="float32,bf16-mixed,bfloat16", help="comma list for (6) and (7); int8 needs torchao")
    ap.add_argument("--run-wall", action="store_true", help="(7): time `vulnsteer run` per precision (long)")
    ap.add_argument("--keep-runs", type=Path, default=None,
                    help="(7) writes its run folders here (<dir>/<precision>) and keeps them; default: a temporary folder")
    ap.add_argument("--study-wall", metavar="PRESET", default=None, help="(8) only: time `vulnsteer study --preset PRESET`")
    ap.add_argument("--study-runs", default="cold,warm,rerun", help="(8): which of cold, warm, rerun")
    ap.add_argument("--study-dir", type=Path, default=None, help="(8) keeps its study folders and cache here")
    args = ap.parse_args()
    if args.study_wall:
        study_wall(args.study_wall, args.study_dir, [r.strip() for r in args.study_runs.split(",") if r.strip()])
        return

    ctx = open_context(args.model, None, None, ["hand-crafted"], dtype=args.dtype)
    model, parts = ctx.loaded.model, ctx.loaded.parts
    samples = build_samples(ctx.records, ctx.loaded, "S1", ctx.cwe_names, ctx.data_root)[: args.prompts]
    ids = [w.input_ids for s in samples for w in s.windows]  # hand-crafted files: one window each
    n_tokens = sum(int(x.shape[1]) for x in ids)
    print(f"machine: {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}, "
          f"model {ctx.loaded.model_id} ({ctx.loaded.dtype}), {len(ids)} prompts, {n_tokens} tokens")

    with torch.inference_mode():
        model(ids[0])  # warm-up: first-call allocations are not what we measure
        # A plain forward that, like extraction, unembeds only the last position (the strict comparison),
        # and one with logits at every position (what 2 x params x tokens counts, for (5)).
        _, plain = timed(lambda: [model(input_ids=x, use_cache=False, logits_to_keep=1) for x in ids])
        _, full = timed(lambda: [model(input_ids=x, use_cache=False) for x in ids])
        _, extract = timed(lambda: [run_prompt(model, parts, x, keep_reentry=False) for x in ids])
    print(f"(1) all-layer extraction {extract:.1f} s / plain forward {plain:.1f} s = {extract / plain:.2f} "
          f"(plain forward with logits at every position: {full:.1f} s)")

    states, baseline = timed(lambda: [run_prompt(model, parts, x, keep_reentry=True) for x in ids])
    g = torch.Generator().manual_seed(0)
    ivs = []
    for layer in range(parts.n_layers):
        v = SteeringVector({layer: torch.randn(parts.d_model, generator=g)}, Application(unit=StrengthUnit.UNIT),
                           Provenance(method="random"))
        ivs += [iv for a in STRENGTHS for iv in v.interventions(a, "add")]
    _, sweep = timed(lambda: [score_interventions(parts, st, ivs, ctx.words) for st in states])
    print(f"(2) sweep {parts.n_layers} layers x {len(STRENGTHS)} strengths = {len(ivs)} configs x {len(ids)} prompts: "
          f"{sweep:.1f} s on cached prefixes; with its own pass {baseline + sweep:.1f} s "
          f"/ one baseline pass {baseline:.1f} s = {(baseline + sweep) / baseline:.2f}")

    per_forward = plain / len(ids)
    naive = per_forward * len(ivs) * len(ids)
    print(f"(3) naive sweep estimate: {len(ivs) * len(ids)} full forwards x {per_forward:.2f} s = {naive / 3600:.1f} h "
          f"= {naive / (baseline + sweep):.0f}x the cached sweep")

    _, warm = timed(lambda: load_model(args.model, cache_dir=default_cache_dir() / "models"))
    if args.skip_cold:
        print(f"(4) warm load {warm:.1f} s (cold load skipped)")
    else:
        tmp = Path(tempfile.mkdtemp(prefix="vulnsteer-cold-"))
        try:
            _, cold = timed(lambda: load_model(args.model, cache_dir=tmp))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"(4) cold load {cold:.1f} s / warm load {warm:.1f} s = {cold / warm:.0f}x")

    params = matmul_params(model, parts)
    flops = 2 * params * n_tokens
    print(f"(5) forward: {flops / full / 1e9:.1f} GFLOP/s achieved (2 x {params / 1e6:.0f}M params x {n_tokens} tokens "
          f"in {full:.1f} s); median prompt {statistics.median(int(x.shape[1]) for x in ids)} tokens")

    ctx = model = states = None  # free this model before the next precision loads (a del confuses linters)
    names = [p.strip() for p in args.precisions.split(",") if p.strip()]
    for name in names:
        forward_throughput(args.model, name, ids, params)
    if args.run_wall:
        for name in names:
            if name != "int8":  # vulnsteer does not offer int8 (docs/BENCHMARKS.md)
                run_wall(args.model, name, args.keep_runs)


def matmul_params(model, parts) -> int:
    """Parameters that take part in matrix products per token: all but the embedding lookup, plus a
    tied unembedding (a multiply-add per token although it shares the embedding's storage)."""
    embed_params = parts.embed.weight.numel()
    tied = parts.unembed.weight.data_ptr() == parts.embed.weight.data_ptr()
    return sum(p.numel() for p in model.parameters()) - embed_params + (parts.unembed.weight.numel() if tied else 0)


def precision_model(model_name: str, name: str):
    loaded = load_model(model_name, cache_dir=default_cache_dir() / "models", dtype="float32")
    if name == "int8":
        from precision import to_int8  # benchmarks/precision.py, beside this file

        to_int8(loaded)
    else:
        to_precision(loaded.model, name)
    return loaded.model


def matmul_peak(name: str, d: int, ff: int, tokens: int = 256, repeats: int = 20) -> float:
    """GFLOP/s of [tokens, d] x [d, ff] products in precision `name`, the MLP's shape: the practical peak."""
    x = torch.randn(tokens, d)
    if name == "int8":
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

        layer = torch.nn.Linear(d, ff, bias=False)
        quantize_(layer, Int8DynamicActivationInt8WeightConfig())
        fn = lambda: layer(x)  # noqa: E731
    else:
        # bf16-mixed multiplies in bfloat16 (its residual stream, TORCH_DTYPES, is float32)
        dtype = torch.bfloat16 if Precision(name) is Precision.BF16_MIXED else TORCH_DTYPES[Precision(name)]
        a, w = x.to(dtype), torch.randn(d, ff).to(dtype)
        fn = lambda: a @ w  # noqa: E731
    with torch.inference_mode():
        fn()
        _, seconds = timed(lambda: [fn() for _ in range(repeats)])
    return 2 * tokens * d * ff * repeats / seconds / 1e9


def forward_throughput(model_name: str, name: str, ids: list[torch.Tensor], params: int) -> None:
    model = precision_model(model_name, name)
    n_tokens = sum(int(x.shape[1]) for x in ids)
    with torch.inference_mode():
        model(ids[0])
        _, seconds = timed(lambda: [model(input_ids=x, use_cache=False) for x in ids])
    cfg = model.config
    peak = matmul_peak(name, cfg.hidden_size, cfg.intermediate_size)
    achieved = 2 * params * n_tokens / seconds / 1e9
    print(f"(6) {name}: forward {n_tokens / seconds:.0f} tokens/s, {achieved:.1f} GFLOP/s achieved; "
          f"matmul [256 x {cfg.hidden_size}] x [{cfg.hidden_size} x {cfg.intermediate_size}] {peak:.1f} GFLOP/s "
          f"= {achieved / peak:.0%} of that peak")
    model = None  # free it before the next precision loads


def run_wall(model_name: str, name: str, keep: Path | None = None) -> None:
    """`vulnsteer run` with defaults at precision `name`, in its own process (a cold start, as a user has);
    its run folder is kept under `keep` when given (to read its report), else removed."""
    out = Path(tempfile.mkdtemp(prefix=f"vulnsteer-wall-{name}-")) if keep is None else keep
    target = out / (name if keep is not None else "run")
    cmd = [sys.executable, "-m", "vulnsteer", "run", "--model", model_name, "--dtype", name, "--out", str(target)]
    try:
        done, seconds = timed(lambda: subprocess.run(cmd, env=os.environ.copy(), capture_output=True, text=True))
        status = "ok" if done.returncode == 0 else f"failed ({done.stderr.strip().splitlines()[-1:]})"
        print(f"(7) vulnsteer run --dtype {name}: {seconds / 60:.1f} min wall, {status}"
              + (f", run folder {target}" if keep is not None else ""), flush=True)
    finally:
        if keep is None:
            shutil.rmtree(out, ignore_errors=True)


def study_wall(preset: str, keep: Path | None, runs: list[str]) -> None:
    """(8): `vulnsteer study --preset PRESET` cold, warm and rerun, each in its own process."""
    import json

    root = Path(tempfile.mkdtemp(prefix="vulnsteer-study-")) if keep is None else keep
    cache = root / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    if not (cache / "models").exists():  # the converted model is reused: its cold load is line (4)
        (cache / "models").symlink_to(default_cache_dir() / "models")
    folders = {"cold": root / "cold", "warm": root / "warm", "rerun": root / "cold"}
    try:
        for which in runs:
            out = folders[which]
            cmd = [sys.executable, "-m", "vulnsteer", "study", "--preset", preset, "--out", str(out),
                   "--cache-dir", str(cache)]
            with open(root / f"{which}.log", "w") as log:
                done, seconds = timed(lambda: subprocess.run(cmd, env=os.environ.copy(), stdout=log, stderr=log))
            stages: dict[str, float] = {}
            for cfg in sorted(out.glob("cells/*/config.json")):
                for name, sec in json.loads(cfg.read_text()).get("stage_seconds", {}).items():
                    stages[name] = stages.get(name, 0.0) + float(sec)
            status = "ok" if done.returncode == 0 else f"failed (exit {done.returncode}, {root / (which + '.log')})"
            print(f"(8) vulnsteer study --preset {preset}, {which}: {seconds / 60:.1f} min wall, {status}; stages summed "
                  "over cells: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in sorted(stages.items(), key=lambda kv: -kv[1])),
                  flush=True)
    finally:
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
