"""Grouped splits that never put one scenario group on both sides of a train/validation/test boundary.

Every record derived from one scenario (its patched twin, its augmentations) shares a `group`; a split that
separates a file from its twin lets a probe or a chosen configuration memorise the scenario instead of the
concept, so every split here is by group and `assert_no_leak` checks it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from vulnsteer.errors import DataError


class GroupLeakError(DataError):
    """A scenario group appears in more than one of the index sets of a split."""


def _as_groups(groups: Sequence[str] | np.ndarray) -> np.ndarray:
    arr = np.asarray(list(groups), dtype=object)
    if arr.ndim != 1 or len(arr) == 0:
        raise DataError("groups must be a non-empty 1-D sequence of group ids")
    return arr


def _check_labels(labels: Sequence[int] | np.ndarray | None, n: int) -> np.ndarray | None:
    if labels is None:
        return None
    y = np.asarray(labels)
    if y.shape != (n,):
        raise DataError(f"labels has shape {y.shape} but groups has {n} entries; pass one label per sample")
    return y


def assert_no_leak(groups: Sequence[str] | np.ndarray, *index_sets: Sequence[int] | np.ndarray) -> None:
    """Raise `GroupLeakError` if any group (hence any sample) appears in two of `index_sets`."""
    g = _as_groups(groups)
    owner: dict[object, int] = {}
    for set_no, idx in enumerate(index_sets):
        for group in set(g[np.asarray(idx, dtype=int)].tolist()):
            if group in owner and owner[group] != set_no:
                raise GroupLeakError(
                    f"group {group!r} appears in index sets {owner[group]} and {set_no}; "
                    "split by group (grouped_kfold / cross_fit / train_val_test)"
                )
            owner[group] = set_no


def grouped_kfold(
    groups: Sequence[str] | np.ndarray, k: int, seed: int, labels: Sequence[int] | np.ndarray | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train_idx, test_idx) folds with whole groups on one side; stratified by `labels` when given."""
    g = _as_groups(groups)
    y = _check_labels(labels, len(g))
    n_groups = len(set(g.tolist()))
    if k < 2 or k > n_groups:
        raise DataError(f"k={k} folds needs 2 <= k <= number of groups ({n_groups}); lower k or add data")
    # Integer codes: sklearn sorts group ids, so strings and codes split identically, but codes are cheaper.
    _, codes = np.unique(g.astype(str), return_inverse=True)
    # Constant labels make StratifiedGroupKFold a shuffled, size-balanced GroupKFold (GroupKFold only
    # shuffles from scikit-learn 1.6 on).
    strat = np.zeros(len(g), dtype=int) if y is None else y
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    out = [(np.sort(tr), np.sort(te)) for tr, te in splitter.split(np.zeros((len(g), 1)), strat, codes)]
    for tr, te in out:
        assert_no_leak(g, tr, te)
    return out


@dataclass(frozen=True)
class CrossFit:
    """k-fold cross-fitting with a validation fold: fold f is tested, fold (f+1) % k validates, the rest trains.

    Every sample is tested exactly once, by a vector fit without its group and a configuration chosen
    without its group.
    """

    folds: tuple[np.ndarray, ...]  # disjoint, group-closed index arrays covering every sample
    groups: tuple[str, ...]

    @property
    def k(self) -> int:
        return len(self.folds)

    def test(self, f: int) -> np.ndarray:
        return self.folds[f % self.k]

    def val(self, f: int) -> np.ndarray:
        return self.folds[(f + 1) % self.k]

    def train(self, f: int) -> np.ndarray:
        keep = {f % self.k, (f + 1) % self.k}
        return np.sort(np.concatenate([fold for i, fold in enumerate(self.folds) if i not in keep]))

    def split(self, f: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(train, val, test) index arrays of fold `f`."""
        return self.train(f), self.val(f), self.test(f)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        return (self.split(f) for f in range(self.k))


def cross_fit(groups: Sequence[str], k: int, seed: int, labels: Sequence[int] | None = None) -> CrossFit:
    """Grouped (and label-stratified when `labels` is given) cross-fitting folds; needs k >= 3."""
    if k < 3:
        raise DataError(f"cross-fitting needs k >= 3 folds (train, validation, test), got k={k}")
    g = _as_groups(groups)
    folds = tuple(test for _, test in grouped_kfold(g, k, seed, labels))
    for f in range(k):
        rest = [folds[i] for i in range(k) if i not in {f, (f + 1) % k}]
        assert_no_leak(g, np.concatenate(rest), folds[(f + 1) % k], folds[f])
    return CrossFit(folds=folds, groups=tuple(str(x) for x in g))


@dataclass(frozen=True)
class TransferSplit:
    """A transfer run's one "fold": fit-on samples split once by group into training and validation, and the
    test-on samples, used for nothing but the reported numbers. Iterates like `CrossFit`."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    @property
    def k(self) -> int:
        return 1

    def split(self, f: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if f != 0:
            raise IndexError(f"a transfer split has one fold, not fold {f}")
        return self.train, self.val, self.test

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        return iter([self.split(0)])


def validation_groups(
    groups: Sequence[str], k: int, seed: int, labels: Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices of one grouped split: the first of `grouped_kfold`'s k folds validates,
    so about 1/k of the groups (label-stratified when `labels` is given), chosen by `seed`."""
    train, val = grouped_kfold(groups, k, seed, labels)[0]
    return train, val
