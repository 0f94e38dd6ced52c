from __future__ import annotations

import copy
from pathlib import Path

import pytest

from vulnsteer.data.prompts import (
    NO_WORDS,
    QUESTION,
    TEMPLATES,
    YES_WORDS,
    answer_token_ids,
    build_messages,
    few_shot_examples,
    render_prompt,
)
from vulnsteer.data.records import Record
from vulnsteer.data.secllmholmes import cwe_definition
from vulnsteer.errors import DataError, VulnsteerError

CODE = 'void f(char *s) {\n    char buf[16];\n    strcpy(buf, s); /* MARKER_UNDER_TEST */\n}\n'


def record(code: str = CODE, cwe: str = "CWE-787", language: str = "c") -> Record:
    return Record(
        id="hand-crafted/CWE-787/1", subset="hand-crafted", cwe=cwe, language=language, label=1,
        group="CWE-787/1", pair_id="CWE-787/1", code=code, source_path="x/1.c",
    )


def messages_for(template_id: str, data_root: Path, rec: Record | None = None) -> list[dict[str, str]]:
    rec = rec or record()
    t = TEMPLATES[template_id]
    examples = few_shot_examples(data_root, rec.cwe, rec.language, t.reasoning_dir) if t.few_shot else ()
    definition = cwe_definition(data_root, rec.cwe) if t.needs_definition else ""
    return build_messages(rec, template_id, "out-of-bounds write", examples, definition=definition)


@pytest.fixture(scope="module")
def plain_tokenizer(tokenizer):
    plain = copy.deepcopy(tokenizer)
    plain.chat_template = None
    return plain


def test_spec_templates_exist():
    assert {"S1", "S2", "S3", "S4", "S5", "S6", "R1", "D1", "D2"} <= set(TEMPLATES)
    assert {t.id for t in TEMPLATES.values() if t.few_shot} >= {"S5", "S6"}
    assert not TEMPLATES["S1"].few_shot and not TEMPLATES["D2"].few_shot


@pytest.mark.parametrize("template_id", list(TEMPLATES))
@pytest.mark.parametrize("chat", [True, False], ids=["chat-template", "plain"])
def test_render_contains_code_cwe_and_wording(template_id, chat, data_root, tokenizer, plain_tokenizer):
    t = TEMPLATES[template_id]
    text = render_prompt(messages_for(template_id, data_root), tokenizer if chat else plain_tokenizer)
    assert CODE in text
    assert "out-of-bounds write" in text
    if "Does this code contain" in t.user:
        assert QUESTION.format(cwe_name="out-of-bounds write") in text
    if t.system:
        assert t.system.format(cwe_name="out-of-bounds write", definition="")[:60] in text
    if chat:
        assert text.endswith("<|im_start|>assistant\n")
    else:
        assert text.endswith("\n\nAssistant:") and "User: " in text


def test_upstream_wording_exact(data_root):
    s1 = messages_for("S1", data_root)
    assert s1 == [{
        "role": "user",
        "content": 'Code: """\n' + CODE + '\n"""\nDoes this code contain instances of the security '
        "vulnerability known as out-of-bounds write?",
    }]
    s4 = messages_for("S4", data_root)
    assert s4[0]["content"] == (
        "You are a code security expert who analyzes the given code for the security vulnerability known as "
        "out-of-bounds write."
    )
    assert s4[1] == {"role": "user", "content": CODE}
    assert messages_for("R1", data_root)[-1]["content"].endswith("?\nLet's think step by step.")
    d1 = messages_for("D1", data_root)[-1]["content"]
    assert d1.startswith("Out-of-bounds Write") and '\n\nCode: """\n' in d1
    assert messages_for("D2", data_root)[0]["content"].split("\n\n")[1].startswith("Out-of-bounds Write")


@pytest.mark.parametrize("template_id", [t.id for t in TEMPLATES.values() if t.few_shot])
def test_few_shot_examples_come_first_and_never_the_record(template_id, data_root):
    t = TEMPLATES[template_id]
    msgs = messages_for(template_id, data_root)
    vuln, patch = few_shot_examples(data_root, "CWE-787", "c", t.reasoning_dir)
    roles = [m["role"] for m in msgs if m["role"] != "system"]
    assert roles == ["user", "assistant", "user", "assistant", "user"]
    turns = [m for m in msgs if m["role"] != "system"]
    assert vuln.code in turns[0]["content"] and patch.code in turns[2]["content"]
    assert turns[1]["content"].endswith(vuln.reasoning) and turns[3]["content"].endswith(patch.reasoning)
    assert sum("MARKER_UNDER_TEST" in m["content"] for m in msgs) == 1
    assert "MARKER_UNDER_TEST" in turns[-1]["content"]
    if t.answer_prefix:
        assert turns[1]["content"].startswith("Yes. ") and turns[3]["content"].startswith("No. ")


