"""The configs of every experiment: frozen dataclasses that check themselves when built (the baseline's,
`BaselineConfig`, is in baseline_config.py).

Each option is declared once, on its field (options.opt): its default, help, flag and study TOML key; the
commands (cli_options.py) and the TOML keys (study_spec.py) are built from these declarations. Nothing here
imports torch, so the command line checks every option within a second, before any weights load. Checks
that need the model (layer range, context length) or the data (folds vs groups) are `check_*` methods,
called as soon as those are known.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from vulnsteer.data.load import dataset_names
from vulnsteer.data.prompts import get_template
from vulnsteer.errors import VulnsteerError
from vulnsteer.experiments.baseline_config import SEED, BaselineConfig
from vulnsteer.options import (
    DEFAULT_PRECISION,
    FITTED,
    PART,
    STEERING,
    Declared,
    Device,
    LongFiles,
    Method,
    Operator,
    Precision,
    Readout,
    SearchMode,
    StrengthUnit,
    SweepScope,
    Train,
    check_device,
    coerce,
    declared,
    opt,
    parse_layers,
)

AUTO_TEMPLATE = "auto"  # `--steer-template auto`: chosen per fold on validation


@dataclass(frozen=True)
class SteerConfig:
    """The steering experiment's settings."""

    layers: tuple[int, ...] | None = opt(
        None, "Steered blocks, e.g. '0-23' or '4,8,12'; repeatable (default every block).", "--layers", "layers",
        commands=STEERING, parse=parse_layers)
    methods: tuple[Method, ...] = opt((Method.CAA, Method.PCA, Method.PROBE), "Direction methods; repeatable or "
                                      "comma-separated.", "--methods", "methods", commands=STEERING)
    # A calibration run of the 0.5B model: under +-4 sigma no answer flipped; +-16..64 sigma moves the
    # yes/no score by several nats at middle layers. Both signs: which way helps is measured, not assumed.
    add_alphas: tuple[float, ...] = opt(
        (-32.0, -16.0, -8.0, -4.0, 4.0, 8.0, 16.0, 32.0), "Additive strengths the answer-scope sweep tries, in "
        "--strength-unit units; comma-separated, e.g. --add-alphas=-8,8.", "--add-alphas", "add_alphas",
        commands=STEERING)
    amplify_alphas: tuple[float, ...] = opt(
        (-1.0, 4.0, 16.0, 64.0), "Amplification strengths the answer-scope sweep tries; comma-separated.",
        "--amplify-alphas", "amplify_alphas", commands=STEERING)
    ablate: bool = opt(True, "Also try ablating the direction in the sweep.", "--ablate/--no-ablate", "ablate",
                       commands=STEERING)
    k_folds: int = opt(4, "Cross-fitting folds over scenario groups (>= 3); with --fit-on, 1 of this many validates.",
                       "--folds", "folds", commands=STEERING)
    n_random: int = opt(3, "Random-direction controls per test sample.", "--n-random", "n_random", commands=STEERING)
    select: str = opt("balanced_accuracy", "The validation metric that picks the configuration: balanced_accuracy, "
                      "accuracy or auroc.", "--select", "select", commands=STEERING)
    per_cwe: bool = opt(False, "One direction per CWE (pooled where a CWE has < 2 training pairs).", "--per-cwe",
                        "per_cwe", commands=STEERING)
    strength_unit: StrengthUnit = opt(StrengthUnit.SIGMA, "What an additive strength of 1 means.", "--strength-unit",
                                      "strength_unit", commands=STEERING)
    scope: SweepScope = opt(
        SweepScope.ANSWER, "Steered positions: the answer, every code token, or every prompt token (code and all "
        "re-run the prompt per configuration, so their grid is smaller: --wide-*; docs/STEERING.md).", "--scope",
        "scope", commands=STEERING)
    # The code and all scopes re-run every position after the steered block, about one forward per
    # configuration (the answer scope re-runs one token): hence their own, smaller grid.
    wide_layer_stride: int = opt(3, "With --scope code or all and no --layers: steer every this-many-th block.",
                                 "--wide-layer-stride", "wide_layer_stride", commands=STEERING)
    wide_add_alphas: tuple[float, ...] = opt((-16.0, -4.0, 4.0, 16.0), "Additive strengths for --scope code or all.",
                                             "--wide-add-alphas", "wide_add_alphas", commands=STEERING)
    wide_amplify_alphas: tuple[float, ...] = opt((4.0,), "Amplification strengths for --scope code or all.",
                                                 "--wide-amplify-alphas", "wide_amplify_alphas", commands=STEERING)
    seed: int = opt(0, SEED, "--seed", "seed")
    template: str | None = opt(
        None, "Template steering uses: 'auto' (per fold, the template whose unsteered answer score has the best "
        "validation balanced accuracy; one extra pass per template and file; not with --fit-on) or an id (default: "
        "--template).", "--steer-template", "steer_template", commands=STEERING)
    # It costs no forward pass (it reuses the sweep's scores), hence on by default.
    conditional: bool = opt(
        True, "Also report conditional steering (CAST): steer a test file only where a probe condition chosen on "
        "validation passes (no extra forward passes).", "--conditional/--no-conditional", "conditional",
        commands=STEERING)
    search: SearchMode = opt(
        SearchMode.GRID, "Configurations the validation sweep scores: grid = every layer x method x strength; "
        "coarse-fine = every layer x method at reference strengths, then every strength at the --search-top best "
        "pairs.", "--search", "search", commands=STEERING)
    search_top: int = opt(3, "With --search coarse-fine: the (layer, method) pairs whose every strength is scored.",
                          "--search-top", "search_top", commands=STEERING)
    search_subsample: int | None = opt(
        None, "Score at most this many validation samples per fold in the sweep (seeded, half per class; default "
        "all).", "--search-subsample", "search_subsample", commands=STEERING)

    def __post_init__(self) -> None:
        coerce(self)
        if self.search_top < 1:
            raise VulnsteerError(f"--search-top {self.search_top}: the fine stage needs at least 1 (layer, method) pair")
        if self.search_subsample is not None and self.search_subsample < 4:
            raise VulnsteerError(f"--search-subsample {self.search_subsample}: score at least 4 validation samples "
                                 "per fold (2 per class), or leave it out to score all of them")
        if not isinstance(self.conditional, bool):
            raise VulnsteerError(f"conditional {self.conditional!r}: must be true or false")
        if not self.methods:
            raise VulnsteerError("--methods is empty; use any of " + ", ".join(m.value for m in Method))
        if len(set(self.methods)) < len(self.methods):
            twice = next(m for m in self.methods if self.methods.count(m) > 1)
            raise VulnsteerError(f"--methods names {twice.value} twice; name each method once")
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
            raise VulnsteerError(f"--select {self.select!r}: use balanced_accuracy, accuracy or auroc")
        if self.wide_layer_stride < 1:
            raise VulnsteerError(f"--wide-layer-stride {self.wide_layer_stride}: must be at least 1")
        alphas = (*self.add_alphas, *self.amplify_alphas, *self.wide_add_alphas, *self.wide_amplify_alphas)
        if not all(math.isfinite(a) for a in alphas):
            raise VulnsteerError("steering strengths (--add-alphas, --amplify-alphas, --wide-*) must be finite numbers")
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

    baseline: BaselineConfig = field(default_factory=BaselineConfig, metadata=PART)
    steer: SteerConfig = field(default_factory=SteerConfig, metadata=PART)
    train: tuple[Train, ...] = opt((Train.HOLDOUT,), "Vector training data besides the training folds; repeatable "
                                   "or comma-separated.", "--train", "train", commands=STEERING)
    n_side_by_side: int = opt(4, "Test files whose steered and unsteered answers the report shows side by side.",
                              "--n-side-by-side", "n_side_by_side", commands=STEERING)
    side_by_side_tokens: int = opt(128, "Tokens generated per side-by-side answer.", "--side-by-side-tokens",
                                   "side_by_side_tokens", commands=STEERING)
    n_fluency: int = opt(8, "Files whose steered generation is checked for fluency.", "--n-fluency", "n_fluency",
                         commands=STEERING)
    stages: tuple[str, ...] = opt(STAGES, "The stages after the baseline.", None, None, cli="the command's name",
                                  toml_via="a study cell runs every stage")
    dtype: Precision = opt(
        DEFAULT_PRECISION, "Forward-pass precision: bf16-mixed = bfloat16 matmuls, float32 residuals (stored "
        "residuals stay float32 whatever this is; docs/BENCHMARKS.md).", "--dtype", "dtype")
    device: str = opt(Device.AUTO.value, "auto (cuda, else mps, else cpu), cpu, cuda[:n] or mps.", "--device",
                      "device")
    readout: Readout = opt(
        Readout.ANSWER, "Residuals probes and vectors read: answer = the last prompt token; code-mean = mean over "
        "the code's tokens; code-last = the code's last token.", "--readout", None, commands=FITTED,
        toml_via="the study's readouts")
    # Transfer (docs/STEERING.md): vectors, probes and every choice from `fit_on`, numbers from `test_on`.
    # Both empty: cross-fitting over baseline.subsets. See _check_transfer for the rule.
    fit_on: tuple[str, ...] = opt(
        (), "Transfer: fit vectors, probes and every choice on these datasets (subset names, 'sven', pairs .jsonl "
        "paths); repeatable or comma-separated.", "--fit-on", None, commands=FITTED, toml_via="a cell's fit")
    test_on: tuple[str, ...] = opt(
        (), "Transfer: report numbers on these datasets only (default --subset); needs --fit-on.", "--test-on",
        None, commands=FITTED, toml_via="a cell's test")
    # A large fit-on set (SVEN) can skip its long pairs while the test set is read whole. Without --fit-on there
    # is no fit-on data and they do nothing (a study refuses them on a cross-fitted cell).
    fit_max_code_tokens: int | None = opt(None, "With --fit-on, the fit-on data's --max-code-tokens (default: the same).",
                                          "--fit-max-code-tokens", "fit_max_code_tokens", commands=FITTED)
    fit_long_files: LongFiles | None = opt(None, "With --fit-on, the fit-on data's --long-files (default: the same).",
                                           "--fit-long-files", "fit_long_files", commands=FITTED)

    def __post_init__(self) -> None:
        coerce(self)
        if self.fit_max_code_tokens is not None and self.fit_max_code_tokens < 16:
            raise VulnsteerError(f"--fit-max-code-tokens {self.fit_max_code_tokens}: must be at least 16")
        object.__setattr__(self, "device", check_device(self.device))
        object.__setattr__(self, "train", self.train or (Train.HOLDOUT,))
        bad = [s for s in self.stages if s not in STAGES]
        if bad:
            raise VulnsteerError(f"unknown stage {bad[0]!r}; use any of {', '.join(STAGES)}")
        for name in ("n_side_by_side", "side_by_side_tokens", "n_fluency"):
            if getattr(self, name) < 0:
                raise VulnsteerError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be at least 0")
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


def declarations() -> tuple[Declared, ...]:
    """Every option of a run, declared once on its field: the command line's flags and the study TOML's [run]
    keys are built from these (cli_options.py, study_spec.py)."""
    return (*declared(BaselineConfig, "baseline"), *declared(SteerConfig, "steer"), *declared(RunConfig, "run"))
