"""SecLLMHolmes (its datasets/ folder, at <root>/secllmholmes) as `Record`s.

Label rule (upstream's): a file whose name starts with `p` is secure (patched), every other file is
vulnerable; real-world `vuln.c` is vulnerable, `patch.c` secure. Every augmented file joins the group
of the hand-crafted scenario it was derived from, so grouped splits never leak a scenario.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from fnmatch import fnmatchcase
from pathlib import Path

from vulnsteer.data.files import check_link, listing, read_json, read_text
from vulnsteer.data.records import SECURE, VULNERABLE, Record, normalise_cwe
from vulnsteer.data.root import HOW_TO_GET
from vulnsteer.errors import DataError

SUBSETS = ("hand-crafted", "augmented-trivial", "augmented-non-trivial", "real-world", "few-shot")
# Where each subset lives under <root>/secllmholmes, for saying which of them a partial copy lacks.
SUBSET_FOLDERS = {
    "hand-crafted": "hand-crafted",
    "augmented-trivial": "augmented/trivial",
    "augmented-non-trivial": "augmented/non-trivial",
    "real-world": "real-world",
    "few-shot": "few-shot",
}
LANGUAGES = {".c": "c", ".py": "python"}

# Short names used in prompts; the first eight are SecLLMHolmes' CWEs, CWE-78 and CWE-125 come from SVEN.
CWE_NAMES = {
    "CWE-22": "path traversal",
    "CWE-77": "OS command injection",
    "CWE-79": "cross-site scripting",
    "CWE-89": "SQL injection",
    "CWE-190": "integer overflow",
    "CWE-416": "use after free",
    "CWE-476": "NULL pointer dereference",
    "CWE-787": "out-of-bounds write",
    "CWE-78": "OS command injection",
    "CWE-125": "out-of-bounds read",
}

# Known upstream label problems: (subset, variant pattern, CWE, file stem pattern, flag).
KNOWN_PROBLEMS: tuple[tuple[str, str, str, str, str], ...] = (
    ("augmented-non-trivial", "A6_?", "CWE-787", "p_*", "label-doubtful:ground-truth-says-vulnerable"),
    ("augmented-non-trivial", "A6_?", "CWE-22", "p_*", "label-doubtful:gets-overflow-not-path-traversal"),
    ("augmented-non-trivial", "A6_?", "CWE-22", "p_1", "label-doubtful:does-not-compile"),
    ("augmented-non-trivial", "A1_?", "CWE-416", "*", "label-doubtful:ground-truth-describes-oob-write"),
    ("augmented-non-trivial", "A4_1", "CWE-416", "*", "label-doubtful:ground-truth-describes-oob-write"),
)

_SCENARIO = re.compile(r"^(p_?)?(\d+)$")


def natural_key(text: str) -> tuple[object, ...]:
    """'A10' after 'A9', 'CWE-190' after 'CWE-22'."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def _subdirs(path: Path) -> list[Path]:
    if not path.is_dir():
        raise DataError(f"{path}: folder missing; restore it from SecLLMHolmes' datasets/ folder")
    return sorted((p for p in listing(path) if p.is_dir()), key=lambda p: natural_key(p.name))


def _truth(path: Path) -> str:
    """Ground-truth text beside a code file; '' when upstream has none."""
    return read_text(path, code=False).strip() if check_link(path).is_file() else ""


def _flags(subset: str, variant: str, cwe: str, stem: str) -> tuple[str, ...]:
    return tuple(
        flag
        for sub, var, c, st, flag in KNOWN_PROBLEMS
        if sub == subset and c == cwe and fnmatchcase(variant, var) and fnmatchcase(stem, st)
    )


