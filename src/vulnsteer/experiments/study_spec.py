"""What a study runs: models x readouts x (fit-on, test-on) splits, from a preset or a TOML file
(docs/STUDY.md). `cell_config` builds every cell's RunConfig. Torch-free, so a bad spec fails in one line
naming the key before anything loads.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from vulnsteer.data.load import SVEN, dataset_names
from vulnsteer.data.planted import PLANTED
from vulnsteer.errors import VulnsteerError
from vulnsteer.experiments.config import RunConfig, declarations
from vulnsteer.model.sources import DEFAULT_MODEL
from vulnsteer.options import Declared, LongFiles, Readout, SearchMode, Shape, StudyPreset, Train

CROSSFIT = "crossfit"  # the test part of a cross-fitted cell's folder name
AUGMENTED = ("augmented-trivial", "augmented-non-trivial")


class SpecError(VulnsteerError):
    """A study spec (TOML file) with an unknown key or a bad value."""


@dataclass(frozen=True)
class Split:
    """Where vectors and probes are fit and where they are scored; `test` empty: cross-fitted folds over `fit`.
    `settings`: [run] keys this cell sets apart from the study's (e.g. a large data set's long-file policy)."""

    fit: tuple[str, ...]
    test: tuple[str, ...] = ()
    settings: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        return f"{_names_slug(self.fit)}__{_names_slug(self.test) if self.test else CROSSFIT}"


@dataclass(frozen=True)
class Cell:
    """One run of the study: a model, a readout and a split; `index` counts from 1 in the study's order."""

    index: int
    total: int
    model: str
    readout: Readout
    split: Split

    @property
    def name(self) -> str:
        """The cell's folder name: <model>__<readout>__<fit>__<test>."""
        return f"{model_slug(self.model)}__{self.readout.value}__{self.split.label}"

    @property
    def title(self) -> str:
        """How progress lines name the cell: "cell 3/15 <name>"."""
        return f"cell {self.index}/{self.total} {self.name}"


@dataclass(frozen=True)
class StudySpec:
    """The grid and the settings every cell shares (`run`; each cell sets its subsets, readout and split)."""

    models: tuple[str, ...] = (DEFAULT_MODEL,)
    readouts: tuple[Readout, ...] = (Readout.ANSWER,)
    splits: tuple[Split, ...] = (Split(("hand-crafted",)),)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "readouts", tuple(Readout(r) for r in self.readouts))
        for name in ("models", "readouts", "splits"):
            values = getattr(self, name)
            if not values:
                raise SpecError(f"{name} is empty; name at least one")
            if len(set(values)) < len(values):
                raise SpecError(f"{name} lists {next(v for v in values if values.count(v) > 1)!r} twice")
        for split in self.splits:
            dataset_names((*split.fit, *split.test), "dataset")
            with_settings(self.run, dict(split.settings))  # checked here, before anything loads
            fit_side = [k for k, _ in split.settings if k.startswith("fit_")]
            if fit_side and not split.test:
                raise SpecError(f"{fit_side[0]} sets the fit-on data's policy; a cross-fitted cell "
                                f"({split.label}) has none: use long_files / max_code_tokens")
        labels = [s.label for s in self.splits]
        if len(set(labels)) < len(labels):
            raise SpecError(f"two cells read the same data ({next(x for x in labels if labels.count(x) > 1)}); "
                            "a cell's folder is named by its data, so give each data split once")
        slugs = [model_slug(m) for m in self.models]
        if len(set(slugs)) < len(slugs):
            raise SpecError(f"two models share the folder name {next(s for s in slugs if slugs.count(s) > 1)!r}; "
                            "give them distinct names or folders")

    def cells(self) -> list[Cell]:
        """Every cell, model by model, split by split, readout by readout: a split's readouts read the same
        prompts, so run one after another they share one pass per prompt (activations/memo.py)."""
        grid = [(m, r, s) for m in self.models for s in self.splits for r in self.readouts]
        return [Cell(i, len(grid), m, r, s) for i, (m, r, s) in enumerate(grid, start=1)]

    def settings(self) -> dict[str, Any]:
        """What study.json records."""
        return {"models": list(self.models), "readouts": [r.value for r in self.readouts],
                "cells": [{"fit": list(s.fit), "test": list(s.test), **({"run": dict(s.settings)} if s.settings else {})}
                          for s in self.splits], "run": self.run.settings()}


def cell_config(spec: StudySpec, cell: Cell) -> RunConfig:
    """The one place a cell's RunConfig is built: the shared settings, the cell's readout, and its data.

    A cross-fitted cell studies its `fit` datasets (baseline subsets) and keeps `train`; a fit -> test cell
    measures the baseline on `test` and fits on `fit` alone (fit_on names all its training data)."""
    split, run = cell.split, with_settings(spec.run, dict(cell.split.settings))
    if split.test:
        return replace(run, baseline=replace(run.baseline, subsets=split.test), readout=cell.readout,
                       fit_on=split.fit, test_on=split.test, train=(Train.HOLDOUT,))
    return replace(run, baseline=replace(run.baseline, subsets=split.fit), readout=cell.readout, fit_on=(), test_on=())


