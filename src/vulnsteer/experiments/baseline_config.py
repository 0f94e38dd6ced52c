"""The baseline's config (`BaselineConfig`): what it reads and how, checked when built; part of a `RunConfig`
(config.py), and torch-free like it.
"""

from __future__ import annotations

from dataclasses import dataclass

from vulnsteer.data.prompts import get_template
from vulnsteer.data.records import normalise_cwe
from vulnsteer.errors import VulnsteerError
from vulnsteer.options import GENERATION, LongFiles, coerce, opt

ALL_TEMPLATES = "all"  # `vulnsteer baseline --template all`
# The --seed help, one text for the seed fields of BaselineConfig and SteerConfig.
SEED = "Seeds the bootstrap, the folds, the probes, the random controls and the generation sample."


@dataclass(frozen=True)
class BaselineConfig:
    """What the baseline reads and how."""

    subsets: tuple[str, ...] = opt(
        ("hand-crafted",), "SecLLMHolmes subset, 'sven', 'planted' (the positive control), or a pairs .jsonl path; "
        "repeatable or comma-separated.", "--subset", None, toml_via="a cell's datasets")
    cwes: tuple[str, ...] | None = opt(
        None, "Restrict to these CWEs, e.g. CWE-787; repeatable or comma-separated.", "--cwe", "cwes")
    template: str = opt(
        "S1", "Prompt template id (docs/PROMPTS.md), e.g. S1..S6, R1, R2, R4..R6, D1..D5; for `vulnsteer baseline` "
        "also 'all': the standard baseline under S1 plus baseline/templates.json, every implemented template on the "
        "same files (answer score only).", "--template", "template", short="-t")
    generate: bool = opt(True, "Also generate a multi-token answer and parse it.", "--generate/--no-generate",
                         "generate", commands=GENERATION)
    max_new_tokens: int = opt(256, "Tokens generated per answer.", "--max-new-tokens", "max_new_tokens",
                              commands=GENERATION)
    batch_size: int = opt(48, "Prompts decoded together in generation; finished answers leave the batch as they "
                          "stop.", "--batch-size", "batch_size", commands=GENERATION)
    generate_sample: int | None = opt(
        None, "Generate answers for a seeded (--seed), class-balanced sample of this many files (even; whole pairs "
        "first; experiments/coverage.py) instead of every file; the answer score still covers every file.",
        "--generate-sample", "generate_sample", commands=GENERATION)
    max_code_tokens: int = opt(1536, "Longer files follow --long-files.", "--max-code-tokens", "max_code_tokens")
    long_files: LongFiles = opt(
        LongFiles.WINDOWS, "Files over --max-code-tokens. windows reads the whole file in windows of whole lines "
        "(answer score: max over windows; residuals: mean); diff-centred keeps one window around the lines that "
        "differ from the patched twin (knowledge of where the bug is); skip leaves the file out; skip-pairs leaves "
        "it out with its twin, so whole pairs go and paired data keeps its class balance.", "--long-files",
        "long_files")
    n_boot: int = opt(1000, "Bootstrap resamples for the 95% intervals.", "--n-boot", "n_boot")
    seed: int = opt(0, SEED, "--seed", "seed")
    all_templates: bool = opt(
        False, "Also score every implemented template on the same files (answer score only): "
        "baseline/templates.json.", None, "all_templates", cli="vulnsteer baseline --template all")

    def __post_init__(self) -> None:
        if self.template == ALL_TEMPLATES:
            raise VulnsteerError("--template all: only `vulnsteer baseline` scores every template (the steering "
                                 "experiment picks its template per fold with --steer-template auto)")
        if not self.subsets:
            raise VulnsteerError("no --subset given; use e.g. --subset hand-crafted")
        object.__setattr__(self, "subsets", tuple(self.subsets))
        get_template(self.template)  # one-line error listing the templates
        coerce(self)
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