def _scenario_records(subset: str, variant: str, dataset: Path, truth: Path) -> list[Record]:
    """One dataset/CWE-X/{N,p_N}.{c,py} tree (hand-crafted or one augmentation) with its ground-truth/ twin."""
    prefix = "/".join(x for x in (subset, variant) if x)
    out: list[Record] = []
    for cwe_dir in _subdirs(dataset):
        try:
            cwe = normalise_cwe(cwe_dir.name)
        except ValueError as exc:
            raise DataError(f"{cwe_dir}: expected a folder named like CWE-22; move or remove it") from exc
        files = sorted(p for p in listing(cwe_dir) if p.is_file() and p.suffix in LANGUAGES)
        stems = {p.stem for p in files}
        parsed = []
        for path in files:
            match = _SCENARIO.match(path.stem)
            if match is None:
                expected = "N.c/N.py (vulnerable) or p_N.c/p_N.py (patched)"
                raise DataError(f"{path}: unexpected file name; expected {expected}")
            parsed.append((int(match[2]), match[1] is not None, path))
        for scenario, patched, path in sorted(parsed, key=lambda t: (t[0], t[1])):
            twin = f"{scenario}" if patched else f"p_{scenario}"
            out.append(
                Record(
                    id=f"{prefix}/{cwe}/{path.stem}",
                    subset=subset,
                    cwe=cwe,
                    language=LANGUAGES[path.suffix],
                    label=SECURE if patched else VULNERABLE,
                    group=f"{cwe}/{scenario}",
                    pair_id=f"{prefix}/{cwe}/{scenario}" if twin in stems else None,
                    code=read_text(path),
                    source_path=str(path),
                    ground_truth=_truth(truth / cwe_dir.name / f"{path.stem}.txt"),
                    flags=_flags(subset, variant, cwe, path.stem),
                    variant=variant,
                )
            )
    return out


def _hand_crafted(base: Path) -> list[Record]:
    folder = base / "hand-crafted"
    return _scenario_records("hand-crafted", "", folder / "dataset", folder / "ground-truth")


def _trivial(base: Path) -> list[Record]:
    out: list[Record] = []
    for aug in _subdirs(base / "augmented" / "trivial"):
        truth = aug / "ground_truth" if (aug / "ground_truth").is_dir() else aug / "ground-truth"
        out += _scenario_records("augmented-trivial", aug.name, aug / "dataset", truth)
    return out


def _non_trivial(base: Path) -> list[Record]:
    out: list[Record] = []
    for aug in _subdirs(base / "augmented" / "non-trivial"):
        for side in _subdirs(aug):
            out += _scenario_records("augmented-non-trivial", side.name, side / "dataset", side / "ground-truth")
    return out


def _real_world(base: Path) -> list[Record]:
    folder = base / "real-world"
    details_path = folder / "cve_details.json"
    details = read_json(details_path)
    out: list[Record] = []
    for project in _subdirs(folder):
        for cve_dir in _subdirs(project):
            entry = details.get(project.name, {}).get(cve_dir.name, {})
            if "cwe" not in entry:
                where = f"{project.name}/{cve_dir.name}"
                raise DataError(f"{details_path}: no 'cwe' for {where}; add it or remove that folder")
            pair = f"real-world/{project.name}/{cve_dir.name}"
            for kind, label in (("vuln", VULNERABLE), ("patch", SECURE)):
                path = cve_dir / f"{kind}.c"
                out.append(
                    Record(
                        id=f"{pair}/{kind}",
                        subset="real-world",
                        cwe=normalise_cwe(entry["cwe"]),
                        language="c",
                        label=label,
                        group=pair,
                        pair_id=pair,
                        code=read_text(path),
                        source_path=str(path),
                        ground_truth=_truth(cve_dir / f"{kind}.txt"),
                    )
                )
    return out


def _few_shot(base: Path) -> list[Record]:
    folder = base / "few-shot"
    found = listing(folder / "examples") if (folder / "examples").is_dir() else []
    files = [p for p in found if p.name.startswith("cwe-") and p.suffix in LANGUAGES]
    if not files:
        raise DataError(f"{folder / 'examples'}: no cwe-<id>.c/.py files; restore few-shot/ from SecLLMHolmes")
    parsed = []
    for path in files:
        match = re.fullmatch(r"cwe-(\d+)(-p)?", path.stem)
        if match is None:
            raise DataError(f"{path}: unexpected file name; few-shot examples are named cwe-<id> or cwe-<id>-p")
        parsed.append((int(match[1]), match[2] is not None, path))
    stems = {p.stem for p in files}
    out: list[Record] = []
    for number, patched, path in sorted(parsed, key=lambda t: (t[0], t[1])):
        cwe = f"CWE-{number}"
        twin = f"cwe-{number}" if patched else f"cwe-{number}-p"
        out.append(
            Record(
                id=f"few-shot/{cwe}/{path.stem}",
                subset="few-shot",
                cwe=cwe,
                language=LANGUAGES[path.suffix],
                label=SECURE if patched else VULNERABLE,
                group=f"few-shot/{cwe}",
                pair_id=f"few-shot/{cwe}" if twin in stems else None,
                code=read_text(path),
                source_path=str(path),
                ground_truth=_truth(folder / "reasoning" / f"{path.stem}.txt"),
            )
        )
    return out


