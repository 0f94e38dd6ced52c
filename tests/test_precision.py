"""bfloat16 models and explicit devices: what is stored stays float32 on the CPU, and the cached paths
(resume, sweep, decoding from prefixes) agree with full bf16 forwards within stated tolerances.

The float32 equality tests (test_block_reentry, test_sweep, test_generation, test_nnsight_path) stay float32.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from test_loading import write_tiny_gguf
from vulnsteer.activations.passes import run_prompt
from vulnsteer.activations.scoring import AnswerWords
from vulnsteer.data.prompts import answer_token_ids
from vulnsteer.errors import ModelError
from vulnsteer.evaluation.generation import generate_answers, generate_from_passes
from vulnsteer.model import precision
from vulnsteer.model.architecture import model_parts
from vulnsteer.model.loading import MARKER, load_model
from vulnsteer.model.precision import Device, Precision, parse_precision, resolve_device, to_precision
from vulnsteer.model.tiny import save_tiny, tiny_model
from vulnsteer.steering.block_reentry import record_full, reenter_logits
from vulnsteer.steering.reentry_check import reentry_problem
from vulnsteer.steering.sweep import score_interventions, score_interventions_all_positions
from vulnsteer.vectors.application import Application
from vulnsteer.vectors.directions import Directions
from vulnsteer.vectors.hooks import steer
from vulnsteer.vectors.operators import Intervention, apply
from vulnsteer.vectors.steering_vector import SteeringVector

PROMPT = "def query(db, name): return db.execute('SELECT * FROM users WHERE name = ' + name) Answer yes or no"
# Re-entry runs the same kernels on the same bf16 inputs as the full forward (measured: equal scores on
# every tiny architecture), but a batch of rows may take other kernel paths than one row; the bound
# allows that while staying far below the spread of the scores the interventions cause (std ~0.06).
RESUME_TOL = 2e-3
# bf16 against float32 on the tiny models: measured <= 0.0014 in score.
BF16_VS_FP32 = 5e-3


def _words(tokenizer) -> AnswerWords:
    return AnswerWords(*map(tuple, answer_token_ids(tokenizer)))


LOW = ["bfloat16", "bf16-mixed"]  # the precisions below float32 that vulnsteer offers


def _bf16(arch: str, device: torch.device, dtype: str = "bfloat16"):
    return to_precision(tiny_model(arch), dtype).to(device)


def _interventions(parts) -> list[Intervention]:
    g = torch.Generator().manual_seed(0)
    ivs = []
    for layer in (2, 0, 3):
        # on the CPU like every stored direction (and a CPU generator needs CPU tensors under a CUDA default)
        u = torch.randn(parts.d_model, generator=g, device="cpu")
        v = SteeringVector(Directions({layer: u}, mu={layer: torch.randn(parts.d_model, generator=g, device="cpu")},
                                      sigma={layer: 1.5}), Application(unit="sigma"))
        for op, alpha in (("add", -2.0), ("add", 4.0), ("amplify", 3.0), ("ablate", 0.0)):
            ivs += v.interventions(alpha, op)
    return ivs


def test_resolve_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(precision, "_mps_available", lambda: False)
    assert resolve_device("auto") == resolve_device(Device.AUTO) == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == resolve_device("cpu") == torch.device("cpu")
    for asked, hint in (("cuda", "CUDA build"), ("cuda:1", "CUDA build"), ("mps", "Apple")):
        with pytest.raises(ModelError, match=hint) as exc:
            resolve_device(asked)
        assert asked in str(exc.value) and "--device cpu" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(ModelError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(precision, "_mps_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")


def test_parse_precision():
    assert parse_precision("bfloat16") is Precision.BFLOAT16 and parse_precision(Precision.FLOAT32) is Precision.FLOAT32
    with pytest.raises(ModelError, match="int8 failed the fidelity bar"):
        parse_precision("int8")
    with pytest.raises(ModelError, match="unknown dtype 'fp16'; use one of float32, bf16-mixed, bfloat16"):
        parse_precision("fp16")
    assert precision.DEFAULT_PRECISION in Precision


@pytest.mark.parametrize("dtype", ["float32", *LOW])
def test_load_model_at_a_precision_on_an_explicit_device(dtype, device, tmp_path, tokenizer):
    model_dir = save_tiny("qwen2", tmp_path / "tiny")
    for asked in (device, str(device)):
        loaded = load_model(str(model_dir), cache_dir=tmp_path / "cache", dtype=dtype, device=asked)
        if dtype == "bf16-mixed":  # only the blocks' Linear weights are bfloat16
            for name, p in loaded.model.named_parameters():
                linear = name.endswith("proj.weight") and ".layers." in name
                assert p.dtype == (torch.bfloat16 if linear else torch.float32), name
        else:
            assert {p.dtype for p in loaded.model.parameters()} == {getattr(torch, dtype)}
        assert {p.device.type for p in loaded.model.parameters()} == {device.type}
        assert loaded.dtype is Precision(dtype) and torch.device(loaded.device).type == device.type  # the enum, not text
    # inputs built on the CPU are moved to the model's device by the pass; results come back to the CPU
    state = run_prompt(loaded.model, loaded.parts, torch.tensor([[5, 6, 7, 8]], device="cpu"), span=(0, 2))
    assert state.answer_logits.device.type == "cpu"


def test_the_cache_stays_one_float32_copy(tmp_path):
    (tmp_path / "src").mkdir()
    gguf = write_tiny_gguf(tmp_path / "src" / "tiny.gguf")
    loaded = load_model(str(gguf), cache_dir=tmp_path / "cache", dtype="bfloat16")
    assert loaded.dtype is Precision.BFLOAT16 and next(loaded.model.parameters()).dtype == torch.bfloat16
    files = list(loaded.weights_dir.glob("*.safetensors"))
    assert len(files) == 1 and json.loads((loaded.weights_dir / MARKER).read_text())["weights"]
    with safe_open(files[0], "pt") as fh:
        assert {fh.get_tensor(k).dtype for k in fh.keys()} == {torch.float32}
    assert [p.name for p in loaded.weights_dir.parent.iterdir()] == ["hf"]  # no derived copy cached


def test_stored_results_are_float32_on_the_cpu(arch, tokenizer, device):
    model = _bf16(arch, device)
    ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    state = run_prompt(model, model_parts(model), ids, span=(1, 6))
    for stored in (state.answer_logits, state.answer_residuals, state.span_mean):
        assert stored is not None and stored.dtype == torch.float32 and stored.device.type == "cpu"
    call = state.answer_recording.calls[0]  # type: ignore[union-attr]
    assert call.output.dtype == torch.bfloat16 and call.output.device.type == device.type  # kept for re-entry
    scores = score_interventions(model_parts(model), state, _interventions(model_parts(model)), _words(tokenizer))
    assert scores.dtype == torch.float32 and scores.device.type == "cpu"


def test_operators_project_in_float32_and_keep_the_model_dtype():
    torch.manual_seed(0)
    d = 896
    h = (torch.randn(3, d) * 4).bfloat16()
    u, mu = torch.randn(d), torch.randn(d)
    for op in ("add", "amplify", "ablate"):
        iv = Intervention(0, op, u, 2.5, mu)
        got = apply(h, iv)
        assert got.dtype == torch.bfloat16
        ref = apply(h.float(), iv)  # the same edit computed entirely in float32
        # only the final rounding to bf16 may differ: half a bf16 step of the largest value
        assert (got.float() - ref).abs().max() <= ref.abs().max() * 2**-8


@pytest.mark.parametrize("dtype", LOW)
def test_bf16_sweep_equals_full_steered_forwards(arch, tokenizer, device, dtype):
    model = _bf16(arch, device, dtype)
    parts = model_parts(model)
    assert reentry_problem(model, parts) == "", "the load-time check must let this precision re-enter (issue 15)"
    ids = tokenizer(PROMPT, return_tensors="pt").input_ids.to(device)
    words = _words(tokenizer)
    ivs = _interventions(parts)
    scores = score_interventions(parts, run_prompt(model, parts, ids), ivs, words)
    for iv, got in zip(ivs, scores):
        with torch.inference_mode(), steer(model, [iv], scope="answer", prompt_len=ids.shape[1]):
            ref = words.score(model(ids).logits[0, -1].float()).cpu()
        assert abs(float(got - ref)) <= RESUME_TOL
    fp32 = tiny_model(arch).to(device)
    scores32 = score_interventions(model_parts(fp32), run_prompt(fp32, model_parts(fp32), ids), ivs, words)
    assert (scores - scores32).abs().max() <= BF16_VS_FP32
    assert scores.std() > 5 * BF16_VS_FP32, "the interventions must move the score by more than the tolerance"


@pytest.mark.parametrize("dtype", LOW)
def test_bf16_all_position_resume_equals_full_steered_forward(tokenizer, device, dtype):
    model = _bf16("qwen2", device, dtype)
    parts = model_parts(model)
    ids = tokenizer(PROMPT, return_tensors="pt").input_ids.to(device)
    iv = Intervention(1, "add", torch.randn(parts.d_model), 2.0)
    with torch.inference_mode(), steer(model, [iv], scope="all"):
        ref = model(ids).logits[0, -1].float().cpu()
    got = reenter_logits(parts, record_full(model, parts, ids), [1], lambda _l, h: apply(h, iv))[0]
    assert (got - ref).abs().max() <= RESUME_TOL * ref.abs().max()
    words = _words(tokenizer)
    rows = score_interventions_all_positions(parts, record_full(model, parts, ids), [iv], words)
    assert abs(float(rows[0] - words.score(ref))) <= RESUME_TOL


# How far the cached-prefix and whole-prompt decoding paths' logits may differ, relative to the largest logit:
# bfloat16 rounds the two paths differently (measured <= 2^-6.7 on every tiny architecture, 2 prompts x 6
# steps); bf16-mixed keeps the residual stream and unembedding in float32 (measured: equal).
DECODE_TOL = {"bfloat16": 2**-6, "bf16-mixed": 2**-7}


def _step_logits(model, decode, *args, **kwargs):
    """`decode(model, *args, **kwargs)`'s result and the last-position logits of every forward it runs, one
    row per decoding step (batch of one)."""
    seen: list[torch.Tensor] = []
    hook = model.get_output_embeddings().register_forward_hook(lambda _m, _i, o: seen.append(o[:, -1].float().cpu()))
    try:
        result = decode(model, *args, **kwargs)
    finally:
        hook.remove()
    return result, torch.cat(seen)


@pytest.mark.parametrize("dtype", LOW)
def test_bf16_decoding_from_prefixes_equals_generate(arch, tokenizer, device, dtype):
    """Step by step, while both paths have decoded the same tokens, their logits agree within the precision's
    tolerance, and they pick the same token unless the top two logits are within it (a near tie that rounding
    may flip; decoding is then compared no further). Texts that never diverge are equal (float32: always,
    tests/test_generation.py)."""
    model = _bf16(arch, device, dtype)
    texts = ["int main", "Answer yes or no: is strcpy(buf, argv[1]) safe?"]
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": t}], tokenize=False, add_generation_prompt=True)
               for t in texts]
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
        state = run_prompt(model, model_parts(model), ids)
        ref_text, ref = _step_logits(model, generate_answers, tokenizer, [prompt], max_new_tokens=6, batch_size=1)
        got_text, got = _step_logits(model, generate_from_passes, tokenizer, [state], [ids], max_new_tokens=6,
                                     batch_size=1)
        assert len(ref) >= 1 and len(got) >= 1
        for step in range(min(len(ref), len(got))):
            tol = DECODE_TOL[dtype] * float(ref[step].abs().max())
            assert (got[step] - ref[step]).abs().max() <= tol, (prompt, step)
            if got[step].argmax() != ref[step].argmax():
                top2 = ref[step].topk(2).values
                assert top2[0] - top2[1] <= 2 * tol, f"step {step} picked another token without a near tie"
                break
        else:
            assert len(got) == len(ref) and got_text == ref_text, prompt


def test_bf16_mixed_keeps_the_residual_stream_and_unembedding_in_float32(tokenizer):
    """bf16-mixed rounds only the Linear matmuls: the residuals it passes between blocks are float32, the
    unembedding is untouched, and each Linear equals a float32 matmul of bfloat16-rounded operands up to
    the rounding of its output."""
    fp32 = tiny_model("qwen2")
    model = to_precision(tiny_model("qwen2"), "bf16-mixed")
    assert model.lm_head.weight.dtype == torch.float32 and model.model.embed_tokens.weight.dtype == torch.float32
    ids = tokenizer(PROMPT, return_tensors="pt").input_ids
    with torch.inference_mode():
        out = model(ids, output_hidden_states=True)
        ref = fp32(ids, output_hidden_states=True)
    assert all(h.dtype == torch.float32 for h in out.hidden_states) and out.logits.dtype == torch.float32
    assert not torch.equal(out.logits, ref.logits), "the Linear layers must actually compute in bfloat16"
    assert (out.logits - ref.logits).abs().max() <= 0.05 * ref.logits.abs().max()
    lin, lin32 = model.model.layers[0].mlp.up_proj, fp32.model.layers[0].mlp.up_proj
    x = torch.randn(5, lin.in_features)
    want = x.bfloat16().float() @ lin32.weight.bfloat16().float().T
    assert ((lin(x) - want).abs() <= want.abs() * 2**-8 + 1e-6).all()


@pytest.mark.parametrize("dtype", LOW)
def test_bf16_linears_get_contiguous_inputs(tokenizer, dtype, monkeypatch):
    """The sweep's re-entry and batched decoding hand Linear layers strided views; torch's CPU bfloat16
    kernel is ~300x slower on those (model/precision.py), so every bfloat16 Linear makes its input
    contiguous first, without changing the result."""
    model = to_precision(tiny_model("qwen2"), dtype)
    lin = model.model.layers[0].mlp.up_proj
    x = torch.randn(3, 2, lin.in_features, dtype=model.model.embed_tokens.weight.dtype)[:, :1]  # a strided view
    assert not x.is_contiguous()
    want = lin(x.contiguous())
    seen = []
    real = precision.F.linear

    def spy(inp, *args):
        seen.append(inp.is_contiguous())
        return real(inp, *args)

    monkeypatch.setattr(precision.F, "linear", spy)
    got = lin(x)
    assert seen == [True] and torch.equal(got, want)
