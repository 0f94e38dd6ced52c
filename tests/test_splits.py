from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import KFold

from vulnsteer.errors import DataError
from vulnsteer.evaluation.splits import (
    CrossFit,
    GroupLeakError,
    TransferSplit,
    assert_no_leak,
    cross_fit,
    grouped_kfold,
    validation_groups,
)

# 30 scenario groups of 1-4 files each (a vulnerable file, its patch, augmentations), labels alternating.
SIZES = [1 + (i * 7) % 4 for i in range(30)]
GROUPS = [f"scenario-{i}" for i, size in enumerate(SIZES) for _ in range(size)]
LABELS = [j % 2 for size in SIZES for j in range(size)]


def test_assert_no_leak_catches_a_leaky_split():
    groups = ["a", "a", "b", "b", "c"]
    assert_no_leak(groups, [0, 1], [2, 3], [4])
    with pytest.raises(GroupLeakError, match="'b'"):
        assert_no_leak(groups, [0, 1, 2], [3, 4])  # b's two files on both sides
    with pytest.raises(GroupLeakError):
        assert_no_leak(groups, [0, 1], [2, 3], [3])  # the same file in validation and test


def test_naive_kfold_leaks_grouped_does_not():
    x = np.zeros((len(GROUPS), 1))
    naive = list(KFold(5, shuffle=True, random_state=0).split(x))
    with pytest.raises(GroupLeakError):
        for train, test in naive:
            assert_no_leak(GROUPS, train, test)
    for train, test in grouped_kfold(GROUPS, 5, seed=0, labels=LABELS):
        assert_no_leak(GROUPS, train, test)


def test_grouped_kfold_tests_everything_once_and_stratifies():
    folds = grouped_kfold(GROUPS, 5, seed=1, labels=LABELS)
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested.tolist()) == list(range(len(GROUPS)))
    for train, test in folds:
        assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == len(GROUPS)
        share = np.mean(np.asarray(LABELS)[test])
        assert 0.25 < share < 0.75
    assert [t.tolist() for _, t in folds] == [t.tolist() for _, t in grouped_kfold(GROUPS, 5, 1, LABELS)]
    assert [t.tolist() for _, t in folds] != [t.tolist() for _, t in grouped_kfold(GROUPS, 5, 2, LABELS)]


def test_grouped_kfold_rejects_too_many_folds():
    with pytest.raises(DataError):
        grouped_kfold(["a", "a", "b"], 3, seed=0)


def test_cross_fit_roles_rotate_without_leaks():
    cf = cross_fit(GROUPS, 5, seed=0, labels=LABELS)
    assert isinstance(cf, CrossFit) and cf.k == 5
    tested = []
    for f, (train, val, test) in enumerate(cf):
        assert_no_leak(GROUPS, train, val, test)
        assert np.array_equal(val, cf.test(f + 1))  # validation is the next fold's test set
        assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(len(GROUPS)))
        tested.extend(test.tolist())
    assert sorted(tested) == list(range(len(GROUPS)))  # every sample tested exactly once
    with pytest.raises(DataError):
        cross_fit(GROUPS, 2, seed=0)


def test_validation_groups_hold_out_whole_groups_about_one_in_k():
    train, val = validation_groups(GROUPS, 4, seed=0, labels=LABELS)
    assert_no_leak(GROUPS, train, val)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(len(GROUPS)))
    n_val_groups = len({GROUPS[i] for i in val})
    assert 30 // 4 - 2 <= n_val_groups <= 30 // 4 + 2
    assert 0.25 < np.mean(np.asarray(LABELS)[val]) < 0.75  # stratified: both labels validate
    again, other = validation_groups(GROUPS, 4, seed=0, labels=LABELS)[1], validation_groups(GROUPS, 4, 1, LABELS)[1]
    assert again.tolist() == val.tolist() and other.tolist() != val.tolist()


def test_a_transfer_split_is_one_fold():
    split = TransferSplit(np.arange(3), np.arange(3, 5), np.arange(5, 9))
    assert split.k == 1 and [tuple(map(len, f)) for f in split] == [(3, 2, 4)]
    with pytest.raises(IndexError):
        split.split(1)
