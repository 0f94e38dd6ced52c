"""Which files each reading covers: the files and pairs the long-file policy kept and dropped, and the seeded,
class-balanced sample of files whose answers are generated (`--generate-sample`). Torch-free: the baseline
picks the sample with it, and the reports count from baseline/samples.jsonl rows with it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FileKey:
    """What the sample is drawn by: a file's id, its label (1 vulnerable) and its pair (None if unpaired)."""

    id: str
    label: int
    pair_id: str | None


def _draw_order(seed: int, key: str) -> str:
    """A file's (or pair's) place in the seeded order: a hash of the seed and its id, so the order does not
    depend on the order the files were loaded in, and another seed gives another order."""
    return hashlib.sha256(f"{seed}\0{key}".encode()).hexdigest()


def complete_pairs(files: Iterable[FileKey]) -> dict[str, tuple[FileKey, FileKey]]:
    """pair_id -> (vulnerable, secure) for the pairs both of whose sides are among `files`."""
    by_pair: dict[str, list[FileKey]] = {}
    for f in files:
        if f.pair_id is not None:
            by_pair.setdefault(f.pair_id, []).append(f)
    return {pid: (m[0], m[1]) if m[0].label == 1 else (m[1], m[0])
            for pid, m in by_pair.items() if len(m) == 2 and {m[0].label, m[1].label} == {0, 1}}


def generation_sample(files: Sequence[FileKey], n: int, seed: int) -> frozenset[str]:
    """The ids of at most `n` of `files`, half vulnerable and half secure: whole pairs first, in the seeded
    order (so P-C, pairs both right, stays computable on the sample), then unpaired files of each class in
    the seeded order. A class with fewer than n/2 files gives all it has (the other class still gives at most
    n/2). n at least the number of files: every file."""
    if n >= len(files):
        return frozenset(f.id for f in files)
    half = n // 2
    pairs = complete_pairs(files)
    chosen = [f for pid in sorted(pairs, key=lambda p: _draw_order(seed, p))[:half] for f in pairs[pid]]
    in_pairs = {f.id for members in pairs.values() for f in members}
    for label in (1, 0):
        have = sum(f.label == label for f in chosen)
        rest = sorted((f for f in files if f.label == label and f.id not in in_pairs),
                      key=lambda f: _draw_order(seed, f.id))
        chosen += rest[:max(half - have, 0)]
    return frozenset(f.id for f in chosen)


@dataclass(frozen=True)
class ClassCounts:
    vulnerable: int
    secure: int

    @classmethod
    def of(cls, rows: Iterable[dict]) -> ClassCounts:
        labels = [r.get("label") for r in rows]
        return cls(sum(v == 1 for v in labels), sum(v == 0 for v in labels))

    @property
    def total(self) -> int:
        return self.vulnerable + self.secure

    def text(self) -> str:
        return f"{self.total} ({self.vulnerable} vulnerable, {self.secure} secure)"


def _key(r: dict) -> FileKey:
    return FileKey(str(r.get("id")), int(r.get("label") or 0), None if r.get("pair_id") is None else str(r["pair_id"]))


@dataclass(frozen=True)
class KeptCounts:
    """Files (per class) and pairs the long-file policy kept and dropped, from baseline/samples.jsonl rows."""

    kept: ClassCounts
    dropped: ClassCounts
    with_twin: int  # dropped only because the twin was over the budget (--long-files skip-pairs)
    pairs_kept: int  # both sides kept
    pairs_dropped: int  # both sides dropped
    pairs_split: int  # one side kept, the other dropped (its P-C is undefined)

    @classmethod
    def of(cls, rows: Sequence[dict]) -> KeptCounts:
        kept = [r for r in rows if not r.get("skipped")]
        dropped = [r for r in rows if r.get("skipped")]
        out = {r.get("id") for r in dropped}
        sides = [sum(f.id in out for f in pair) for pair in complete_pairs(_key(r) for r in rows).values()]
        return cls(ClassCounts.of(kept), ClassCounts.of(dropped), sum(bool(r.get("skipped_with_twin")) for r in rows),
                   sides.count(0), sides.count(2), sides.count(1))

    def text(self) -> str:
        n_pairs = self.pairs_kept + self.pairs_dropped + self.pairs_split
        twin = f"; {self.with_twin} only because the twin was over the budget" if self.with_twin else ""
        out = (f"kept {self.kept.text()} of {self.kept.total + self.dropped.total} files and {self.pairs_kept} of "
               f"{n_pairs} pairs; dropped {_count(self.dropped.total, 'file')} ({self.dropped.vulnerable} vulnerable, "
               f"{self.dropped.secure} secure{twin}), {_count(self.pairs_dropped, 'pair')} whole")
        return out + (f"; {_count(self.pairs_split, 'pair')} lost one side" if self.pairs_split else "")


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class GeneratedCounts:
    """How many of the evaluated files have a generated answer (all, or the --generate-sample sample)."""

    generated: ClassCounts
    evaluated: int
    sample: int | None  # --generate-sample; None: every file

    @classmethod
    def of(cls, rows: Sequence[dict], sample: int | None) -> GeneratedCounts:
        evaluated = [r for r in rows if not r.get("skipped")]
        return cls(ClassCounts.of(r for r in evaluated if r.get("generation") is not None), len(evaluated), sample)

    def text(self) -> str:
        if self.sample is None:
            return f"generated answers: every one of the {self.evaluated} files"
        if self.generated.total == self.evaluated:
            return (f"generated answers: every one of the {self.evaluated} files (--generate-sample {self.sample} is "
                    "not fewer)")
        return (f"generated answers: a seeded class-balanced sample of {self.generated.total} of {self.evaluated} files "
                f"({self.generated.vulnerable} vulnerable, {self.generated.secure} secure; --generate-sample "
                f"{self.sample}); the answer score and published LLMs' columns cover every file")
