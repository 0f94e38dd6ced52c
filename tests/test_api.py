"""The public API: what a notebook does, end to end on a tiny model, and the example CI runs."""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

import vulnsteer as vs
from vulnsteer.activations.passes import run_prompt
from vulnsteer.api_notebook import _build, _words
from vulnsteer.errors import VulnsteerError
from vulnsteer.steering.sweep import score_interventions

REPO = Path(__file__).resolve().parents[1]


def test_all_exports_resolve_and_are_documented():
    api_doc = (REPO / "docs" / "API.md").read_text(encoding="utf-8")
    for name in vs.__all__:
        assert getattr(vs, name) is not None
        assert f"`{name}" in api_doc, f"docs/API.md does not document {name}"


def test_steered_answer_score_equals_the_sweeps_re_entry(tiny_dirs, data_root, monkeypatch):
    monkeypatch.setenv("VULNSTEER_DATA", str(data_root))
    lm = vs.load_model(str(tiny_dirs["qwen2"]))
    records = vs.load_records(["hand-crafted"], cwes=["CWE-787"], data=data_root)
    vector = vs.train_steering_vector(lm, records[:4], layers=[1, 2], method="caa")
    prov = vector.provenance
    assert prov.model_hash == lm.source_hash and prov.template_id == "S1" and len(prov.record_ids) == 4
    one = vector.at_layer(2)
    plain = vs.answer_score(lm, records[5])
    with one.apply(lm, alpha=6.0, unit="sigma", scope="answer"):
        steered = vs.answer_score(lm, records[5])
    assert vs.answer_score(lm, records[5]) == plain, "the model is restored on exit"
    (sample,) = _build(lm, [records[5]], "S1")
    (window,) = sample.windows
    state = run_prompt(lm.model, lm.parts, window.input_ids)
    ref = score_interventions(lm.parts, state, one.interventions(6.0, "add", "sigma"), _words(lm))
    torch.testing.assert_close(torch.tensor(steered), ref[0], atol=1e-4, rtol=1e-4)
    assert abs(steered - plain) > 1e-4


def test_a_long_file_is_scored_by_the_max_over_its_windows(tiny_dirs, data_root, monkeypatch):
    monkeypatch.setenv("VULNSTEER_DATA", str(data_root))
    lm = vs.load_model(str(tiny_dirs["qwen2"]))
    record = vs.load_records(["real-world"], data=data_root)[0]
    (sample,) = _build(lm, [record], "S1")
    assert len(sample.windows) > 1  # over the default budget of 1536 code tokens
    scores = [float(_words(lm).score(run_prompt(lm.model, lm.parts, w.input_ids).answer_logits)) for w in sample.windows]
    assert vs.answer_score(lm, record) == pytest.approx(max(scores), abs=1e-5)
    answer = vs.generate_answer(lm, record, max_new_tokens=2)
    assert answer.count("===== window ") == len(sample.windows)


