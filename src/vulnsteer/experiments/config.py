"""The configs of every experiment: frozen dataclasses that check themselves when built.

Defaults live here once; the command line reads them from here. Nothing here imports torch, so the command
line checks every option within a second, before any weights load. Checks that need the model (layer range,
context length) or the data (folds vs groups) are `check_*` methods, called as soon as those are known.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from vulnsteer.data.load import dataset_names
from vulnsteer.data.prompts import get_template
from vulnsteer.data.records import normalise_cwe
from vulnsteer.errors import VulnsteerError
from vulnsteer.options import (
    DEFAULT_PRECISION, Device, LongFiles, Method, Operator, Precision, Readout, SearchMode, StrengthUnit, SweepScope,
    Train, check_device,
)


ALL_TEMPLATES = "all"  # `vulnsteer baseline --template all`
AUTO_TEMPLATE = "auto"  # `--steer-template auto`: chosen per fold on validation


@dataclass(frozen=True)
class BaselineConfig:
    """What the baseline reads and how."""

    subsets: tuple[str, ...] = ("hand-crafted",)
    cwes: tuple[str, ...] | None = None
    template: str = "S1"
    generate: bool = True
    max_new_tokens: int = 256
    batch_size: int = 48  # prompts decoded together; finished answers leave the batch as they stop
    # Generate answers for a seeded, class-balanced sample of this many files (experiments/coverage.py), not
    # for every file; the answer score still covers every file. None: every file.
    generate_sample: int | None = None
    max_code_tokens: int = 1536
    long_files: LongFiles = LongFiles.WINDOWS
    n_boot: int = 1000
    seed: int = 0
    # Also score every implemented template on the same files (answer score only): baseline/templates.json.
    all_templates: bool = False

    def __post_init__(self) -> None:
        if self.template == ALL_TEMPLATES:
            raise VulnsteerError("--template all: only `vulnsteer baseline` scores every template (the steering "
                                 "experiment picks its template per fold with --steer-template auto)")
        if not self.subsets:
            raise VulnsteerError("no --subset given; use e.g. --subset hand-crafted")
        object.__setattr__(self, "subsets", tuple(self.subsets))
        get_template(self.template)  # one-line error listing the templates
        object.__setattr__(self, "long_files", LongFiles(self.long_files))
        if self.cwes is not None:
            try:
                object.__setattr__(self, "cwes", tuple(normalise_cwe(c) for c in self.cwes))
            except ValueError as exc:
                raise VulnsteerError(f"--cwe: {exc}; write it like CWE-787") from None
        for name, low in (("max_new_tokens", 1), ("batch_size", 1), ("max_code_tokens", 16), ("n_boot", 100)):
            if getattr(self, name) < low:
                raise VulnsteerError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be at least {low}")
        n = self.generate_sample
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 2 or n % 2):
            raise VulnsteerError(f"--generate-sample {n}: must be an even number of at least 2 (half vulnerable, "
                                 "half secure), or left out to generate for every file")

    def check_context(self, context: int | None) -> None:
        """Refuse answers longer than the model can hold (prompt tokens come on top)."""
        if context is not None and self.generate and self.max_new_tokens >= context:
            raise VulnsteerError(f"--max-new-tokens {self.max_new_tokens} does not fit the model's context of "
                                 f"{context} tokens; use at most {context // 4}")


@dataclass(frozen=True)
class SteerConfig:
    """The steering experiment's settings."""

    layers: tuple[int, ...] | None = None  # None: every block
    methods: tuple[Method, ...] = (Method.CAA, Method.PCA, Method.PROBE)
    # A calibration run of the 0.5B model: under +-4 sigma no answer flipped; +-16..64 sigma moves the
    # yes/no score by several nats at middle layers. Both signs: which way helps is measured, not assumed.
    add_alphas: tuple[float, ...] = (-32.0, -16.0, -8.0, -4.0, 4.0, 8.0, 16.0, 32.0)  # units of sigma along u
    amplify_alphas: tuple[float, ...] = (-1.0, 4.0, 16.0, 64.0)
    ablate: bool = True
    k_folds: int = 4
    n_random: int = 3
    select: str = "balanced_accuracy"  # validation metric that picks the configuration
    per_cwe: bool = False  # one direction per CWE (pooled where a CWE has too few training pairs)
    strength_unit: StrengthUnit = StrengthUnit.SIGMA  # what an additive strength of 1 means
    scope: SweepScope = SweepScope.ANSWER  # the answer position only, every code token, or every prompt position
    # The code and all scopes re-run every position after the steered block, about one forward per
    # configuration (the answer scope re-runs one token): their grid is every `wide_layer_stride`-th block
    # (when --layers is not given) and these strengths (docs/STEERING.md).
    wide_layer_stride: int = 3
    wide_add_alphas: tuple[float, ...] = (-16.0, -4.0, 4.0, 16.0)
    wide_amplify_alphas: tuple[float, ...] = (4.0,)
    seed: int = 0
    # The prompt template steering uses: None = the baseline's (--template, default S1); "auto" = per fold, the
    # template whose unsteered answer score has the best validation balanced accuracy (one extra pass per
    # template and file); or a template id.
    template: str | None = None
    # Conditional steering (experiments/conditional.py): steer a test sample only where a probe condition, chosen
    # on validation, passes. Costs no forward pass (it reuses the sweep's scores), hence on by default.
    conditional: bool = True
    # How much of the grid the validation sweep scores (experiments/search.py, docs/STEERING.md): `grid` every
    # configuration; `coarse-fine` every layer x method at reference strengths, then every strength at the
    # `search_top` best (layer, method) pairs. `search_subsample`: score at most this many validation samples
    # per fold (seeded, class-balanced); None: all of them.
    search: SearchMode = SearchMode.GRID
    search_top: int = 3
    search_subsample: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "search", SearchMode(self.search))
        if self.search_top < 1:
            raise VulnsteerError(f"--search-top {self.search_top}: the fine stage needs at least 1 (layer, method) pair")
        if self.search_subsample is not None and self.search_subsample < 4:
            raise VulnsteerError(f"--search-subsample {self.search_subsample}: score at least 4 validation samples "
                                 "per fold (2 per class), or leave it out to score all of them")
        if not isinstance(self.conditional, bool):
            raise VulnsteerError(f"conditional {self.conditional!r}: must be true or false")
        if not self.methods:
            raise VulnsteerError("--methods is empty; use any of " + ", ".join(m.value for m in Method))
        object.__setattr__(self, "methods", tuple(Method(m) for m in self.methods))
        if len(set(self.methods)) < len(self.methods):
            twice = next(m for m in self.methods if self.methods.count(m) > 1)
            raise VulnsteerError(f"--methods names {twice.value} twice; name each method once")
        object.__setattr__(self, "strength_unit", StrengthUnit(self.strength_unit))
        object.__setattr__(self, "scope", SweepScope(self.scope))
        if self.layers is not None:
            if not self.layers:
                raise VulnsteerError("--layers is empty; give blocks like '0-23' or '4,8,12', or leave it out")
            if min(self.layers) < 0:
                raise VulnsteerError(f"--layers: block {min(self.layers)} is negative; blocks count from 0")
            object.__setattr__(self, "layers", tuple(sorted({int(x) for x in self.layers})))
        if self.k_folds < 3:
            raise VulnsteerError(f"--folds {self.k_folds}: cross-fitting needs at least 3 (train, validation, test)")
        if self.n_random < 1:
            raise VulnsteerError(f"--n-random {self.n_random}: the random control needs at least one draw")
        if self.select not in ("balanced_accuracy", "accuracy", "auroc"):
            raise VulnsteerError(f"select {self.select!r}: use balanced_accuracy, accuracy or auroc")
        if self.wide_layer_stride < 1:
            raise VulnsteerError(f"wide_layer_stride {self.wide_layer_stride}: must be at least 1")
        alphas = (*self.add_alphas, *self.amplify_alphas, *self.wide_add_alphas, *self.wide_amplify_alphas)
        if not all(math.isfinite(a) for a in alphas):
            raise VulnsteerError("steering strengths must be finite numbers")
        if self.template is not None and self.template != AUTO_TEMPLATE:
            get_template(self.template)

    def settings(self) -> list[tuple[Operator, float]]:
        """(operator, strength) pairs the validation sweep tries at each layer and method (fewer for wide scopes)."""
        adds, amplifies = ((self.wide_add_alphas, self.wide_amplify_alphas) if self.scope.wide
                           else (self.add_alphas, self.amplify_alphas))
        out = [(Operator.ADD, a) for a in adds] + [(Operator.AMPLIFY, a) for a in amplifies]
        return out + ([(Operator.ABLATE, 0.0)] if self.ablate else [])

    def check_groups(self, n_groups: int) -> None:
        if n_groups < 3:
            raise VulnsteerError(f"the data has {n_groups} scenario group(s), but cross-fitting needs at least 3 "
                                 "(train, validation, test); add data (more --cwe or --subset)")
        if self.k_folds > n_groups:
            raise VulnsteerError(f"--folds {self.k_folds} is more than the {n_groups} scenario groups in the data; "
                                 f"use at most {n_groups}")

    def check_layers(self, n_layers: int) -> list[int]:
        """The steered blocks for a model of `n_layers` blocks (without --layers: every block, every
        `wide_layer_stride`-th for wide scopes); one-line error when out of range."""
        stride = self.wide_layer_stride if self.scope.wide else 1
        layers = list(self.layers) if self.layers is not None else list(range(0, n_layers, stride))
        bad = [x for x in layers if not 0 <= x < n_layers]
        if bad:
            raise VulnsteerError(f"--layers: block {bad[0]} out of range: the model has blocks 0..{n_layers - 1}")
        return layers


