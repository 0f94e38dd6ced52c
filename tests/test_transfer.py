"""The transfer experiment on a tiny model: vectors, probes and choices come from the fit-on data alone (the
test-on labels can be permuted without changing any of them), and a fit-on group planted among the test-on
samples stops the run before steering."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch

from vulnsteer.activations.cache import ActivationCache
from vulnsteer.activations.scoring import AnswerWords
from vulnsteer.data.disjoint import load_fit_on
from vulnsteer.data.load import load_records
from vulnsteer.data.prompts import answer_token_ids
from vulnsteer.data.secllmholmes import cwe_names
from vulnsteer.evaluation.splits import GroupLeakError
from vulnsteer.experiments.baseline_config import BaselineConfig
from vulnsteer.experiments.config import RunConfig, SteerConfig
from vulnsteer.experiments.probe import calibrated_thresholds, crossfit_probe
from vulnsteer.experiments.run_folder import schema
from vulnsteer.experiments.run_folder.run_dir import RunDir
from vulnsteer.experiments.steer import run_steering
from vulnsteer.experiments.transfer import concat, prepare_transfer, transfer_probe_curve
from vulnsteer.model.architecture import model_parts
from vulnsteer.model.loading import LoadedModel
from vulnsteer.model.tiny import tiny_model, tiny_tokenizer
from vulnsteer.options import Readout
from vulnsteer.prompting.context import Context
from vulnsteer.prompting.samples import SampleSet, build_samples, run_samples

CWES = ("CWE-787", "CWE-89", "CWE-22")


@pytest.fixture(scope="module")
def ctx(small_root, tmp_path_factory) -> Context:
    tok = tiny_tokenizer()
    m = tiny_model("qwen2")
    loaded = LoadedModel(m, tok, "tiny", "1" * 64, model_parts(m), "hf_dir", "tiny", None)  # type: ignore[arg-type]
    return Context(data_root=small_root, records=load_records(small_root, ["hand-crafted"], CWES), loaded=loaded,
                   words=AnswerWords(*map(tuple, answer_token_ids(tok))), cwe_names=cwe_names(small_root),
                   cache=ActivationCache(tmp_path_factory.mktemp("cache")))


CFG = RunConfig(
    baseline=BaselineConfig(cwes=CWES), fit_on=("sven",), test_on=("hand-crafted",),
    steer=SteerConfig(layers=(0, 2), methods=("caa", "probe"), add_alphas=(-2.0, 2.0), amplify_alphas=(4.0,),
                      k_folds=3, n_random=2),
)


def _test_set(ctx: Context) -> SampleSet:
    samples = build_samples(ctx.records, ctx.loaded, "S1", ctx.cwe_names, ctx.data_root)
    return run_samples(samples, ctx.loaded, ctx.words, keep_states=True)


def _run_dir(tmp_path) -> RunDir:
    return RunDir.create(tmp_path / "run", "run", CFG.settings())


def _with_labels(s: SampleSet, labels: list[int]) -> SampleSet:
    samples = [replace(x, record=replace(x.record, label=y)) for x, y in zip(s.samples, labels)]
    return replace(s, samples=samples)


def test_fitting_and_choosing_never_see_the_test_on_labels(ctx, tmp_path):
    test = _test_set(ctx)
    t = prepare_transfer(ctx, CFG, _run_dir(tmp_path), test, keep_states=True)
    fit_idx = np.concatenate([t.split.train, t.split.val])
    assert {t.main.samples[i].record.subset for i in fit_idx} == {"sven"}
    assert [t.main.samples[i].record.id for i in t.split.test] == [s.record.id for s in test.samples]
    assert json.loads((tmp_path / "run" / schema.TRANSFER).read_text())["n_test"] == len(test.samples)

    def everything(main: SampleSet) -> tuple:
        result = run_steering(ctx.loaded.parts, main, ctx.words, CFG.steer, CFG.readout, split=t.split)
        probe = crossfit_probe(main, t.split, CFG.steer.seed, CFG.readout)
        calib = calibrated_thresholds(main, t.split)
        return result, probe, calib

    result, probe, calib = everything(t.main)
    val_ids = {t.main.samples[i].record.id for i in t.split.val}
    train_ids = {t.main.samples[i].record.id for i in t.split.train}
    assert {row["id"] for row in result.sweep} == val_ids, "the configuration is chosen on fit-on validation only"
    assert all(set(v.provenance.record_ids) <= train_ids for v in result.vectors[0].values()), "vectors fit on fit-on training"
    assert sorted(r.index for r in result.test) == t.split.test.tolist()

    # Permute the test-on labels: nothing fit or chosen may move.
    labels = [s.record.label for s in test.samples]
    permuted = np.random.default_rng(0).permutation(labels).tolist()
    assert permuted != labels
    fit = t.main.subset(fit_idx.tolist())
    result2, probe2, calib2 = everything(concat([fit, _with_labels(t.test, permuted)]))
    assert json.dumps([asdict(c) for c in result.choices]) == json.dumps([asdict(c) for c in result2.choices])
    for key, vector in result.vectors[0].items():
        other = result2.vectors[0][key]
        assert all(torch.equal(vector.directions[k], other.directions[k]) for k in vector.directions)
        assert vector.provenance.record_ids == other.provenance.record_ids
    assert result.sweep == result2.sweep
    assert probe == probe2 and calib == calib2
    assert [r.steered for r in result.test] == [r.steered for r in result2.test]
    assert [r.label for r in result2.test] == permuted  # the permutation did reach the test rows

    curve = transfer_probe_curve(t, 0, Readout.ANSWER, repeats=2)
    n_layers = ctx.loaded.parts.n_layers
    assert curve.result.auroc.shape == (n_layers,) and curve.control.shape == (2, n_layers)
    assert curve.result.labels.tolist() == labels


def test_a_fit_on_group_among_the_test_samples_stops_the_run(ctx, tmp_path):
    test = _test_set(ctx)
    fit_group = load_fit_on(ctx.data_root, ["sven"], ["hand-crafted"], CWES)[0].group
    planted = replace(test.samples[0], record=replace(test.samples[0].record, group=fit_group))
    leaky = replace(test, samples=[planted, *test.samples[1:]])
    with pytest.raises(GroupLeakError, match=fit_group):
        prepare_transfer(ctx, CFG, _run_dir(tmp_path), leaky, keep_states=False)


def test_a_code_mean_transfer_run_fits_code_mean_vectors_on_fit_on_training_samples_only(
        ctx, small_root, tiny_dirs, tmp_path):
    """`--readout code-mean --scope code` with --fit-on: the saved vector reads the code-mean residuals of the
    fit-on training samples (recomputed here from the same tiny model), not the answer position, not the
    fit-on validation samples and not the test-on samples; the probe curve reads code-mean too."""
    from typer.testing import CliRunner

    from vulnsteer.cli import app
    from vulnsteer.vectors.steering_vector import SteeringVector
    from vulnsteer.vectors.training import fit_vectors

    out = tmp_path / "run"
    args = ["run", "--model", tiny_dirs["qwen2"], "--data", small_root, "--fit-on", "sven", "--test-on",
            "hand-crafted", "--cwe", ",".join(CWES), "--no-generate", "--layers", "1", "--methods", "caa",
            "--folds", "3", "--n-random", "1", "--n-boot", "100", "--readout", "code-mean", "--scope", "code",
            "--dtype", "float32", "--out", out, "--cache-dir", tmp_path / "cache"]
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    transfer = json.loads((out / schema.TRANSFER).read_text())
    assert transfer["readout"] == "code-mean" and transfer["long_files"] == "windows"
    assert json.loads((out / schema.PROBE_CURVE).read_text())["readout"] == "code-mean"
    vector = SteeringVector.load(out / "steer" / "vectors" / "fold0-pooled", expect_d_model=64)
    assert vector.provenance.position is Readout.CODE_MEAN

    fit = build_samples(load_fit_on(small_root, ["sven"], ["hand-crafted"], CWES), ctx.loaded, "S1", ctx.cwe_names,
                        small_root)
    validation = set(transfer["validation_groups"])
    training = [s for s in fit if s.record.group not in validation]
    assert validation and tuple(sorted(s.record.id for s in training)) == vector.provenance.record_ids
    assert len(training) == transfer["n_fit_train"]
    sset = run_samples(training, ctx.loaded, ctx.words)
    records = [s.record for s in sset.samples]
    expected = fit_vectors(sset.readout(Readout.CODE_MEAN), records, [1], ["caa"], position=Readout.CODE_MEAN)
    answer = fit_vectors(sset.residuals, records, [1], ["caa"])
    got = vector.directions[1]
    want, at_answer = (next(iter(v.values())).directions[1] for v in (expected, answer))
    # Unit directions: the run's model is read back from disk, so allow float noise, not another readout.
    assert float(got @ want) > 0.9999
    assert float(got @ at_answer) < 0.99, "the answer readout would give another direction"
