"""--steer-template auto: the template is chosen on each fold's validation samples, never its test samples."""

from __future__ import annotations

import numpy as np
import pytest

from vulnsteer.errors import VulnsteerError
from vulnsteer.evaluation.predictions import Predictions
from vulnsteer.evaluation.splits import cross_fit
from vulnsteer.experiments.template_choice import choose_templates
from vulnsteer.experiments.templates import TemplateScores

N_GROUPS = 12
LABELS = np.array([1, 0] * N_GROUPS)
GROUPS = [f"g{i // 2}" for i in range(2 * N_GROUPS)]
IDS = [f"f{i}" for i in range(2 * N_GROUPS)]
FOLDS = cross_fit(GROUPS, 4, 0, labels=LABELS.tolist())


def scored(template: str, right: np.ndarray, ids: list[str] = IDS) -> TemplateScores:
    """A template whose answer score is right exactly on the samples in `right` (a boolean mask)."""
    truth = np.where(LABELS == 1, 1.0, -1.0)
    scores = np.where(right, truth, -truth)
    order = [IDS.index(i) for i in ids]
    preds = Predictions.of(LABELS[order], scores[order], [GROUPS[i] for i in order], [GROUPS[i] for i in order],
                           ["CWE-1"] * len(order))
    return TemplateScores(template, tuple(ids), preds)


def mask(idx) -> np.ndarray:
    out = np.zeros(len(IDS), dtype=bool)
    out[np.asarray(idx, dtype=int)] = True
    return out


def test_choice_reads_validation_only_even_when_the_test_fold_favours_another_template():
    val, test = FOLDS.val(0), FOLDS.test(0)
    s1 = scored("S1", np.zeros(len(IDS), dtype=bool) | (LABELS == 1))  # "yes" to all: balanced accuracy 1/2
    s2 = scored("S2", mask(val))  # right on fold 0's validation samples only
    s3 = scored("S3", ~mask(val))  # right everywhere else, the test fold included: a leak would pick it
    choices = choose_templates([s1, s2, s3], IDS, FOLDS)
    assert choices[0].template == "S2" != "S1"
    assert choices[0].val_balanced_accuracy == {"S1": 0.5, "S2": 1.0, "S3": 0.0}
    # the other folds validate elsewhere, where S3 is right
    assert [c.template for c in choices[1:]] == ["S3"] * (FOLDS.k - 1)
    assert not set(test.tolist()) & set(val.tolist())


def test_ties_go_to_the_template_listed_first_and_order_of_ids_does_not_matter():
    same = LABELS == 1
    shuffled = IDS[::-1]
    choices = choose_templates([scored("R2", same), scored("S3", same, shuffled), scored("S1", same)], IDS, FOLDS)
    assert {c.template for c in choices} == {"S1"}
    choices = choose_templates([scored("R2", same), scored("S3", same, shuffled)], IDS, FOLDS)
    assert {c.template for c in choices} == {"S3"}  # S3 is listed before R2 in TEMPLATES


def test_a_template_that_scored_other_files_is_no_candidate():
    partial = scored("S2", np.ones(len(IDS), dtype=bool), IDS[:-2])
    choices = choose_templates([scored("S1", LABELS == 1), partial], IDS, FOLDS)
    assert {c.template for c in choices} == {"S1"} and all("S2" not in c.val_balanced_accuracy for c in choices)
    with pytest.raises(VulnsteerError, match="no template scored every steering file"):
        choose_templates([partial], IDS, FOLDS)
