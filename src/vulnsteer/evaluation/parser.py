"""Map a free-text generation to a verdict: "yes" (vulnerable), "no" (not vulnerable) or "unknown".

Rules (docs/PROMPTS.md has the full description and examples):
1. Code blocks and inline code are removed first, so quoted strings such as "yes" in code never count.
2. A leading answer word ("Yes," / "**Answer:** No" / "Not vulnerable.") or a labelled answer anywhere
   ("Final answer: Yes") is the verdict, unless the rest of the text only makes claims of the other
   polarity (then "unknown": the text contradicts itself).
3. Otherwise explicit claims are collected sentence by sentence ("the code is vulnerable", "contains a ...
   vulnerability" / "does not contain", "is not vulnerable", "no vulnerabilities", "is safe"), skipping
   questions and conditional clauses ("whether/if the code is vulnerable"). One polarity wins; mixed
   claims are settled by the last claim after a conclusion marker ("Therefore", "In conclusion"), else
   "unknown". No claim at all (or only hedges like "I cannot determine") is "unknown".
"""

from __future__ import annotations

import re
from typing import Literal

Verdict = Literal["yes", "no", "unknown"]

_FENCE = re.compile(r"```.*?(?:```|\Z)", re.S)
_INLINE = re.compile(r"`[^`\n]*`")
_MARKUP = r"[\s*_#>\"'“”‘’`|\-]*"
_LABEL = r"(?:(?:final|short)\s+)?(?:answer|verdict|decision|conclusion|result)"
_LEADING = re.compile(
    rf"^{_MARKUP}(?:{_LABEL}\s*\**\s*[:\-]{_MARKUP})?"
    r"(?P<word>yes|no|not\s+vulnerable|vulnerable|safe|secure)\b(?=\s*(?:[,.!;:)\-—*\"'”]|$|\n))",
    re.I,
)
_LABELLED = re.compile(
    rf"\b(?:{_LABEL}\s*\**\s*[:\-]|(?:the\s+)?answer\s+is\s*:?)\s*\**\s*[\"'“]?(?P<word>yes|no)\b", re.I
)

_THREAT = (
    r"(?:vulnerabilit(?:y|ies)|flaws?|weakness(?:es)?|bugs?|injections?|overflows?|traversals?|"
    r"use[- ]after[- ]frees?|dereferences?|cross[- ]site|out[- ]of[- ]bounds?)"
    r"(?!\s+(?:checks?|protections?|prevention|mitigations?|guards?)\b)"  # "an overflow check" is no threat
)
_ADVERB = r"(?:(?:indeed|potentially|likely|definitely|clearly|highly|still|therefore|thus|also|certainly)\s+)?"
# Up to five words between a verb and the threat, none of which negates it or says it is prevented.
_GAP = r"(?:(?!prevent|protect|mitigat|against|check|guard|avoid|(?:no|not|none|never)\b)[\w\-/]+\s+){0,5}?"
_BE = r"(?:is|are|remains|appears\s+to\s+be|seems\s+to\s+be)"
_CAUSE = r"(?:(?:leads?|leading|results?|resulting)\s+(?:to|in)|causes?|causing|allows?|allowing)"
_YES = [
    re.compile(rf"\b{_BE}\s+{_ADVERB}(?:vulnerable|susceptible|prone)\b"),
    re.compile(rf"\bcontains?\s+{_GAP}{_THREAT}"),
    re.compile(rf"\b(?:has|have|introduces?|exhibits?|suffers\s+from)\s+{_GAP}{_THREAT}"),
    re.compile(rf"\b{_CAUSE}\s+{_GAP}{_THREAT}"),
    re.compile(
        rf"\b(?:making|makes|leaving|leaves|rendering|renders)\s+(?:it|the\s+\w+|this\s+\w+)\s+{_ADVERB}vulnerable\b"
    ),
    re.compile(rf"\b(?:there\s+is|there\s+are|there's)\s+{_GAP}{_THREAT}"),
    re.compile(rf"\b{_THREAT}\s+(?:is|are|exists?)\s+(?:present|found)\b"),
    re.compile(r"\b(?:is|are)\s+(?:not|n't)\s+(?:safe|secure)\b|\bisn't\s+(?:safe|secure)\b"),
]
_NO = [
    re.compile(r"\bnot\s+(?:\w+\s+)?(?:vulnerable|susceptible|prone)\b|n't\s+(?:\w+\s+)?vulnerable\b"),
    re.compile(
        rf"\b(?:does|do|did)\s*(?:not|n't)\s+(?:\w+\s+){{0,3}}?(?:contain|have|exhibit|suffer|introduce|present)\b"
        rf"(?:\s+from)?\s+{_GAP}(?:{_THREAT}|instances?|issues?)"
    ),
    re.compile(
        rf"\bno\s+(?!other\b|further\b|additional\b|more\b){_GAP}(?:{_THREAT}|instances?|evidence|issues?|risks?)\b"
    ),
    re.compile(rf"\b(?:is|are|appears\s+to\s+be|seems\s+to\s+be)\s+{_ADVERB}(?:safe|secure|protected)\b"),
    re.compile(rf"\bfree\s+(?:of|from)\s+(?:[\w\-/]+\s+){{0,4}}?{_THREAT}"),
    re.compile(rf"\b{_THREAT}\s+(?:is|are)\s+not\s+present\b"),
    re.compile(
        rf"\b(?:cannot|can't|can\s+not|will\s+not|won't|does\s+not|doesn't)\s+(?:\w+\s+)?"
        rf"(?:cause|lead\s+to|result\s+in|allow|introduce)\s+{_GAP}{_THREAT}"
    ),
    re.compile(rf"\b(?:prevents|prevented|protects\s+against|mitigates|eliminates|avoids)\s+{_GAP}{_THREAT}"),
]
_NEGATORS = re.compile(r"\b(?:not|no|never|without|none|nor|cannot)\b|n't\b|\bfree\s+(?:of|from)\b")
_PREVENTS = re.compile(r"\b(?:prevent|protect|avoid|mitigat|eliminat)\w*")
_CONDITIONAL = re.compile(r"\b(?:if|whether|unless)\b")
_MODAL = re.compile(r"\b(?:would|could|might|may|determine|check)\b")
# A conditional before one of these no longer governs the claim: "If X, then Y happens, so it is vulnerable".
_CONSEQUENCE = re.compile(r",\s*so\b|\b(?:therefore|thus|hence|which\s+means|this\s+means)\b")
_CONCLUSION = re.compile(
    r"^\W*(?:therefore|thus|hence|so|overall|in\s+(?:conclusion|summary)|to\s+(?:conclude|summarize)|"
    r"conclusion|summary|decision|final(?:ly)?|in\s+short)\b"
)
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")
_CLAUSE_BREAK = re.compile(r"\b(?:and|but|however|although|though|while|because|since)\b|[,;:]")


