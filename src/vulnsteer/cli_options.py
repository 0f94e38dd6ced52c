"""The command line's options. A config option's flag, help, default and the commands that take it are
declared once, on its config field (experiments/config.py, options.opt); `parameters` turns those
declarations into typer options and `config_from` turns what typer parsed into the RunConfig. The options
that are not config fields (model, folders, study) are typer option types below."""

from __future__ import annotations

import inspect
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from vulnsteer.errors import VulnsteerError
from vulnsteer.experiments.baseline_config import ALL_TEMPLATES, BaselineConfig
from vulnsteer.experiments.config import RunConfig, SteerConfig, declarations
from vulnsteer.options import Declared, Executor, StudyPreset, parse_list


def _choices(enum: Any) -> str:
    return ", ".join(m.value for m in enum)


# ---- the config's options, from their declarations -------------------------------------------------------

# What each command sets itself: the stages it runs, and no generation where it reads only the answer score.
COMMANDS: dict[str, dict[str, dict[str, Any]]] = {
    "baseline": {"run": {"stages": ()}},
    "probe": {"run": {"stages": ("probe",)}, "baseline": {"generate": False}},
    "steer": {"run": {"stages": ("steer",)}, "baseline": {"generate": False}},
    "run": {},
}


def param_name(flag: str) -> str:
    """'--generate/--no-generate' -> 'generate'."""
    return flag.split("/")[0].removeprefix("--").replace("-", "_")


def flags(command: str) -> dict[str, list[Declared]]:
    """The config fields `command` takes, by parameter name; one flag may set fields in several parts (--seed)."""
    out: dict[str, list[Declared]] = {}
    for d in declarations():
        if d.opt.flag and command in d.opt.commands:
            out.setdefault(param_name(d.opt.flag), []).append(d)
    return out


def _is_enum(item: Any) -> bool:
    return isinstance(item, type) and issubclass(item, Enum)


def _parameter(name: str, d: Declared) -> inspect.Parameter:
    shape, o = d.shape, d.opt
    text = o.help + (f" One of: {_choices(shape.item)}." if _is_enum(shape.item) else "")
    if shape.many:  # repeatable and comma-separated; None: not given, the config's default
        kind: Any = list[str] | None
        default: Any = None
        shown: bool | str = d.default is not None and ",".join(f"{x:g}" if isinstance(x, float) else str(x)
                                                               for x in d.default)
    else:
        kind = str if _is_enum(shape.item) else shape.item
        kind = kind | None if shape.optional else kind
        default = d.default.value if isinstance(d.default, Enum) else d.default
        shown = default is not None
    decls = [str(o.flag), *([o.short] if o.short else [])]
    option = typer.Option(*decls, help=text, show_default=shown)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[kind, option])


def parameters(command: str) -> list[inspect.Parameter]:
    """The typer parameters of the config options `command` takes, in declaration order."""
    return [_parameter(name, ds[0]) for name, ds in flags(command).items()]


def _item(text: str, d: Declared) -> Any:
    item = d.shape.item
    if _is_enum(item):
        return item(text)
    if item in (int, float):
        try:
            return item(text)
        except ValueError:
            raise VulnsteerError(f"{d.opt.flag} {text!r}: expected {'integers' if item is int else 'numbers'}, "
                                 "comma-separated") from None
    return text


def _value(d: Declared, given: Any) -> Any:
    """What a flag's parsed value sets the field to; None: leave the config's default."""
    if given is None:
        return None
    if not d.shape.many:
        return d.shape.item(given) if _is_enum(d.shape.item) else given
    if d.opt.parse is not None:
        return d.opt.parse(given)
    return tuple(_item(x, d) for x in parse_list(given)) or None


def config_from(command: str, values: dict[str, Any]) -> RunConfig:
    """The RunConfig of `command` from its parsed config options (parameter name -> value); every value
    checked by the configs, before anything expensive."""
    parts: dict[str, dict[str, Any]] = {p: dict(COMMANDS[command].get(p, {})) for p in ("baseline", "steer", "run")}
    for name, ds in flags(command).items():
        value = _value(ds[0], values.get(name))
        for d in ds if value is not None else ():
            parts[d.part][d.name] = value
    if command == "baseline" and parts["baseline"].get("template") == ALL_TEMPLATES:
        parts["baseline"].pop("template")  # the standard baseline under the default template, and every template
        parts["baseline"]["all_templates"] = True
    return RunConfig(baseline=BaselineConfig(**parts["baseline"]), steer=SteerConfig(**parts["steer"]), **parts["run"])


# ---- options that are not config fields ------------------------------------------------------------------

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Built-in name, local HF dir, .gguf file or hub id.")]
DataOpt = Annotated[Path | None, typer.Option(
    "--data", help="Data root holding secllmholmes/ (else $VULNSTEER_DATA, else ../shared/data).")]
SubsetOpt = Annotated[list[str] | None, typer.Option(
    "--subset", help="Subsets to list (default every subset the data root holds); repeatable or comma-separated.")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Run folder (default runs/<time>-<command>).")]
CacheOpt = Annotated[Path | None, typer.Option(
    "--cache-dir", help="Model and activation cache (default $VULNSTEER_CACHE or ~/.cache/vulnsteer).")]
TrustOpt = Annotated[bool, typer.Option("--trust-remote-code", help="Allow a hub model's own code to run (off by default).")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace the run already in --out (never a folder that is not a run).")]

# vulnsteer study
PresetOpt = Annotated[str | None, typer.Option(
    "--preset", help=f"A built-in grid: {_choices(StudyPreset)} (default quick; docs/STUDY.md).")]
SpecOpt = Annotated[Path | None, typer.Option("--spec", help="A study TOML file (docs/STUDY.md), instead of --preset.")]
StudyModelsOpt = Annotated[list[str] | None, typer.Option(
    "--model", "-m", help="Study these models instead of the preset's or spec's; repeatable or comma-separated.")]
StudyOutOpt = Annotated[Path | None, typer.Option(
    "--out", "-o", help="Study folder (default runs/<time>-study); the same --out again resumes the study.")]
ExecutorOpt = Annotated[str, typer.Option(
    "--executor", help=f"{_choices(Executor)}: cells one after another here, or one Ray task per cell.")]
RayAddressOpt = Annotated[str | None, typer.Option(
    "--ray-address", help="Ray cluster to send cells to (else $RAY_ADDRESS, else a local Ray instance).")]
