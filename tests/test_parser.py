from __future__ import annotations

from pathlib import Path

import pytest

from vulnsteer.evaluation.parser import parse_answer

# Answers of the kind Qwen2.5-Coder writes to the SecLLMHolmes prompts.
REALISTIC = [
    ('Yes, the code contains an instance of the security vulnerability known as SQL injection. The `get_product` function concatenates `ProductID` directly into the query string.',
     'yes'),
    ('Yes. The function `write_to_file` concatenates the user-supplied `file_name` with the base directory and passes it to `fopen` without checking for `..` sequences, so an attacker can write outside `/home/user/`.',
     'yes'),
    ('No, the code does not contain instances of the security vulnerability known as out-of-bounds write. The buffer is allocated with `strlen(src) + 1` bytes.',
     'no'),
    ('The provided code does not contain any instances of SQL injection. It uses parameterized queries via `cursor.execute(query, (product_id,))`, which safely escapes user input.',
     'no'),
    ('**Answer:** No\n\n**Explanation:** The code checks every pointer for NULL before dereferencing it.',
     'no'),
    ('**Answer: Yes**\n\nThe `data` pointer is freed inside the loop and used afterwards in `print_data`.',
     'yes'),
    ('### Analysis\n\n1. **Input handling**: The `dir` argument is copied into `cmd`.\n2. **Execution**: `system(cmd)` runs it.\n\n### Conclusion\n\nThe code is vulnerable to OS command injection because user input reaches `system()` unsanitized.',
     'yes'),
    ("Let's analyze the code step by step.\n\n1. The function reads an integer `n` from the user.\n2. It multiplies `n` by `sizeof(int)` and passes the result to `malloc`.\n\nThe multiplication can overflow when `n` is large, so the allocated buffer is smaller than expected. Therefore, the code is vulnerable to integer overflow.",
     'yes'),
    ('The code appears to be secure against path traversal. The `realpath` call resolves the path and the prefix check ensures the file stays inside the allowed directory.',
     'no'),
    ('I cannot determine whether this code is vulnerable without more context about how `get_user` is called.',
     'unknown'),
    ('It is unclear whether the code contains a use-after-free; it depends on how `free_list` is used elsewhere.',
     'unknown'),
    ('No vulnerabilities were found in the provided code. The input is escaped with `html.escape` before being rendered.',
     'no'),
    ('The code is not vulnerable to NULL pointer dereference since all pointers are validated.',
     'no'),
    ('There is a potential SQL injection vulnerability in the `search` function, because user input is formatted into the query with an f-string.',
     'yes'),
    ('The code is safe.',
     'no'),
    ("The `strncpy` call limits the copy to the buffer size, so the code isn't vulnerable to an out-of-bounds write.",
     'no'),
    ('In this code, `strcpy(buf, argv[1])` copies user input into a 16-byte buffer without bounds checking. This is a classic buffer overflow. The code is vulnerable.',
     'yes'),
    ('The first function is vulnerable to SQL injection, while the second function is not vulnerable. In conclusion, the code is vulnerable to SQL injection.',
     'yes'),
    ('YES. The code writes past the end of `censored_words`.',
     'yes'),
    ('An attacker can supply `../../etc/passwd` as the file name, so the code is vulnerable to path traversal.',
     'yes'),
    ('The code does not properly validate input, making it vulnerable to SQL injection.',
     'yes'),
    ("The code doesn't have any bounds checks, so it is vulnerable to an out-of-bounds write.",
     'yes'),
    ('The code has a SQL injection vulnerability in `login`.',
     'yes'),
    ('The loop contains an integer overflow check before adding to `sum`, so the code is secure.',
     'no'),
    ("The provided code is vulnerable to a **use-after-free** vulnerability. Here's why:\n\n1. **Memory allocation**: "
     "`data` is allocated in `data_operation`.\n2. **Free**: if a censored word is found, `free(data)` is called and the "
     "loop breaks.\n3. **Use**: `print_data(data)` then reads the freed memory.\n\n### Recommendation\nSet `data` to "
     "`NULL` after freeing it and check it before use.",
     'yes'),
    ("### Vulnerability Analysis\n\n**No**, the code does not contain an OS command injection vulnerability. The `dir` "
     "argument is checked for `;`, `|`, `$` and `&` before it is passed to `system()`:\n\n```c\nif (strpbrk(dir, \";|$&\")) "
     "return -1;\n```\n\nHowever, using `system()` at all is discouraged; prefer `execve` with an argument vector.",
     'no'),
]

