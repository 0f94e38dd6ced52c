"""Every choice a user makes by name, as `str` Enums: the one list of allowed values, shown by `--help`,
checked when a config is built, and imported by the code that acts on it.

This module imports nothing heavy (no torch), so the command line can check options within a second.
"""

from __future__ import annotations

from enum import Enum


class Choice(str, Enum):
    """A str Enum whose bad values give a one-line error listing the good ones."""

    @classmethod
    def _missing_(cls, value: object) -> Choice:
        from vulnsteer.errors import VulnsteerError

        label = cls.__name__.lower()
        raise VulnsteerError(f"unknown {label} {value!r}; use one of {', '.join(m.value for m in cls)}")

    def __str__(self) -> str:
        return self.value


class Method(Choice):
    """How a direction is built from contrastive residuals (vectors/methods.py)."""

    CAA = "caa"
    PCA = "pca"
    PROBE = "probe"


class Operator(Choice):
    """What a direction does to a residual (vectors/operators.py)."""

    ADD = "add"
    AMPLIFY = "amplify"
    ABLATE = "ablate"


class Scope(Choice):
    """Which token positions are steered (vectors/hooks.py)."""

    ALL = "all"
    PROMPT = "prompt"
    ANSWER = "answer"
    GENERATED = "generated"
    SPAN = "span"  # the token range given as `span` (vulnsteer steers the code's tokens with it)


class SweepScope(Choice):
    """Positions the steering experiment steers: the answer position, every token of the code, or every
    prompt position. The answer is read at the last prompt position in each."""

    ANSWER = "answer"
    CODE = "code"
    ALL = "all"

    @property
    def hook_scope(self) -> Scope:
        """The `vectors.hooks` scope that steers these positions (code: the span of the code's tokens)."""
        return {SweepScope.ANSWER: Scope.ANSWER, SweepScope.CODE: Scope.SPAN, SweepScope.ALL: Scope.ALL}[self]

    @property
    def wide(self) -> bool:
        """Steers many positions: every later position is re-run per configuration (a smaller default grid)."""
        return self is not SweepScope.ANSWER


class SearchMode(Choice):
    """How much of the configuration grid the steering experiment's validation sweep scores
    (experiments/search.py): all of it, or every layer x method at reference strengths, then every strength
    at the best few (layer, method) pairs."""

    GRID = "grid"
    COARSE_FINE = "coarse-fine"


class Readout(Choice):
    """Where a prompt's residuals are read for probes and steering vectors: the answer position (the last
    prompt token), the mean over the code's tokens, or the code's last token."""

    ANSWER = "answer"
    CODE_MEAN = "code-mean"
    CODE_LAST = "code-last"


class StrengthUnit(Choice):
    """What an additive strength of 1 means: the training projections' spread, the mean residual norm,
    the direction's own norm as built, or one unit of length."""

    SIGMA = "sigma"
    MEAN_NORM = "mean_norm"
    RAW = "raw"
    UNIT = "unit"


class LongFiles(Choice):
    """What happens to a file longer than the token budget (data/fitting.py): read in consecutive windows and
    pooled, cut to one window around the lines that differ from its patched twin (oracle knowledge), skipped,
    or skipped together with its twin (the other side of its vulnerable/patched pair), so that dropping long
    files drops whole pairs and leaves the class balance of paired data as it was."""

    WINDOWS = "windows"
    DIFF_CENTRED = "diff-centred"
    SKIP = "skip"
    SKIP_PAIRS = "skip-pairs"


class Train(Choice):
    """Data the steering vectors are fit on besides the training folds."""

    HOLDOUT = "holdout"
    AUGMENTED = "augmented"
    SVEN = "sven"


class Precision(Choice):
    """What the forward passes compute in (model/precision.py); stored residuals stay float32 whatever this is."""

    FLOAT32 = "float32"
    # bfloat16 weights and matmul inputs in the blocks' Linear layers; the residual stream, norms,
    # attention, biases and the unembedding stay float32 (model/precision.py says why).
    BF16_MIXED = "bf16-mixed"
    BFLOAT16 = "bfloat16"  # everything in bfloat16


class Device(Choice):
    """Where the model runs: auto is cuda if available, else mps, else cpu; cuda:<n> picks a GPU."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"
    MPS = "mps"


class StudyPreset(Choice):
    """The built-in grids of `vulnsteer study` (experiments/study_spec.py, docs/STUDY.md)."""

    QUICK = "quick"
    FULL = "full"


class Executor(Choice):
    """Where a study's cells run: one after another here, or as tasks on a Ray cluster."""

    LOCAL = "local"
    RAY = "ray"


# Chosen by the fidelity bar in docs/BENCHMARKS.md (benchmarks/precision.py): the fastest precision whose
# answer scores keep Spearman >= 0.99, verdicts agree on >= 95% of files and every per-layer probe AUROC
# stays within 0.02 of float32's. None of bf16-mixed, bfloat16 and int8 passed on the default model.
DEFAULT_PRECISION = Precision.FLOAT32


def check_device(text: str) -> str:
    """A device name as the user wrote it (cuda:1 keeps its index); one-line error for an unknown kind."""
    kind, _, index = str(text).partition(":")
    Device(kind)
    if index and not index.isdigit():
        from vulnsteer.errors import VulnsteerError

        raise VulnsteerError(f"unknown device {text!r}; write cuda or cuda:<n>")
    return str(text)


def parse_list(values: list[str] | tuple[str, ...] | str | None) -> list[str]:
    """Repeatable and comma-separated alike: ["a,b", "c"] -> ["a", "b", "c"]."""
    if values is None:
        return []
    items = [values] if isinstance(values, str) else list(values)
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


class ConditionSide(Choice):
    """Which side of its threshold a sample's projection on the condition direction must lie on to be steered
    (experiments/conditional.py)."""

    ABOVE = "above"
    BELOW = "below"