# The full preset's large data set on the 2-core machine (about 160 prompt tokens/s in float32): SVEN's 1,440
# files whole are about 1.35M code tokens, hours of passes. A SVEN pair is kept only when both of its sides fit
# SVEN_BUDGET code tokens (default tokenizer: 416 of 720 pairs, 130k code tokens; 768 would keep 545 pairs, twice
# the tokens), pairs whole so the classes stay balanced, and the 256-token answers are generated for a seeded
# class-balanced sample. Other data is read whole, long real-world files in windows, as `vulnsteer run` reads it.
SVEN_BUDGET = 384
LARGE = (("long_files", LongFiles.SKIP_PAIRS), ("max_code_tokens", SVEN_BUDGET), ("generate_sample", 64))
LARGE_FIT = (("fit_long_files", LongFiles.SKIP_PAIRS), ("fit_max_code_tokens", SVEN_BUDGET))
# Real-world's 30 files are 96 windows, answers decoded on long contexts (17 min for all): answers for a seeded
# class-balanced sample of 16 files; the answer scores still cover all 30.
REAL_WORLD_TEST = (("generate_sample", 16),)
# Every cell of the full preset: the coarse-to-fine search (315 of the 936 answer-scope configurations per
# validation sample) on at most 48 validation samples per fold (a SVEN fold validates about 200; hand-crafted
# folds hold 12, all scored), and fewer side-by-side answers and fluency files than `vulnsteer run`.
FULL_RUN = {"search": SearchMode.COARSE_FINE, "search_subsample": 48, "n_side_by_side": 2, "n_fluency": 4}


def preset(name: StudyPreset | str) -> StudySpec:
    """quick: the default model, answer and code-mean readouts, hand-crafted cross-fitted, searched as the full
    preset searches, without generation, side-by-side or fluency (the full preset's cells 4-5, steering only).
    full: the default model x every readout x SVEN cross-fitted, SVEN -> hand-crafted, SVEN -> real-world,
    hand-crafted + augmented -> real-world, hand-crafted cross-fitted and the planted positive control
    cross-fitted; SVEN within a code budget (LARGE), real-world answers for a sample (REAL_WORLD_TEST)."""
    if StudyPreset(name) is StudyPreset.QUICK:
        return StudySpec(readouts=(Readout.ANSWER, Readout.CODE_MEAN), splits=(Split(("hand-crafted",)),),
                         run=run_config({**FULL_RUN, "generate": False, "n_side_by_side": 0, "n_fluency": 0}))
    # Smallest first: the positive control and the hand-crafted cells have their numbers within minutes.
    return StudySpec(readouts=tuple(Readout), run=run_config(FULL_RUN), splits=(
        Split((PLANTED,)), Split(("hand-crafted",)), Split((SVEN,), settings=LARGE),
        Split((SVEN,), ("hand-crafted",), LARGE_FIT), Split((SVEN,), ("real-world",), LARGE_FIT + REAL_WORLD_TEST),
        Split(("hand-crafted", *AUGMENTED), ("real-world",), REAL_WORLD_TEST),
    ))


def model_slug(model: str) -> str:
    """A model name as a folder name: a local path by its last part, a hub id with '/' as '-'."""
    text = str(model).rstrip("/\\")
    if Path(text).exists():
        text = Path(text).name
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-.") or "model"


def _names_slug(names: tuple[str, ...]) -> str:
    return "+".join(Path(n).stem if n.endswith(".jsonl") else n for n in names)


# ---- the TOML file -------------------------------------------------------------------------------------

TOP_KEYS = ("models", "readouts", "cells", "run")
CELL_KEYS = ("crossfit", "fit", "test", "run")
# [run] key -> the config fields it sets, from their declarations; "seed" seeds the bootstrap and the steering.
RUN_KEYS: dict[str, list[Declared]] = {}
for _d in declarations():
    if _d.opt.toml:
        RUN_KEYS.setdefault(_d.opt.toml, []).append(_d)


