"""Is re-entering the block stack exact for this model? Checked once per load on a probe prompt.

Steering evaluations re-run only the blocks after the steered layer, from recorded block calls, on top of
the prompt's cached prefix (`activations.passes`, `steering.block_reentry`). That equals a full steered forward
when every block's behaviour is captured by its recorded call and the model's logits are
`unembed(final_norm(last block))`. A model that post-processes logits (Gemma 2's soft-capping), keeps
state outside the call, or whose cache drops what a later token needs breaks that; the check compares
both paths on a prompt long enough to cross a sliding window, and where they differ the run uses full
forwards instead (slower, never wrong) and says so in its log and report.

"Differ" is measured against the precision's own rounding. The same full forward, run once alone and once
batched with a copy of itself or with a token appended, is the same computation rounded differently; the
largest logit difference among those runs is the model's run-to-run rounding at its precision, and the
paths may differ by `_NOISE_FACTOR` times that, never by less than `_TOLERANCE`. In float32 that rounding
is ~1e-6 of the largest logit on the default model, so the float32 bound stays `_TOLERANCE`; bf16-mixed
measured 6.1e-3-7.5e-3 (its cached prefix: 3.8e-3-4.3e-3), plain bfloat16 1.0e-2-1.7e-2 (cached prefix:
1.0e-2-1.4e-2), docs/BENCHMARKS.md. A path that computes something else (a soft-capped logit, a key the
cache lost) misses by the size of the logits, far above either bound.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from vulnsteer.activations.passes import run_prompt
from vulnsteer.model.loading import LoadedModel
from vulnsteer.model.parts import ModelParts
from vulnsteer.options import Operator
from vulnsteer.steering.block_reentry import record_full, reenter_logits
from vulnsteer.vectors.hooks import steer
from vulnsteer.vectors.operators import Intervention, apply

_MIN_TOKENS = 24
_MAX_TOKENS = 1024  # a longer window is not crossed; its layers are then checked like global ones
_TOLERANCE = 1e-3  # relative to the largest logit: float32 reordering, not a different computation
_NOISE_FACTOR = 3.0  # bound / measured rounding: one more sample of that rounding stays below it (see above)


def _probe_length(model: nn.Module) -> int:
    """Tokens enough to cross the model's attention window where one is in use (Qwen2 configs name one
    but switch it off; Gemma 3 lists which layers slide)."""
    config = getattr(model, "config", None)
    window = getattr(config, "sliding_window", None)
    layer_types = getattr(config, "layer_types", None) or ()
    in_use = (isinstance(window, int) and getattr(config, "use_sliding_window", True) is not False
              and (not layer_types or "sliding_attention" in layer_types))
    return min(max(_MIN_TOKENS, window + 8 if in_use and isinstance(window, int) else 0), _MAX_TOKENS)


def _scale(logits: torch.Tensor) -> float:
    return max(float(logits.abs().max()), 1.0)


def rounding(model: nn.Module, ids: torch.Tensor, full: torch.Tensor) -> float:
    """The model's run-to-run rounding at its precision, relative to the largest logit: the largest change of
    `full` (the last-position logits of `ids` alone) when the same forward runs batched with a copy of itself
    or with a token appended (other matrix shapes, other kernel blocking, the same computation)."""
    twice = model(input_ids=ids.repeat(2, 1), use_cache=False).logits[:, -1]
    longer = model(input_ids=torch.cat([ids, ids[:, :1]], 1), use_cache=False).logits[:, -2]
    return max(float((other.float() - full.float()).abs().max()) for other in (*twice, *longer)) / _scale(full)


def _same(got: torch.Tensor, want: torch.Tensor, tolerance: float) -> bool:
    atol = tolerance * _scale(want)
    return got.shape == want.shape and torch.allclose(got.float(), want.float(), rtol=0.0, atol=atol)


@torch.inference_mode()
def reentry_problem(model: nn.Module, parts: ModelParts) -> str:
    """Why re-entry differs from a full forward on a probe prompt, or "" where it is exact."""
    parts = replace(parts, reentry_exact=True)  # measure the re-entry path itself, not its fallback
    vocab = int(parts.unembed.weight.shape[0])
    device = parts.unembed.weight.device
    ids = (torch.arange(_probe_length(model), device=device) * 13 + 5).remainder(vocab)[None]
    g = torch.Generator().manual_seed(0)
    k = parts.n_layers // 2
    iv = Intervention(k, Operator.ADD, torch.randn(parts.d_model, generator=g).to(device), 4.0)

    def edit(_layer: int, hidden: torch.Tensor) -> torch.Tensor:
        return apply(hidden, iv)

    full = model(input_ids=ids, use_cache=False).logits[0, -1]
    tol = max(_TOLERANCE, _NOISE_FACTOR * rounding(model, ids, full))
    state = run_prompt(model, parts, ids)
    if not _same(state.answer_logits, full, tol):
        return "the last token on the cached prefix does not give the full forward's logits"
    with steer(model, [iv], scope="answer", prompt_len=ids.shape[1]):
        want = model(input_ids=ids, use_cache=False).logits[0, -1]
    got = reenter_logits(parts, state.answer_recording, [k], edit, state.prefix_cache)[0]  # type: ignore[arg-type]
    if not _same(got, want, tol):
        return f"re-entering at block {k} on the cached prefix does not give the steered forward's logits"
    with steer(model, [iv], scope="all"):
        want = model(input_ids=ids, use_cache=False).logits[0, -1]
    if not _same(reenter_logits(parts, record_full(model, parts, ids), [k], edit)[0], want, tol):
        return f"re-entering at block {k} over the whole prompt does not give the steered forward's logits"
    return ""


def check_reentry(model: nn.Module, parts: ModelParts) -> ModelParts:
    """`parts` with `reentry_exact` and `reentry_note` set from `reentry_problem`."""
    problem = reentry_problem(model, parts)
    note = f"{problem}; full forwards are used instead (slower)" if problem else ""
    return replace(parts, reentry_exact=not problem, reentry_note=note)


def checked(loaded: LoadedModel) -> LoadedModel:
    """`loaded` with its parts' re-entry exactness measured (what every command and `vulnsteer.load_model` use)."""
    return replace(loaded, parts=check_reentry(loaded.model, loaded.parts))
