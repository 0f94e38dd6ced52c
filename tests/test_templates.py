"""Every prompt template on the same files (tiny model): one table row per implemented template, and a
template whose inputs are missing from the data root left out with the reason."""

from __future__ import annotations

import math

import pytest

from vulnsteer.activations.cache import ActivationCache
from vulnsteer.activations.scoring import AnswerWords
from vulnsteer.data.prompts import TEMPLATES, answer_token_ids
from vulnsteer.data.secllmholmes import cwe_names, load_secllmholmes
from vulnsteer.experiments.templates import score_templates, template_table
from vulnsteer.model.architecture import model_parts
from vulnsteer.model.loading import LoadedModel
from vulnsteer.model.tiny import tiny_model, tiny_tokenizer
from vulnsteer.options import LongFiles
from vulnsteer.prompting.context import Context


def context(root, tmp_path) -> Context:
    tok, m = tiny_tokenizer(), tiny_model("qwen2")
    loaded = LoadedModel(m, tok, "tiny", "1" * 64, model_parts(m), "hf_dir", "tiny", None)  # type: ignore[arg-type]
    records = [r for r in load_secllmholmes(root, ["hand-crafted"]) if r.cwe == "CWE-787"]
    return Context(root, records, loaded, AnswerWords(*map(tuple, answer_token_ids(tok))), cwe_names(root),
                   ActivationCache(tmp_path / "cache"))


@pytest.fixture
def root_without_few_shot(data_root, tmp_path):
    """A data root with the hand-crafted files and the MITRE definitions but no few-shot/ folder."""
    root = tmp_path / "data"
    (root / "secllmholmes").mkdir(parents=True)
    for name in ("hand-crafted", "mitre-cwe-definitions.json"):
        (root / "secllmholmes" / name).symlink_to(data_root / "secllmholmes" / name)
    return root


def test_one_row_per_implemented_template(data_root, tmp_path):
    ctx = context(data_root, tmp_path)
    scored, skipped = score_templates(ctx, ctx.records, 1536, LongFiles.WINDOWS)
    table = template_table(scored, skipped, n_boot=100, seed=0)
    assert [t["id"] for t in table["templates"]] == list(TEMPLATES) and not table["skipped"]
    ids = {t.ids for t in scored}
    assert len(ids) == 1 and len(next(iter(ids))) == 6, "every template scores the same six files"
    for row in table["templates"]:
        m = row["metrics"]
        assert row["description"] == TEMPLATES[row["id"]].description and m["n"][0] == 6
        for k in ("accuracy", "balanced_accuracy", "auroc", "pairs_both_right"):
            # six files in three scenario groups: under MIN_GROUPS, so the value without an interval
            value, low, high = m[k]
            assert 0 <= value <= 1 and math.isnan(low) and math.isnan(high), (row["id"], k, m[k])
    # the prompts differ, so the scores do: the table is not one template repeated
    assert len({tuple(round(x, 5) for x in t.predictions.scores) for t in scored}) == len(TEMPLATES)


def test_templates_whose_inputs_are_missing_are_skipped_with_the_reason(root_without_few_shot, tmp_path):
    ctx = context(root_without_few_shot, tmp_path)
    scored, skipped = score_templates(ctx, ctx.records, 1536, LongFiles.WINDOWS)
    few_shot = [t for t, tpl in TEMPLATES.items() if tpl.few_shot]
    assert [s.template for s in skipped] == few_shot
    assert all("few-shot" in s.reason for s in skipped)
    assert [t.template for t in scored] == [t for t in TEMPLATES if t not in few_shot]
