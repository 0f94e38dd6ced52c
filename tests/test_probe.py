"""The probing experiment reads the residuals at the chosen readout (experiments/probe.py)."""

from __future__ import annotations

import numpy as np
import pytest

from vulnsteer.activations.layers import block_outputs
from vulnsteer.activations.scoring import AnswerWords
from vulnsteer.data.prompts import answer_token_ids
from vulnsteer.data.secllmholmes import cwe_names, load_secllmholmes
from vulnsteer.evaluation.probes import fit_probe, layer_probes
from vulnsteer.evaluation.splits import cross_fit
from vulnsteer.experiments.probe import crossfit_probe, probe_curve
from vulnsteer.model.architecture import model_parts
from vulnsteer.model.loading import LoadedModel
from vulnsteer.model.tiny import tiny_model, tiny_tokenizer
from vulnsteer.options import Readout
from vulnsteer.prompting.samples import build_samples, run_samples

SOURCE = {Readout.ANSWER: "residuals", Readout.CODE_MEAN: "span_means", Readout.CODE_LAST: "span_lasts"}


@pytest.fixture(scope="module")
def samples(data_root):
    tok = tiny_tokenizer()
    m = tiny_model("gpt2")
    loaded = LoadedModel(m, tok, "tiny", "2" * 64, model_parts(m), "hf_dir", "tiny", None)  # type: ignore[arg-type]
    records = [r for r in load_secllmholmes(data_root, ["hand-crafted"]) if r.cwe in ("CWE-787", "CWE-89", "CWE-22")]
    return run_samples(build_samples(records, loaded, "S1", cwe_names(data_root), data_root), loaded,
                       AnswerWords(*map(tuple, answer_token_ids(tok))))


@pytest.mark.parametrize("readout", list(Readout))
def test_probe_curve_and_control_use_the_chosen_readout(samples, readout):
    curve = probe_curve(samples, readout, 0, k=3, repeats=1)
    X = block_outputs(getattr(samples, SOURCE[readout])).numpy()
    y, groups = samples.labels.numpy(), [s.record.group for s in samples.samples]
    np.testing.assert_allclose(curve.result.scores, layer_probes(X, y, groups, k=3).scores)
    shuffled = layer_probes(X, y, groups, k=3, seed=1, shuffle_labels=True).auroc
    np.testing.assert_allclose(curve.control[0], shuffled)


@pytest.mark.parametrize("readout", list(Readout))
def test_crossfit_probe_uses_the_chosen_readout(samples, readout):
    folds = cross_fit([s.record.group for s in samples.samples], 3, 0, labels=samples.labels.tolist())
    rows = crossfit_probe(samples, folds, 0, readout)
    splits = list(folds)
    X = block_outputs(getattr(samples, SOURCE[readout])).numpy()
    y = samples.labels.numpy()
    for row in rows[:4]:
        train = splits[row["fold"]][0]
        model = fit_probe(X[train, row["probe_layer"]], y[train])
        assert abs(model.decision_function(X[[row["index"]], row["probe_layer"]])[0] - row["probe"]) < 1e-9