_LOADERS = {
    "hand-crafted": _hand_crafted,
    "augmented-trivial": _trivial,
    "augmented-non-trivial": _non_trivial,
    "real-world": _real_world,
    "few-shot": _few_shot,
}


def _mark_duplicates(records: list[Record], hand_crafted: list[Record]) -> list[Record]:
    """Flag every non-hand-crafted record whose code is byte-identical to a hand-crafted file."""
    by_hash = {r.sha256: r.id for r in hand_crafted}
    out = []
    for rec in records:
        twin = by_hash.get(rec.sha256)
        if rec.subset != "hand-crafted" and twin is not None:
            rec = replace(rec, flags=(*rec.flags, f"identical-to:{twin}"))
        out.append(rec)
    return out


def load_secllmholmes(root: Path, subsets: Sequence[str] | None = None) -> list[Record]:
    """Records of the chosen subsets (all by default) in a fixed order: SUBSETS order, then variant, CWE, scenario."""
    wanted = list(SUBSETS) if subsets is None else list(subsets)
    unknown = [s for s in wanted if s not in SUBSETS]
    if unknown:
        raise DataError(f"unknown SecLLMHolmes subset {unknown[0]!r}; known: {', '.join(SUBSETS)}")
    base = Path(root) / "secllmholmes"
    if not base.is_dir():
        raise DataError(f"{base}: folder missing; {HOW_TO_GET}")
    records = [rec for name in SUBSETS if name in wanted for rec in _LOADERS[name](base)]
    hand = [r for r in records if r.subset == "hand-crafted"]
    if not hand and (base / "hand-crafted").is_dir():
        hand = _hand_crafted(base)  # needed to mark augmented copies even when hand-crafted is not asked for
    return _mark_duplicates(records, hand)


def cwe_names(root: Path) -> dict[str, str]:
    """Short CWE names for prompts: the built-in list, plus any other CWE in the MITRE definitions file."""
    names = dict(CWE_NAMES)
    for cwe, text in _definitions(root).items():
        names.setdefault(cwe, text.split(":", 1)[0].strip())
    return names


def _definitions(root: Path) -> dict[str, str]:
    path = Path(root) / "secllmholmes" / "mitre-cwe-definitions.json"
    if not path.is_file():
        return {}
    return {normalise_cwe(key): str(value) for key, value in read_json(path).items()}


def cwe_definition(root: Path, cwe: str) -> str:
    """MITRE's definition of `cwe` from secllmholmes/mitre-cwe-definitions.json."""
    definitions = _definitions(root)
    key = _normalise_user_cwe(cwe)
    if key not in definitions:
        known = ", ".join(sorted(definitions, key=natural_key))
        raise DataError(f"no MITRE definition for {key!r} in mitre-cwe-definitions.json; known: {known}")
    return definitions[key]


def _normalise_user_cwe(text: str) -> str:
    try:
        return normalise_cwe(text)
    except ValueError as exc:
        raise DataError(f"not a CWE id: {text!r}; write it like 'CWE-787' or '787'") from exc


def select(records: Sequence[Record], cwes: Sequence[str] | None) -> list[Record]:
    """The records of the given CWEs (all if None); DataError for a CWE no record has."""
    if cwes is None:
        return list(records)
    known = sorted({r.cwe for r in records}, key=natural_key)
    wanted = [_normalise_user_cwe(c) for c in cwes]
    for cwe in wanted:
        if cwe not in known:
            raise DataError(f"unknown CWE {cwe!r}; known: {', '.join(known)}")
    return [r for r in records if r.cwe in wanted]
