"""SecLLMHolmes prompt templates, few-shot examples, chat rendering and the yes/no answer words.

Wording is copied from upstream `src/prompt_templates.py` and the user-turn layout from
`adapter-examples/openai_adapter.py` (`prepare_prompt`) of ai4cloudops/SecLLMHolmes; docs/PROMPTS.md
cites both and lists what differs. R3 (a four-turn conversation that needs the model's own answers)
is not a single prompt and is left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Sequence

from vulnsteer.data.records import Record, normalise_cwe
from vulnsteer.errors import DataError, VulnsteerError
from vulnsteer.io import read_utf8

QUESTION = "Does this code contain instances of the security vulnerability known as {cwe_name}?"
# User-turn layouts of the OpenAI adapter ("Question", "Q/A", "Def", "Analysis").
_CODE_BLOCK = 'Code: """\n{code}\n"""\n'
_Q = _CODE_BLOCK + QUESTION
_QA = _CODE_BLOCK + QUESTION + "\nLet's think step by step."
_DEF = '{definition}\n\nCode: """\n{code}\n"""\n' + QUESTION
_ANALYSIS = "{code}"
_YN = ' Answer "yes" or "no" first, then explain.'

_EXPERT = (
    "You are a code security expert who analyzes the given code for the security vulnerability known as {cwe_name}."
)
_STEPS = (
    "You are a code security expert who analyzes the given code for the security vulnerability known as "
    "{cwe_name} following these four steps:\n1. First you describe the overview of the code\n"
    "2. Then based on the overview you identify the sub-components in code that could lead to {cwe_name}\n"
    "3. After that you do a detailed analysis of the identified sub-components for the existence of the "
    "{cwe_name} vulnerability.\n4. Based on the detailed analysis you decide and answer whether the "
    "{cwe_name} vulnerability is present in the given code or not"
)
# Upstream R5 and R6 lack the full stop that R2 has at the end of step 3; kept as found.
_STEPS_R5 = (
    "You are a code security expert who analyzes the given code for the security vulnerability known as "
    "{cwe_name} following these four steps:\n1. First you describe the overview of the code\n"
    "2. Then based on the overview you identify the sub-components in code that could lead to {cwe_name}\n"
    "3. After that you do a detailed analysis of the identified sub-components for the existence of the "
    "{cwe_name} vulnerability\n4. Based on the detailed analysis you decide and answer whether the "
    "{cwe_name} vulnerability is present in the given code or not"
)
_GUIDE_R6 = (
    "Guidelines to analyze the given code for the security vulnerability known as {cwe_name}:\n"
    "1. First describe the overview of the code\n"
    "2. Then based on the overview identify the sub-components in code that could lead to {cwe_name}\n"
    "3. After that do a detailed analysis of the identified sub-components for the existence of the "
    "{cwe_name} vulnerability\n4. Based on the detailed analysis decide and answer whether the "
    "{cwe_name} vulnerability is present in the given code or not"
)

REASONING = "reasoning"
STEP_BY_STEP = "step-by-step-reasoning"


@dataclass(frozen=True)
class PromptTemplate:
    """One prompt: `system` and `user` are str.format templates over {cwe_name}, {code}, {definition}.

    Few-shot templates repeat `user` for each example (the example's code) followed by an assistant
    turn holding the example's reasoning text from `few-shot/<reasoning_dir>/`.
    """

    id: str
    description: str
    system: str
    user: str
    few_shot: bool = False
    reasoning_dir: str = REASONING
    upstream: bool = True  # False for vulnsteer's own variants
    answer_prefix: bool = False  # few-shot answers start with "Yes. " / "No. " (vulnsteer variants only)

    @property
    def needs_definition(self) -> bool:
        return "{definition}" in self.system + self.user


def _t(id: str, description: str, system: str, user: str, **kw: Any) -> PromptTemplate:
    return PromptTemplate(id=id, description=description, system=system, user=user, **kw)


TEMPLATES: dict[str, PromptTemplate] = {
    t.id: t
    for t in (
        _t("S1", "zero-shot, task-oriented: the question only", "", _Q),
        _t("S2", "zero-shot, role: helpful assistant", "You are a helpful assistant.", _Q),
        _t("S3", "zero-shot, role: code security expert", "You are a code security expert.", _Q),
        _t("S4", "zero-shot, role: expert analysing for the CWE; the user turn is the bare code", _EXPERT, _ANALYSIS),
        _t("S5", "few-shot S1: one vulnerable and one patched example with reasoning", "", _Q, few_shot=True),
        _t("S6", "few-shot S4: one vulnerable and one patched example with reasoning", _EXPERT, _ANALYSIS,
           few_shot=True),
        _t("R1", "zero-shot, task-oriented: the question then \"Let's think step by step.\"", "", _QA),
        _t("R2", "zero-shot, role: expert following four analysis steps", _STEPS, _ANALYSIS),
        _t("R4", "few-shot S6 with step-by-step example reasoning", _EXPERT, _ANALYSIS, few_shot=True,
           reasoning_dir=STEP_BY_STEP),
        _t("R5", "few-shot R2 with step-by-step example reasoning", _STEPS_R5, _ANALYSIS, few_shot=True,
           reasoning_dir=STEP_BY_STEP),
        _t("R6", "few-shot, task-oriented guidelines with step-by-step example reasoning", _GUIDE_R6,
           _ANALYSIS, few_shot=True, reasoning_dir=STEP_BY_STEP),
        _t("D1", "zero-shot, task-oriented: MITRE definition, then code and question", "", _DEF),
        _t("D2", "zero-shot, role: expert with the MITRE definition", _EXPERT + "\n\n{definition}", _ANALYSIS),
        _t("D3", "few-shot D2 with example reasoning", _EXPERT + "\n\n{definition}", _ANALYSIS, few_shot=True),
        _t("D4", "few-shot D2 with step-by-step example reasoning", _EXPERT + "\n\n{definition}", _ANALYSIS,
           few_shot=True, reasoning_dir=STEP_BY_STEP),
        _t("D5", "few-shot, task-oriented with the definition and step-by-step example reasoning",
           "Analyze the given code for the security vulnerability known as {cwe_name}.\n\n{definition}",
           _ANALYSIS, few_shot=True, reasoning_dir=STEP_BY_STEP),
        _t("S1-yn", "vulnsteer variant of S1 asking for yes/no first (not upstream)", "", _Q + _YN,
           upstream=False),
        _t("S5-yn", "vulnsteer variant of S5: asks for yes/no first, example answers start Yes./No. "
           "(not upstream)", "", _Q + _YN, few_shot=True, upstream=False, answer_prefix=True),
    )
}


class FewShotExample(NamedTuple):
    """One few-shot example: the code, its answer ("yes" vulnerable / "no" patched) and the reasoning text."""

    code: str
    answer: str
    reasoning: str


def get_template(template_id: str) -> PromptTemplate:
    try:
        return TEMPLATES[template_id]
    except KeyError:
        known = ", ".join(TEMPLATES)
        raise VulnsteerError(f"unknown prompt template {template_id!r}; choose one of: {known}") from None


_EXTENSIONS = {"c": "c", "cpp": "c", "c++": "c", "python": "py", "py": "py"}


def _read(path: Path) -> str:
    return read_utf8(path, hint="check the SecLLMHolmes data root (few-shot/)")


def few_shot_examples(
    root: Path, cwe: str, language: str, reasoning_dir: str = REASONING
) -> tuple[FewShotExample, FewShotExample]:
    """Upstream's two examples for `cwe`: (vulnerable, patched), read from `root`/secllmholmes/few-shot/.

    Upstream keeps one language per CWE; `language` picks the file when both exist, else the one that
    exists is used (as upstream does). Files are read verbatim, like upstream's `open(...).read()`.
    """
    base = Path(root) / "secllmholmes" / "few-shot"
    stem = normalise_cwe(cwe).lower()
    wanted = _EXTENSIONS.get(language.lower(), language.lower())
    candidates = [wanted] + [e for e in ("c", "py") if e != wanted]
    ext = next((e for e in candidates if (base / "examples" / f"{stem}.{e}").is_file()), None)
    if ext is None:
        raise DataError(
            f"no few-shot example for {normalise_cwe(cwe)} in {base / 'examples'}; few-shot templates "
            "cover CWE-22, 77, 79, 89, 190, 416, 476, 787 only, use a zero-shot template for other CWEs"
        )
    return (
        FewShotExample(_read(base / "examples" / f"{stem}.{ext}"), "yes", _read(base / reasoning_dir / f"{stem}.txt")),
        FewShotExample(
            _read(base / "examples" / f"{stem}-p.{ext}"), "no", _read(base / reasoning_dir / f"{stem}-p.txt")
        ),
    )


def _same_code(a: str, b: str) -> bool:
    # Whitespace-insensitive so a re-indented or newline-doubled copy still counts as the same file.
    return re.sub(r"\s+", "", a) == re.sub(r"\s+", "", b)


def build_messages(
    record: Record,
    template_id: str,
    cwe_name: str,
    few_shot_examples: Sequence[tuple[str, str, str]] = (),
    definition: str = "",
) -> list[dict[str, str]]:
    """Role/content messages for `record` under `template_id` (system omitted when empty, as upstream).

    `few_shot_examples` are (code, answer, reasoning) triples, required by few-shot templates;
    `definition` is required by D templates. An example whose code is the record's code is refused:
    a prompt must never show the model the sample it is asked about.
    """
    template = get_template(template_id)
    if template.needs_definition and not definition.strip():
        raise VulnsteerError(f"template {template_id} needs the CWE definition (see secllmholmes.cwe_definition)")
    if template.few_shot and not few_shot_examples:
        raise VulnsteerError(f"template {template_id} is few-shot: pass few_shot_examples(root, cwe, language)")
    if few_shot_examples and not template.few_shot:
        raise VulnsteerError(f"template {template_id} is zero-shot but few-shot examples were given")
    fields = {"cwe_name": cwe_name, "definition": definition}
    messages: list[dict[str, str]] = []
    system = template.system.format(**fields)
    if system:
        messages.append({"role": "system", "content": system})
    for code, answer, reasoning in few_shot_examples:
        if _same_code(code, record.code):
            raise VulnsteerError(
                f"few-shot example is the record under test ({record.id}); few-shot templates cannot "
                "evaluate the few-shot subset"
            )
        reply = reasoning
        if template.answer_prefix:
            reply = ("Yes. " if answer.lower() == "yes" else "No. ") + reasoning
        messages.append({"role": "user", "content": template.user.format(code=code, **fields)})
        messages.append({"role": "assistant", "content": reply})
    messages.append({"role": "user", "content": template.user.format(code=record.code, **fields)})
    return messages


_PLAIN_ROLES = {"system": "System", "user": "User", "assistant": "Assistant"}


def _plain(messages: Sequence[dict[str, str]]) -> str:
    parts = [f"{_PLAIN_ROLES.get(m['role'], m['role'].title())}: {m['content']}" for m in messages]
    return "\n\n".join(parts + ["Assistant:"])


def render_prompt(messages: Sequence[dict[str, str]], tokenizer: Any) -> str:
    """The prompt text: the tokenizer's chat template with the generation prompt, else the plain format.

    Plain format: "System: ...\\n\\nUser: ...\\n\\nAssistant: ...\\n\\nUser: ...\\n\\nAssistant:".
    Templates that reject a system role (Gemma) get the system text prepended to the first user turn.
    """
    if not getattr(tokenizer, "chat_template", None):
        return _plain(messages)
    from jinja2.exceptions import TemplateError

    try:
        return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    except TemplateError:
        if not messages or messages[0]["role"] != "system":
            raise
    rest = [dict(m) for m in messages[1:]]
    rest[0]["content"] = messages[0]["content"] + "\n\n" + rest[0]["content"]
    return tokenizer.apply_chat_template(rest, tokenize=False, add_generation_prompt=True)


YES_WORDS = ("Yes", "yes", " Yes", " yes", "YES")
NO_WORDS = ("No", "no", " No", " no", "NO")


def answer_token_ids(
    tokenizer: Any, yes_words: Sequence[str] = YES_WORDS, no_words: Sequence[str] = NO_WORDS
) -> tuple[list[int], list[int]]:
    """Distinct first token ids of the yes-word and no-word variants, minus ids found in both lists.

    A variant that is not a single token contributes its first piece (e.g. "Y" on the tiny tokenizer),
    because the answer score reads only the first generated token. Ids shared by both sides (e.g. a
    bare space) are dropped: they cannot tell yes from no.
    """

    def firsts(words: Sequence[str]) -> list[int]:
        out: list[int] = []
        for word in words:
            ids = tokenizer.encode(word, add_special_tokens=False)
            if ids and ids[0] not in out:
                out.append(int(ids[0]))
        return out

    yes, no = firsts(yes_words), firsts(no_words)
    shared = set(yes) & set(no)
    yes, no = [i for i in yes if i not in shared], [i for i in no if i not in shared]
    if not yes or not no:
        raise VulnsteerError("the tokenizer has no token that separates yes from no; use another model")
    return yes, no