# What a TOML value must be, by the field's item type (a Choice is written as its text).
ITEMS: dict[Any, tuple[str, str, Callable[[Any], bool]]] = {
    bool: ("true or false", "booleans", lambda v: isinstance(v, bool)),
    int: ("an integer", "integers", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    float: ("a number", "numbers", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    str: ("a string", "strings", lambda v: isinstance(v, str)),
}
STRS = Shape(str, True, False)


def _typed(where: str, value: Any, shape: Shape) -> Any:
    """A TOML value as the field's type (a list as a tuple, numbers as floats, an enum's text as the enum);
    a one-line SpecError naming `where` when it is not one."""
    enum = shape.item if isinstance(shape.item, type) and issubclass(shape.item, Enum) else None
    one, many, ok = ITEMS[str if enum else shape.item]
    if not (isinstance(value, list) and all(ok(v) for v in value) if shape.many else ok(value)):
        raise SpecError(f"{where} = {value!r}: expected {'a list of ' + many if shape.many else one}")
    convert: Callable[[Any], Any] = enum or (float if shape.item is float else (lambda v: v))
    try:
        return tuple(convert(v) for v in value) if shape.many else convert(value)
    except VulnsteerError as exc:
        raise SpecError(f"{where} = {value!r}: {exc}") from None


def with_settings(run: RunConfig, settings: dict[str, Any]) -> RunConfig:
    """`run` with checked [run] values set (the configs check the values themselves)."""
    parts: dict[str, dict[str, Any]] = {"baseline": {}, "steer": {}, "run": {}}
    for key, value in settings.items():
        for d in RUN_KEYS[key]:
            parts[d.part][d.name] = value
    return replace(run, baseline=replace(run.baseline, **parts["baseline"]), steer=replace(run.steer, **parts["steer"]),
                   **parts["run"])


def run_config(settings: dict[str, Any]) -> RunConfig:
    """The shared RunConfig from checked [run] values."""
    return with_settings(RunConfig(), settings)


def _unknown(where: str, key: str, allowed: tuple[str, ...] | list[str]) -> SpecError:
    return SpecError(f"{where}unknown key {key!r}; use any of {', '.join(allowed)}")


def _datasets(where: str, value: Any, base: Path) -> tuple[str, ...]:
    names = _typed(where, value, STRS)
    if not names:
        raise SpecError(f"{where} is empty; name at least one dataset")
    out = []
    for name in names:  # a relative .jsonl path is relative to the spec file
        path = name if not name.endswith(".jsonl") or Path(name).is_absolute() else str(base / name)
        try:
            dataset_names([path], "dataset")
        except VulnsteerError as exc:
            raise SpecError(f"{where}: {exc}") from None
        out.append(path)
    return tuple(out)


def _split(where: str, table: Any, base: Path) -> Split:
    if not isinstance(table, dict):
        raise SpecError(f"{where}: expected a table like {{ fit = [\"sven\"], test = [\"hand-crafted\"] }}")
    for key in table:
        if key not in CELL_KEYS:
            raise _unknown(f"{where}: ", key, CELL_KEYS)
    table = dict(table)
    own = _settings(f"{where}.run", table.pop("run", {}))
    if "crossfit" in table:
        if set(table) != {"crossfit"}:
            raise SpecError(f"{where}: give either crossfit = [...] or fit = [...] with test = [...], not both")
        return Split(_datasets(f"{where}.crossfit", table["crossfit"], base), settings=own)
    if set(table) != {"fit", "test"}:
        raise SpecError(f"{where}: needs crossfit = [...], or both fit = [...] and test = [...]")
    return Split(_datasets(f"{where}.fit", table["fit"], base), _datasets(f"{where}.test", table["test"], base), own)


def _settings(where: str, table: Any) -> tuple[tuple[str, Any], ...]:
    """Checked [run] keys and values, in the file's order; each alone first, so an error names its key."""
    if not isinstance(table, dict):
        raise SpecError(f"{where}: expected a table of [run] keys")
    checked = {}
    for key, value in table.items():
        if key not in RUN_KEYS:
            raise _unknown(f"{where} ", key, sorted(RUN_KEYS))
        checked[key] = _typed(f"{where} {key}", value, RUN_KEYS[key][0].shape)
        try:
            run_config({key: checked[key]})
        except VulnsteerError as exc:
            raise SpecError(f"{where} {key} = {value!r}: {exc}") from None
    return tuple(checked.items())


def load_spec(path: Path) -> StudySpec:
    """A StudySpec from a TOML file; every key and value checked, a one-line SpecError naming the first bad one."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(f"--spec {path}: cannot read it ({exc.strerror or exc}); check the path") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"--spec {path}: not valid TOML ({str(exc).splitlines()[0]})") from None
    where = f"{path}: "
    if unknown := [key for key in doc if key not in TOP_KEYS]:
        raise _unknown(where, unknown[0], TOP_KEYS)
    models = _typed(f"{where}models", doc.get("models", [DEFAULT_MODEL]), STRS)
    readouts = []
    for value in _typed(f"{where}readouts", doc.get("readouts", [Readout.ANSWER.value]), STRS):
        try:
            readouts.append(Readout(value))
        except VulnsteerError as exc:
            raise SpecError(f"{where}readouts: {exc}") from None
    if not isinstance(cells := doc.get("cells", [{"crossfit": ["hand-crafted"]}]), list):
        raise SpecError(f"{where}cells: expected [[cells]] tables")
    splits = tuple(_split(f"{where}cells[{i}]", t, path.parent) for i, t in enumerate(cells))
    checked = dict(_settings(f"{where}[run]", doc.get("run", {})))
    try:
        return StudySpec(tuple(models), tuple(readouts), splits, run_config(checked))
    except VulnsteerError as exc:
        raise SpecError(f"{where}{exc}") from None
