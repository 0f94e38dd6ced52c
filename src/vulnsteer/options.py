"""Every choice a user makes by name, as `str` Enums: the one list of allowed values, shown by `--help`,
checked when a config is built, and imported by the code that acts on it.

This module imports nothing heavy (no torch), so the command line can check options within a second.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any

from vulnsteer.errors import VulnsteerError


class Choice(str, Enum):
    """A str Enum whose bad values give a one-line error listing the good ones."""

    @classmethod
    def _missing_(cls, value: object) -> Choice:
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
        raise VulnsteerError(f"unknown device {text!r}; write cuda or cuda:<n>")
    return str(text)


def parse_list(values: list[str] | tuple[str, ...] | str | None) -> list[str]:
    """Repeatable and comma-separated alike: ["a,b", "c"] -> ["a", "b", "c"]."""
    if values is None:
        return []
    items = [values] if isinstance(values, str) else list(values)
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


def parse_layers(values: list[str]) -> tuple[int, ...]:
    """'0-23', '4,8,12' or repeated --layers -> block indices; empty or reversed ranges are refused."""
    layers: list[int] = []
    for part in parse_list(values):
        span = re.fullmatch(r"(\d+)-(\d+)", part)
        if span:
            lo, hi = int(span.group(1)), int(span.group(2))
            if hi < lo:
                raise VulnsteerError(f"--layers {part!r} is reversed; write it low-high, e.g. '{hi}-{lo}'")
            layers += range(lo, hi + 1)
            continue
        try:
            layers.append(int(part))
        except ValueError:
            raise VulnsteerError(f"--layers {part!r} is not a list like '0-23' or '4,8,12'") from None
    return tuple(layers)


class ConditionSide(Choice):
    """Which side of its threshold a sample's projection on the condition direction must lie on to be steered
    (experiments/conditional.py)."""

    ABOVE = "above"
    BELOW = "below"


# ---- one declaration per option --------------------------------------------------------------------------
# Which commands take an option (cli_options.py builds each command's flags from these).
EVERY = ("baseline", "probe", "steer", "run")
GENERATION = ("baseline", "run")
FITTED = ("probe", "steer", "run")
STEERING = ("steer", "run")


@dataclass(frozen=True)
class Opt:
    """How a user reaches one config field: its help, its flag on `commands`, and its [run] key in a study
    TOML. A field without a flag or key says in `cli` / `toml` what reaches it instead (a cell's data, the
    command's name). `parse` reads the flag's values when the field's type alone does not say how (layers)."""

    help: str
    flag: str | None
    toml: str | None
    commands: tuple[str, ...] = EVERY
    cli: str = ""
    toml_via: str = ""
    parse: Callable[[list[str]], Any] | None = None
    short: str | None = None

    def __post_init__(self) -> None:
        if not (self.flag or self.cli) or not (self.toml or self.toml_via):
            raise TypeError(f"option {self.help[:40]!r}: give a flag (or `cli`) and a TOML key (or `toml_via`)")


def opt(default: Any, help: str, flag: str | None, toml: str | None, **how: Any) -> Any:
    """A config field declared once: `opt(LongFiles.WINDOWS, "Files over ...", "--long-files", "long_files")`."""
    return field(default=default, metadata={"opt": Opt(help, flag, toml, **how)})


@dataclass(frozen=True)
class Shape:
    """A field's type as the command line and TOML read it: one item or a tuple of items, maybe None."""

    item: Any  # bool, int, float, str or a Choice
    many: bool
    optional: bool


@dataclass(frozen=True)
class Declared:
    """One declared config field: where it lives (`part`: baseline, steer or run), its name, type and Opt."""

    part: str
    name: str
    shape: Shape
    opt: Opt
    default: Any


def shape_of(hint: Any) -> Shape:
    args = typing.get_args(hint)
    optional = typing.get_origin(hint) in (types.UnionType, typing.Union) and type(None) in args
    if optional:
        hint = next(a for a in args if a is not type(None))
    if typing.get_origin(hint) is tuple:
        return Shape(typing.get_args(hint)[0], True, optional)
    return Shape(hint, False, optional)


PART = {"part": True}  # the metadata of a field that holds a config of its own (RunConfig.baseline, .steer)


def declared(cls: type, part: str) -> tuple[Declared, ...]:
    """Every option field of config class `cls` (parts left out); a field without a declaration is a
    TypeError, so no option can be added that the command line or the study TOML cannot reach."""
    hints, out = typing.get_type_hints(cls), []
    for f in fields(cls):
        if f.metadata.get("part"):
            continue
        spec = f.metadata.get("opt")
        if spec is None:
            raise TypeError(f"{cls.__name__}.{f.name} has no opt(...) declaration (its flag and TOML key)")
        out.append(Declared(part, f.name, shape_of(hints[f.name]), spec, f.default))
    return tuple(out)


def coerce(config: object) -> None:
    """Turn a frozen config's enum fields (given as text through the library API) into their enums, in place:
    one-line error for an unknown value."""
    for d in declared(type(config), ""):
        value = getattr(config, d.name)
        if value is None or not (isinstance(d.shape.item, type) and issubclass(d.shape.item, Enum)):
            continue
        value = tuple(d.shape.item(v) for v in value) if d.shape.many else d.shape.item(value)
        object.__setattr__(config, d.name, value)