STAGES = ("probe", "steer")


@dataclass(frozen=True)
class RunConfig:
    """The whole job; the baseline pass always runs (every stage reads it), `stages` add probes and steering."""

    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    steer: SteerConfig = field(default_factory=SteerConfig)
    train: tuple[Train, ...] = (Train.HOLDOUT,)  # what, besides the training folds, builds the vectors
    n_side_by_side: int = 4
    side_by_side_tokens: int = 128
    n_fluency: int = 8
    stages: tuple[str, ...] = STAGES
    dtype: Precision = DEFAULT_PRECISION  # what the forward passes compute in; stored residuals stay float32
    device: str = Device.AUTO.value  # auto, cpu, cuda, cuda:<n> or mps
    readout: Readout = Readout.ANSWER  # where probes and vectors read the residuals
    # Transfer (docs/STEERING.md): vectors, probes and every choice from `fit_on`, numbers from `test_on`.
    # Both empty: cross-fitting over baseline.subsets. See _check_transfer for the rule.
    fit_on: tuple[str, ...] = ()
    test_on: tuple[str, ...] = ()
    # The fit-on data's code budget and long-file policy when they differ from the data under test's (None:
    # the baseline's): a large fit-on set (SVEN) can skip its long pairs while the test set is read whole.
    # Without --fit-on there is no fit-on data and they do nothing (a study refuses them on a cross-fitted cell).
    fit_max_code_tokens: int | None = None
    fit_long_files: LongFiles | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", Precision(self.dtype))
        if self.fit_long_files is not None:
            object.__setattr__(self, "fit_long_files", LongFiles(self.fit_long_files))
        if self.fit_max_code_tokens is not None and self.fit_max_code_tokens < 16:
            raise VulnsteerError(f"fit_max_code_tokens {self.fit_max_code_tokens}: must be at least 16")
        object.__setattr__(self, "readout", Readout(self.readout))
        object.__setattr__(self, "device", check_device(self.device))
        object.__setattr__(self, "train", tuple(Train(t) for t in self.train) or (Train.HOLDOUT,))
        bad = [s for s in self.stages if s not in STAGES]
        if bad:
            raise VulnsteerError(f"unknown stage {bad[0]!r}; use any of {', '.join(STAGES)}")
        for name in ("n_side_by_side", "side_by_side_tokens", "n_fluency"):
            if getattr(self, name) < 0:
                raise VulnsteerError(f"{name} must be >= 0, got {getattr(self, name)}")
        self._check_transfer()

    def _check_transfer(self) -> None:
        """The one rule: --test-on needs --fit-on; --fit-on without --test-on tests on --subset (default
        hand-crafted); either way the data under test (the baseline's subsets) becomes `test_on`."""
        fit, test = dataset_names(self.fit_on, "--fit-on"), dataset_names(self.test_on, "--test-on")
        if test and not fit:
            raise VulnsteerError("--test-on needs --fit-on (the data vectors and probes are fit on); without both, "
                                 "the run cross-fits over --subset")
        if fit:
            if self.steer.template == AUTO_TEMPLATE and "steer" in self.stages:
                # The choice reads the baseline's cross-fitting folds; a transfer run has one fit-on split instead.
                raise VulnsteerError("--steer-template auto cannot be combined with --fit-on; name a template "
                                     "(--steer-template S1, say) or drop --fit-on")
            if self.train != (Train.HOLDOUT,):
                raise VulnsteerError("--train adds training data to cross-fitting; with --fit-on, name that data "
                                     "in --fit-on instead")
            given = self.baseline.subsets
            if test and given not in (BaselineConfig().subsets, test):
                raise VulnsteerError(f"--subset {','.join(given)} and --test-on {','.join(test)} both name the data "
                                     "under test; give --test-on only")
            test = test or dataset_names(given, "--subset")
            object.__setattr__(self, "baseline", replace(self.baseline, subsets=test))
        object.__setattr__(self, "fit_on", fit)
        object.__setattr__(self, "test_on", test)

    def settings(self) -> dict[str, Any]:
        """What config.json records: a baseline-only run has no steering settings."""
        if self.stages:
            return asdict(self)
        return {"baseline": asdict(self.baseline), "dtype": self.dtype, "device": self.device}