def test_quickstart_example_runs(tiny_dirs, data_root, tmp_path):
    env = {**__import__("os").environ, "VULNSTEER_DATA": str(data_root), "VULNSTEER_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "quickstart.py"), "--model", str(tiny_dirs["qwen2"]),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "the reloaded vector gives the same steered score" in proc.stdout and "probe AUROC per block" in proc.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["caa.gguf", "caa.json", "caa.safetensors"]


def test_a_vector_vulnsteer_run_saved_applies_in_two_lines_as_the_experiment_scored_it(data_root, tmp_path, monkeypatch):
    import json

    from vulnsteer.experiments.baseline_config import BaselineConfig
    from vulnsteer.experiments.config import RunConfig, SteerConfig

    monkeypatch.setenv("VULNSTEER_DATA", str(data_root))
    cfg = RunConfig(baseline=BaselineConfig(cwes=("CWE-787", "CWE-89", "CWE-22"), generate=False, n_boot=100),
                    steer=SteerConfig(layers=(1, 2), methods=("caa",), k_folds=3, n_random=1),
                    n_side_by_side=0, n_fluency=1)
    run_dir = vs.run(cfg, model="tiny-qwen2", out=tmp_path / "run", cache_dir=tmp_path / "cache")
    row = next(json.loads(line) for line in (run_dir / "steer" / "test.jsonl").read_text().splitlines()
               if json.loads(line)["fold"] == 0)
    lm = vs.load_model("tiny-qwen2")
    record = next(r for r in vs.load_records(["hand-crafted"], cwes=["CWE-787", "CWE-89", "CWE-22"]) if r.id == row["id"])
    with vs.SteeringVector.load(run_dir / "steer" / "vectors" / "fold0-pooled").apply(lm):
        steered = vs.answer_score(lm, record)
    assert abs(steered - row["steered"]) < 1e-4, (steered, row["steered"])
    assert abs(vs.answer_score(lm, record) - row["baseline"]) < 1e-4 and abs(row["steered"] - row["baseline"]) > 1e-4


# ----------------------------------------------------------------- the notebook API (issue 16)
PAIRS = [
    ("int f(char *s){char b[4]; strcpy(b,s); return 0;}", "int f(char *s){char b[4]; strncpy(b,s,3); b[3]=0; return 0;}"),
    ("void g(int n){int a[8]; a[n]=1;}", "void g(int n){int a[8]; if(n>=0&&n<8) a[n]=1;}"),
    ("void h(char*d,char*s){memcpy(d,s,strlen(s));}", "void h(char*d,char*s,size_t n){memcpy(d,s,n);}"),
]


@pytest.fixture
def lm(tmp_path, monkeypatch):
    monkeypatch.setenv("VULNSTEER_CACHE", str(tmp_path / "cache"))  # the activation cache goes here
    return vs.load_model("tiny-qwen2")


@contextmanager
def counted_forwards(lm):
    calls = []
    handle = lm.model.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        yield calls
    finally:
        handle.remove()


def test_scaling_a_vector_scales_the_steering(lm):
    v = vs.train_steering_vector(lm, PAIRS, layers=[2], cwe="CWE-787", language="c")
    record = vs.Record(id="x", subset="x", cwe="CWE-787", language="c", label=1, group="x", pair_id=None,
                       code=PAIRS[0][0], source_path="x")
    alpha = 3.0

    def steered(vector, **kw):
        with vector.apply(lm, **kw):
            return vs.answer_score(lm, record)

    assert steered(2 * v, alpha=alpha) == steered(v, alpha=2 * alpha)
    assert steered(10 * v, alpha=alpha) == pytest.approx(steered(v, alpha=10 * alpha), abs=1e-5)
    assert steered(2 * v, alpha=alpha) != steered(v, alpha=alpha)
    assert steered(-v, alpha=alpha) == pytest.approx(steered(v, alpha=-alpha), abs=1e-5)
    assert steered(v + v) == pytest.approx(steered(v, alpha=2.0), abs=1e-5)  # the sum adds what both add


def test_activations_are_read_once_for_several_methods_and_the_probe(lm, data_root, monkeypatch):
    from vulnsteer.experiments.probe import probe_curve
    from vulnsteer.options import Readout
    from vulnsteer.prompting.samples import run_samples

    acts = vs.read_activations(lm, PAIRS, cwe="CWE-787", language="c")
    assert acts.residuals.shape == (6, lm.parts.n_layers + 1, lm.parts.d_model) and acts.labels.tolist() == [1, 0] * 3
    with counted_forwards(lm) as calls:
        caa = vs.train_steering_vector(lm, acts, layers=[-1], method="caa")
        pca = vs.train_steering_vector(lm, acts, layers=[-1], method="pca")
        again = vs.read_activations(lm, PAIRS, cwe="CWE-787", language="c")  # served by the activation cache
    assert calls == []
    assert torch.equal(again.residuals, acts.residuals)
    assert caa.layers == pca.layers == [lm.parts.n_layers - 1]
    assert caa.provenance.method == "caa" and pca.provenance.method == "pca"
    direct = vs.train_steering_vector(lm, PAIRS, layers=[lm.parts.n_layers - 1], cwe="CWE-787", language="c")
    torch.testing.assert_close(direct.directions, caa.directions)
    assert direct.provenance.model_hash == caa.provenance.model_hash == lm.source_hash
    assert caa.provenance.extra["architecture"] == "qwen2"

    monkeypatch.setenv("VULNSTEER_DATA", str(data_root))
    records = vs.load_records("hand-crafted", cwes="CWE-787")
    curve = vs.probe_layers(vs.read_activations(lm, records), k=3, repeats=2)
    sset = run_samples(_build(lm, records, "S1"), lm, _words(lm))
    reference = probe_curve(sset, Readout.ANSWER, 0, k=3, repeats=2)  # what `vulnsteer probe` computes
    np.testing.assert_allclose(curve.result.auroc, reference.result.auroc, atol=1e-6)
    np.testing.assert_allclose(curve.control, reference.control, atol=1e-6)
    assert curve.result.auroc.shape == (lm.parts.n_layers,) and curve.control.shape == (2, lm.parts.n_layers)


def test_bad_arguments_fail_in_one_line_before_any_pass(lm, data_root, monkeypatch):
    monkeypatch.setenv("VULNSTEER_DATA", str(data_root))
    record = vs.load_records("hand-crafted", cwes="CWE-787")[0]
    with counted_forwards(lm) as calls:
        for call, match in [
            (lambda: vs.train_steering_vector(lm, PAIRS, layers=[99], cwe="CWE-787", language="c"), "out of range"),
            (lambda: vs.train_steering_vector(lm, PAIRS, method="pca_diff", cwe="CWE-787", language="c"), "caa, pca"),
            (lambda: vs.train_steering_vector(lm, PAIRS, layers=12, cwe="CWE-787", language="c"), "list of block"),
            (lambda: vs.train_steering_vector(lm, "int main(){}"), "non-empty list"),
            (lambda: vs.train_steering_vector(lm, PAIRS), "cwe="),
            (lambda: vs.train_steering_vector("tiny-qwen2", PAIRS), "LoadedModel"),
            (lambda: vs.answer_score(lm, record, template="S9"), "S1"),
            (lambda: vs.answer_score(lm, record, template="S99"), "unknown template"),
            (lambda: vs.answer_score(lm, {"code": "x"}), "Record"),
            (lambda: vs.answer_scores(lm, [record, "x"]), "Records"),
            (lambda: vs.load_model(123), "name or path"),
            (lambda: vs.run({"stages": ["probe"]}), "RunConfig"),
            (lambda: vs.probe_layers([record]), "Activations"),
        ]:
            with pytest.raises(VulnsteerError, match=match) as info:
                call()
            assert "\n" not in str(info.value)
    assert calls == []


def test_plain_inputs(lm, tiny_dirs, data_root, tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("VULNSTEER_DATA", str(data_root))
    assert [r.id for r in vs.load_records("hand-crafted", cwes="CWE-787")] == \
        [r.id for r in vs.load_records(["hand-crafted"], cwes=["CWE-787"])] != []
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"id": "a", "cwe": "CWE-787", "language": "c", "vulnerable": PAIRS[0][0],
                                 "secure": PAIRS[0][1]}) + "\n")
    monkeypatch.setenv("VULNSTEER_DATA", str(tmp_path / "nowhere"))  # no SecLLMHolmes: a pairs file needs none
    assert [r.label for r in vs.load_records(str(pairs))] == [1, 0]
    wrapped = vs.wrap_model(AutoModelForCausalLM.from_pretrained(tiny_dirs["qwen2"]),
                            AutoTokenizer.from_pretrained(tiny_dirs["qwen2"]))
    assert wrapped.source_kind == "wrapped" and wrapped.label == "qwen2"
    loaded = vs.load_model(str(tiny_dirs["qwen2"]))
    record = vs.load_records(str(pairs))[0]
    assert vs.answer_score(wrapped, record) == pytest.approx(vs.answer_score(loaded, record), abs=1e-5)
    other = vs.wrap_model(AutoModelForCausalLM.from_pretrained(tiny_dirs["gpt_bigcode"]),
                          AutoTokenizer.from_pretrained(tiny_dirs["gpt_bigcode"]))
    assert other.source_hash != wrapped.source_hash