# Quoting, negation, hedges, contradictions and markup meant to trip a naive parser.
ADVERSARIAL = [
    ('Does this code contain instances of the security vulnerability known as path traversal?',
     'unknown'),
    ('Not vulnerable.',
     'no'),
    ('The code is vulnerable to SQL injection. The code is not vulnerable to SQL injection.',
     'unknown'),
    ('Yes and no. The code might be vulnerable depending on the caller.',
     'unknown'),
    ('```python\ndef answer():\n    return "yes"\n```\nThe snippet above simply returns a string and does not contain any cross-site scripting vulnerability.',
     'no'),
    ('Yes, the code is safe from SQL injection because it uses parameterized queries.',
     'unknown'),
    ('',
     'unknown'),
    ('If the input were not sanitized, the code would be vulnerable to command injection. However, the input is checked for `;`, `|` and `&`, so the code is not vulnerable.',
     'no'),
    ('While the function handles most errors, it is not safe: `book_info` can be NULL and is dereferenced without a check.',
     'yes'),
    ('The code contains a NULL check that prevents a null pointer dereference, so it is secure.',
     'no'),
    ('- Yes',
     'yes'),
    ('No doubt about it: the code contains a use after free vulnerability.',
     'yes'),
    ('The code uses `escape()` on the output. No, it is not vulnerable.',
     'no'),
    ('Final answer: No',
     'no'),
    ('Answer: yes\nFinal answer: no',
     'unknown'),
    ('The code uses parameterized queries. There is no risk of SQL injection here.',
     'no'),
    ('Yes',
     'yes'),
    ('The code does not sanitize `file_name` and contains a path traversal vulnerability.',
     'yes'),
    ('The code is free of use-after-free issues.',
     'no'),
    ('Sure! Here is an analysis of the code. The function `foo` reads a file.',
     'unknown'),
    ('The code does not have a use-after-free vulnerability.',
     'no'),
    ('`yes` is printed when the user is an admin; the code does not contain cross-site scripting.',
     'no'),
    ('The answer is yes.',
     'yes'),
    ('After careful review, the answer is no: the allocation accounts for the terminator.',
     'no'),
    ('The code does not contain a bounds check before `strcpy`, which leads to an out-of-bounds write.',
     'yes'),
    ('Using `strncpy` prevents a buffer overflow here, and the code does not lead to an out-of-bounds write.',
     'no'),
]


@pytest.mark.parametrize("text,expected", REALISTIC)
def test_realistic_answers(text, expected):
    assert parse_answer(text) == expected


@pytest.mark.parametrize("text,expected", ADVERSARIAL)
def test_adversarial_answers(text, expected):
    assert parse_answer(text) == expected


def test_negation_never_reads_as_yes():
    for text in ("The code is not vulnerable.", "It isn't vulnerable.", "The code does not contain a vulnerability.",
                 "There are no vulnerabilities.", "The code doesn\u2019t have a use after free vulnerability."):
        assert parse_answer(text) == "no", text


def test_code_blocks_are_ignored():
    fenced = "```c\nputs(\"yes\"); // the code is vulnerable\n```\n"
    assert parse_answer(fenced) == "unknown"
    assert parse_answer(fenced + "The code is secure.") == "no"
    assert parse_answer("```python\nprint('No')\n```\nYes, `strcpy` overflows `buf`.") == "yes"


def test_secllmholmes_explanations_never_get_the_wrong_verdict(data_root: Path):
    """Upstream's own human-written explanations (few-shot reasoning, ground truth): no wrong polarity."""
    base = data_root / "secllmholmes"
    files = [*base.glob("few-shot/*/*.txt"), *base.glob("hand-crafted/ground-truth/*/*.txt"),
             *base.glob("real-world/*/*/*.txt")]
    assert len(files) > 100
    wrong, decided = [], 0
    for f in files:
        expected = "no" if f.name.startswith("p") or f.stem.endswith("-p") else "yes"
        got = parse_answer(f.read_text(encoding="utf-8", errors="replace"))
        decided += got != "unknown"
        if got not in (expected, "unknown"):
            wrong.append(f)
    assert wrong == []
    # The few-shot reasoning texts all end in an explicit verdict, so every one must be decided correctly.
    for f in base.glob("few-shot/*/*.txt"):
        assert parse_answer(f.read_text(encoding="utf-8")) == ("no" if f.stem.endswith("-p") else "yes"), f
    assert decided >= len(files) // 2