def _clean(text: str) -> str:
    text = _FENCE.sub(" ", text).replace("\u2019", "'")  # typographic apostrophe: "doesn\u2019t"
    return _INLINE.sub("code", text)


def _clause_before(sentence: str, start: int) -> str:
    return _CLAUSE_BREAK.split(sentence[:start])[-1]


def _claims(sentence: str) -> list[Verdict]:
    """Polarity of each explicit claim in one sentence, in order."""
    found: list[tuple[int, Verdict]] = []
    taken: list[tuple[int, int]] = []
    groups: tuple[tuple[Verdict, list[re.Pattern[str]]], ...] = (("no", _NO), ("yes", _YES))
    for polarity, patterns in groups:  # no first: "not vulnerable" must not read as yes
        for pattern in patterns:
            for m in pattern.finditer(sentence):
                if any(a < m.end() and m.start() < b for a, b in taken):
                    continue
                prefix = sentence[: m.start()]
                consequence = list(_CONSEQUENCE.finditer(prefix))
                governing = prefix[consequence[-1].end():] if consequence else prefix
                clause = _clause_before(sentence, m.start())
                if _CONDITIONAL.search(governing) or _MODAL.search(clause):
                    continue
                if polarity == "yes" and (
                    _NEGATORS.search(" ".join(clause.split()[-4:])) or _PREVENTS.search(clause)
                ):
                    continue
                taken.append((m.start(), m.end()))
                found.append((m.start(), polarity))
    return [p for _, p in sorted(found)]


def _word_verdict(word: str) -> Verdict:
    word = " ".join(word.lower().split())
    return "yes" if word in ("yes", "vulnerable") else "no"


def parse_answer(text: str) -> Verdict:
    """The verdict a generation states about the code; "unknown" when absent or contradictory."""
    cleaned = _clean(text).strip()
    if not cleaned:
        return "unknown"
    lowered = cleaned.lower()
    sentences = [s.strip() for s in _SENTENCES.split(lowered) if s.strip()]
    claims: list[tuple[bool, Verdict]] = []  # (after a conclusion marker, polarity)
    concluding = False
    for sentence in sentences:
        # Sticky, so a "### Conclusion" heading marks the sentences below it.
        concluding = concluding or bool(_CONCLUSION.search(sentence))
        if sentence.endswith("?"):
            continue
        claims.extend((concluding, p) for p in _claims(sentence))
    polarities = {p for _, p in claims}

    labelled = [m.group("word").lower() for m in _LABELLED.finditer(lowered)]
    lead = _LEADING.match(lowered)
    stated: list[Verdict] = [_word_verdict(lead.group("word"))] if lead else []
    stated += [_word_verdict(w) for w in labelled]
    if stated:
        if len(set(stated)) > 1:
            return "unknown"
        verdict = stated[0]
        opposite: Verdict = "no" if verdict == "yes" else "yes"
        return "unknown" if polarities == {opposite} else verdict
    if len(polarities) == 1:
        return claims[0][1]
    if not polarities:
        return "unknown"
    final = [p for after_marker, p in claims if after_marker]
    return final[-1] if final else "unknown"