def test_a_vector_of_another_model_is_refused_unless_forced(lm):
    llama = vs.load_model("tiny-llama")
    assert llama.parts.d_model == lm.parts.d_model  # same width: only provenance tells them apart
    v = vs.train_steering_vector(lm, PAIRS, layers=[1], cwe="CWE-787", language="c")
    with pytest.raises(VulnsteerError, match="tiny-qwen2.*tiny-llama"):
        with v.apply(llama):
            pass
    with v.apply(llama, force=True):
        pass


def test_batched_scores_equal_one_by_one_plain_and_steered(lm, data_root, monkeypatch):
    monkeypatch.setenv("VULNSTEER_DATA", str(data_root))
    records = vs.load_records("hand-crafted", cwes="CWE-787")[:4]
    one_by_one = [vs.answer_score(lm, r) for r in records]
    assert vs.answer_scores(lm, records) == pytest.approx(one_by_one, abs=1e-4)
    v = vs.train_steering_vector(lm, PAIRS, layers=[2], cwe="CWE-787", language="c")
    with v.apply(lm, alpha=6.0, scope="answer"):
        steered = vs.answer_scores(lm, records)  # never the (unsteered) activation cache
        assert steered == [vs.answer_score(lm, r) for r in records]
    assert steered != pytest.approx(one_by_one, abs=1e-4)


def test_loading_a_model_and_training_print_nothing_to_stdout(capfd, tmp_path, monkeypatch):
    monkeypatch.setenv("VULNSTEER_CACHE", str(tmp_path / "cache"))
    lm = vs.load_model("tiny-qwen2")
    vs.probe_layers(vs.read_activations(lm, PAIRS * 2, cwe="CWE-787", language="c"), k=2, repeats=1)
    assert capfd.readouterr().out == ""


def test_a_trained_vector_exports_to_gguf_without_a_hint(lm, tmp_path):
    v = vs.train_steering_vector(lm, PAIRS, layers=[1, 2], cwe="CWE-787", language="c")
    assert len(repr(v)) < 400 and "\n" not in repr(v)
    back = vs.SteeringVector.from_gguf(v.to_gguf(tmp_path / "v.gguf"))
    assert back.provenance.extra["gguf_model_hint"] == "qwen2"
    with pytest.raises(VulnsteerError, match="only add"):
        v.with_application("amplify", 4).to_gguf(tmp_path / "amp.gguf")
    assert not (tmp_path / "amp.gguf").exists()


def test_the_walk_through_in_docs_api_runs_as_written(tmp_path, monkeypatch):
    """Done when a notebook user does all of it from docs/API.md in under 15 lines: the first block, as written,
    on a tiny model."""
    doc = (REPO / "docs" / "API.md").read_text(encoding="utf-8")
    code = doc.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(code.strip().splitlines()) < 15
    monkeypatch.setenv("VULNSTEER_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    exec(compile(code.replace('"qwen2.5-coder-0.5b"', '"tiny-qwen2"'), "docs/API.md", "exec"), {})
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["caa.gguf", "caa.json", "caa.safetensors"]