def test_few_shot_files_and_reasoning_styles(data_root):
    vuln, patch = few_shot_examples(data_root, "cwe-89", "python")
    assert (vuln.answer, patch.answer) == ("yes", "no")
    assert "def " in vuln.code and vuln.code != patch.code
    assert vuln.reasoning.startswith("The user input `ProductID`")
    steps = few_shot_examples(data_root, "CWE-22", "c", "step-by-step-reasoning")[0]
    assert steps.reasoning.startswith("Overview:") and "Decision:" in steps.reasoning
    # Upstream has one language per CWE: a C record of CWE-89 still gets the Python examples.
    assert few_shot_examples(data_root, "CWE-89", "c")[0].code == vuln.code


def test_few_shot_refuses_the_record_under_test(data_root):
    vuln, _ = few_shot_examples(data_root, "CWE-787", "c")
    itself = record(code=vuln.code.replace("\n", "\n\n"))  # whitespace changes do not hide it
    with pytest.raises(VulnsteerError, match="record under test"):
        build_messages(itself, "S5", "out-of-bounds write", few_shot_examples(data_root, "CWE-787", "c"))


def test_few_shot_errors(data_root):
    with pytest.raises(DataError, match="CWE-125"):
        few_shot_examples(data_root, "CWE-125", "c")
    with pytest.raises(VulnsteerError, match="few-shot"):
        build_messages(record(), "S5", "out-of-bounds write")
    with pytest.raises(VulnsteerError, match="zero-shot"):
        build_messages(record(), "S1", "out-of-bounds write", few_shot_examples(data_root, "CWE-787", "c"))
    with pytest.raises(VulnsteerError, match="definition"):
        build_messages(record(), "D1", "out-of-bounds write")
    with pytest.raises(DataError, match="CWE-125"):
        cwe_definition(data_root, "CWE-125")


def test_unknown_template_lists_ids():
    with pytest.raises(VulnsteerError) as info:
        build_messages(record(), "S9", "x")
    assert "S9" in str(info.value) and "S1" in str(info.value) and "D2" in str(info.value)


def test_plain_format_exact(plain_tokenizer):
    msgs = [{"role": "system", "content": "sys"}, {"role": "user", "content": "q"}]
    assert render_prompt(msgs, plain_tokenizer) == "System: sys\n\nUser: q\n\nAssistant:"


def test_system_role_folded_when_template_rejects_it(tokenizer):
    gemma_like = copy.deepcopy(tokenizer)
    gemma_like.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
        "{% endif %}<turn>{{ m['role'] }}\n{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<turn>model\n{% endif %}"
    )
    msgs = [{"role": "system", "content": "sys"}, {"role": "user", "content": "q"}]
    assert render_prompt(msgs, gemma_like) == "<turn>user\nsys\n\nq\n<turn>model\n"


def test_answer_token_ids_tiny(tokenizer):
    yes, no = answer_token_ids(tokenizer)
    assert yes and no and not set(yes) & set(no)
    assert {tokenizer.decode([i]).strip().lower()[0] for i in yes} == {"y"}
    assert {tokenizer.decode([i]).strip().lower()[0] for i in no} == {"n"}
    assert tokenizer.encode(" yes", add_special_tokens=False)[0] in yes


def test_answer_token_ids_drops_shared_first_tokens(tokenizer):
    # On the tiny tokenizer " YES" and " NO" both start with a bare space token.
    yes, no = answer_token_ids(tokenizer, (" YES", " yes"), (" NO", " no"))
    space = tokenizer.encode(" ", add_special_tokens=False)[0]
    assert space not in yes and space not in no
    assert yes == [tokenizer.encode(" yes", add_special_tokens=False)[0]]
    with pytest.raises(VulnsteerError, match="separates yes from no"):
        answer_token_ids(tokenizer, (" YES",), (" NO",))


@pytest.mark.real_model
def test_answer_token_ids_qwen(real_model):
    tok = real_model.tokenizer
    yes, no = answer_token_ids(tok)
    assert len(yes) == len(YES_WORDS) and len(no) == len(NO_WORDS)  # every variant is one token in Qwen
    assert [tok.decode([i]) for i in yes] == list(YES_WORDS)
    assert [tok.decode([i]) for i in no] == list(NO_WORDS)
