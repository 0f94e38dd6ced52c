"""Which files each reading covers: the seeded class-balanced generation sample and the kept/dropped counts."""

from __future__ import annotations

import random

import pytest

from vulnsteer.errors import VulnsteerError
from vulnsteer.experiments.baseline_config import BaselineConfig
from vulnsteer.experiments.coverage import FileKey, GeneratedCounts, KeptCounts, generation_sample


def _files(n_pairs: int, n_vulnerable_alone: int = 0, n_secure_alone: int = 0) -> list[FileKey]:
    files = [FileKey(f"p{i}/{side}", label, f"p{i}") for i in range(n_pairs)
             for side, label in (("vuln", 1), ("patch", 0))]
    files += [FileKey(f"v{i}", 1, None) for i in range(n_vulnerable_alone)]
    return files + [FileKey(f"s{i}", 0, None) for i in range(n_secure_alone)]


def _labels(files: list[FileKey], ids: frozenset[str]) -> tuple[int, int]:
    chosen = [f for f in files if f.id in ids]
    return sum(f.label == 1 for f in chosen), sum(f.label == 0 for f in chosen)


def test_the_sample_is_seeded_balanced_whole_pairs_and_independent_of_file_order():
    files = _files(40)
    sample = generation_sample(files, 8, seed=0)
    assert len(sample) == 8 and _labels(files, sample) == (4, 4)
    assert {f.pair_id for f in files if f.id in sample} == {f.pair_id for f in files if f.id in sample and f.label}
    shuffled = files[:]
    random.Random(1).shuffle(shuffled)
    assert generation_sample(shuffled, 8, seed=0) == sample
    others = {generation_sample(files, 8, seed=s) for s in range(1, 4)}
    assert sample not in others  # another seed draws another sample


def test_unpaired_files_fill_each_class_and_a_short_class_gives_all_it_has():
    files = _files(1, n_vulnerable_alone=5, n_secure_alone=1)
    sample = generation_sample(files, 6, seed=3)
    assert _labels(files, sample) == (3, 2)  # 1 pair + 2 lone vulnerable; the one lone secure file
    assert {"p0/vuln", "p0/patch", "s0"} <= sample
    assert generation_sample(files, 100, seed=3) == frozenset(f.id for f in files)


@pytest.mark.parametrize("n", [0, 1, 3, 65, -2])
def test_the_sample_size_must_be_even_and_at_least_two(n):
    with pytest.raises(VulnsteerError, match=f"--generate-sample {n}: must be an even number of at least 2"):
        BaselineConfig(generate_sample=n)
    assert BaselineConfig(generate_sample=64).generate_sample == 64 and BaselineConfig().generate_sample is None


def _row(rid: str, label: int, pair: str | None, skipped: bool = False, with_twin: bool = False,
         generation: str | None = None) -> dict:
    return dict(id=rid, label=label, pair_id=pair, skipped=skipped, skipped_with_twin=with_twin, generation=generation)


def test_kept_counts_count_files_per_class_and_pairs_whole_or_split():
    rows = [_row("a", 1, "A"), _row("a'", 0, "A"),  # kept whole
            _row("b", 1, "B", skipped=True), _row("b'", 0, "B", skipped=True, with_twin=True),  # dropped whole
            _row("c", 1, "C", skipped=True), _row("c'", 0, "C"),  # split (--long-files skip)
            _row("d", 0, None, skipped=True)]  # unpaired, dropped alone
    k = KeptCounts.of(rows)
    assert (k.kept.vulnerable, k.kept.secure, k.dropped.vulnerable, k.dropped.secure) == (1, 2, 2, 2)
    assert (k.pairs_kept, k.pairs_dropped, k.pairs_split, k.with_twin) == (1, 1, 1, 1)
    assert k.text() == ("kept 3 (1 vulnerable, 2 secure) of 7 files and 1 of 3 pairs; dropped 4 files (2 vulnerable, "
                        "2 secure; 1 only because the twin was over the budget), 1 pair whole; 1 pair lost one side")


def test_generated_counts_cover_the_evaluated_files_only():
    rows = [_row("a", 1, "A", generation="yes"), _row("a'", 0, "A", generation="no"), _row("b", 1, "B"),
            _row("c", 0, None, skipped=True)]
    g = GeneratedCounts.of(rows, 2)
    assert (g.generated.vulnerable, g.generated.secure, g.evaluated) == (1, 1, 3)
    assert g.text().startswith("generated answers: a seeded class-balanced sample of 2 of 3 files (1 vulnerable, 1 secure")
    every = GeneratedCounts.of(rows[:2], 4).text()
    assert every == "generated answers: every one of the 2 files (--generate-sample 4 is not fewer)"
