"""The report from a fabricated run folder laid out as docs/RUN_FOLDER.md says (test input, not results)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from vulnsteer.errors import DataError
from vulnsteer.report.document import write_report
from vulnsteer.report.steer_sections import MAX_GENERATIONS

CONDITIONS = ("baseline", "baseline_calibrated", "steered", "random", "opposite", "probe")
CWES = ("CWE-22", "CWE-78", "all")
NAN = float("nan")
EVIL = "</pre><script>alert('pwned')</script>\n```\n<img src=http://x/y.png> <script>y()</script>"


def ci(v: float | None, w: float = 0.1) -> list:
    return [None, None, None] if v is None else [v, v - w, v + w]


def metrics(acc: float, auroc: float | None = 0.7) -> dict:
    return {"n": [24, 24, 24], "accuracy": ci(acc), "tpr": ci(0.8), "tnr": ci(0.4), "balanced_accuracy": ci(0.6),
            "f1": ci(0.6), "auroc": ci(auroc), "pairs_both_right": ci(0.3), "pair_ranking": ci(0.6),
            "unknown_rate": ci(0.0, 0.0), "yes_rate": ci(0.7)}


def write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")


def write_baseline(run: Path) -> None:
    write(run / "config.json", {"command": "run", "model": "tiny-llama", "model_sha256": "ab" * 32,
                                "data_root": "/data", "template": "secllmholmes-s1", "k_folds": 4,
                                "layers": [0, 1, 2], "baseline": {"generate": False, "max_new_tokens": 64},
                                "stage_seconds": {"baseline": 12.5, "steer": 300.0}, "wall_seconds": 3725.0})
    write(run / "baseline" / "summary.json", {"score": {c: metrics(0.55, auroc=None if c == "CWE-78" else 0.7)
                                                        for c in CWES}})
    models = {f"gpt-{i}": {c: {"accuracy": 0.4 + 0.1 * i, "tpr": 0.5, "tnr": 0.5, "na_rate": 0.1, "n": 12} for c in CWES}
              for i in range(3)}
    write(run / "published.json", {"study": "prompts", "prompt": "S1", "subset": "hand-crafted", "models": models})
    write(run / "baseline" / "templates.json", {
        "reading": "score", "templates": [{"id": t, "description": f"template {t}", "upstream": True,
                                           "metrics": metrics(0.5 + 0.1 * i)} for i, t in enumerate(("S1", "S2"))],
        "skipped": [{"id": "S5", "reason": "no few-shot example for CWE-22"}]})


def write_steer(run: Path, steered_delta: float = 0.2) -> None:
    layers = list(range(4))
    write(run / "probe" / "curve.json", {
        "layers": layers, "auroc": [0.6, 0.7, 0.8, 0.75], "accuracy": [0.55, 0.6, 0.7, 0.7],
        "control_auroc_mean": [0.5] * 4, "control_auroc_max": [0.6] * 4,
        "per_cwe_auroc": {"CWE-22": [0.6, 0.65, 0.7, 0.7]}, "best_layer": 2})
    write(run / "steer" / "summary.json", {
        "conditions": {c: {cwe: metrics(0.5 + 0.05 * i) for cwe in CWES} for i, c in enumerate(CONDITIONS)},
        # [value, low, high, MDE]; the AUROC deltas as runs before the MDE stored them (no fourth entry)
        "deltas": {c: {"accuracy": ci(steered_delta if c == "steered" else 0.0, 0.05) + [0.14],
                       "auroc": ci(0.0, 0.05)} for c in CONDITIONS[1:]},
        "flips": {"steered": {"vuln_to_secure": ci(0.05, 0.05), "secure_to_vuln": 0.25, "vuln_fixed": 0.0,
                              "secure_fixed": 0.5},
                  "random": {"vuln_to_secure": 0.01, "secure_to_vuln": 0.02}},
        "fluency": {"nll_base": 1.234, "nll_steered": 1.5, "nll_random": 1.25, "kl_answer_steered": 0.3,
                    "kl_answer_random": 0.01, "n_files": 16},
        "bias_only": {"steered": False, "random": False}, "verdict": "Steering moved held-out accuracy."})
    write(run / "steer" / "choices.json", [{"fold": f, "layer": 2, "method": "caa", "operator": "add", "alpha": 2.0,
                                             "val_metrics": {"balanced_accuracy": 0.61, "auroc": NAN}} for f in range(4)])
    write(run / "steer" / "curves.json", {
        "caa/add": {"layer": 2, "alphas": [-2, -1, 1, 2], "balanced_accuracy": [0.5, 0.55, 0.6, 0.62],
                    "auroc": [0.7] * 4},
        "by_layer": {"caa/add": {"layers": layers, "balanced_accuracy": [0.5, 0.55, 0.62, 0.6], "auroc": [0.7] * 4}}})
    gens = [{"id": f"hand-crafted/CWE-22/p_{i}", "cwe": "CWE-22", "label": i % 2, "config": "L2 caa add+2",
             "unsteered": f"Answer: no. {EVIL}", "steered": "Yes, vulnerable: <script>x()</script>",
             "unsteered_verdict": "no", "steered_verdict": "yes"} for i in range(MAX_GENERATIONS + 3)]
    (run / "steer" / "generations.jsonl").write_text("".join(json.dumps(g) + "\n" for g in gens), encoding="utf-8")


class Tags(HTMLParser):
    """Every start tag of a page with its attributes, as a browser would see them."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> tuple[Path, str, str]:
    run = tmp_path_factory.mktemp("run")
    write_baseline(run)
    write_steer(run)
    md_path, html_path = write_report(run)
    assert (md_path, html_path) == (run / "report.md", run / "report.html")
    return run, md_path.read_text(), html_path.read_text()


def test_full_report_sections_and_tables(full_run):
    run, md, page = full_run
    assert md.startswith("# vulnsteer report: tiny-llama")
    assert "not run" not in md.lower().replace("generation reading: not run", "")
    assert "steered (chosen on validation) | 0.60 [0.50, 0.70]" in md
    assert "| baseline | 0.50 [0.40, 0.60]" in md
    assert "pub: gpt-2 | pub: gpt-1 | pub: gpt-0" in md
    assert "Generation reading: not run." in md  # only the score reading was written
    assert "| steer | 5 min 0 s |" in md and "| total | 62 min 5 s |" in md
    assert "| template | secllmholmes-s1 |" in md and "| baseline.max_new_tokens | 64 |" in md
    assert "| mean token NLL (nats) | 1.234 | 1.500 | 1.250 |" in md
    # both directions of every flip: fixed and broken, for vulnerable and secure files
    assert "| steered (chosen on validation) | 0.000 | 0.050 [0.000, 0.100] | 0.500 | 0.250 |" in md
    # every delta carries its minimal detectable effect; a null one says what it rules out
    assert "0.20 [0.15, 0.25] MDE 0.14" in md
    assert "| random-direction control − baseline | accuracy | 0.00 [-0.05, 0.05] | 0.14 | the interval rules out " \
           "changes below -0.05 or above 0.05 | — |" in md
    assert "| steered (chosen on validation) − baseline | accuracy | 0.20 [0.15, 0.25] | 0.14 | the interval excludes " \
           "0 | — |" in md
    assert "| AUROC | 0.00 [-0.05, 0.05] | n/a | the interval rules out changes below -0.05 or above 0.05 | — |" in md
    assert "This run reports 20 paired comparisons" in md
    # "How to read this" no longer says a null rules out only effects larger than its MDE
    assert "rules out only effects larger than its MDE" not in md and "The MDE is a property of the design" in md
    # PrimeVul's P-C, named as such wherever pairs_both_right is shown
    assert md.count("P-C (pairs both right)") >= 3
    assert "| S2 | template S2 | 24 | 0.60 [0.50, 0.70] | 0.60 [0.50, 0.70] | 0.70 [0.60, 0.80] | 0.30 [0.20, 0.40] |" in md
    assert "Skipped S5: no few-shot example for CWE-22" in md
    assert "steering beats the random direction" in md
    assert "3 more in steer/generations.jsonl" in md
    assert len(list((run / "figures").glob("*.png"))) == 4
    assert page.count('src="data:image/png;base64,') == 4


def test_html_is_self_contained_and_escapes_model_text(full_run):
    _, _, page = full_run
    tags = Tags(page).tags
    links = [v for _, attrs in tags for k, v in attrs.items() if k in ("src", "href", "srcset", "action")]
    outside = [v for v in links if not v.startswith("#")]  # the table of contents links within the page
    assert len(outside) == 4 and all(v.startswith("data:image/png;base64,") for v in outside)
    assert "script" not in {t for t, _ in tags}
    assert sum(t == "img" for t, _ in tags) == 4  # only the figures; the model's <img> stayed text
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page


def test_markdown_keeps_model_text_inside_code_fences(full_run):
    _, md, _ = full_run
    outside = re.sub(r"(`{3,})text\n.*?\n\1(?!`)", "", md, flags=re.S)
    assert "<script>" in md and "<script>" not in outside


def test_baseline_only_run_still_reports(tmp_path):
    write_baseline(tmp_path)
    md_path, html_path = write_report(tmp_path)
    md = md_path.read_text()
    # what did not run is one line at the end, not a section each
    assert md.count("Not run (") == 0 and md.count("## Not run") == 1
    assert md.rstrip().splitlines()[-1].startswith("Not run: Headline: held-out results")
    assert "Probe curve (readout answer) (probe/curve.json is not in this run folder)" in md
    assert "Generations side by side (steer/generations.jsonl is not in this run folder)" in md
    assert "Baseline (score reading)" in md and "0.55 [0.45, 0.65]" in md
    assert "(steer/summary.json is not in this run folder)" in html_path.read_text()
    assert not (tmp_path / "figures").exists()


def test_a_probe_only_run_opens_with_the_probe(tmp_path):
    write_baseline(tmp_path)
    write_steer(tmp_path)
    for name in ("summary.json", "choices.json", "curves.json", "generations.jsonl"):
        (tmp_path / "steer" / name).unlink()
    md = write_report(tmp_path)[0].read_text()
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert headings[0].startswith("## Probe curve") and headings[-1] == "## Not run"
    assert "Best layer 2: AUROC 0.80" in md.split("## ")[1]


def test_a_tiny_model_report_says_its_weights_are_random_and_has_contents(full_run):
    _, md, page = full_run
    assert md.splitlines()[2] == ("**tiny-llama has random weights: every number below is a smoke test of the "
                                  "pipeline, not a finding about any model. An interval that excludes 0 here is "
                                  "chance or an artefact.**")
    assert "1. [Headline: held-out results" in md and '<a id="s1"></a>' in md
    assert '<nav><h2>Contents</h2><ol><li><a href="#s1">' in page and '<section id="s1">' in page


def test_empty_folder_and_bad_json(tmp_path):
    md = write_report(tmp_path)[0].read_text()
    assert md.count("## Not run") == 1 and md.count("is not in this run folder") >= 8 and "How to read this" in md
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(DataError, match="config.json"):
        write_report(tmp_path)
    with pytest.raises(DataError, match="not a run folder"):
        write_report(tmp_path / "missing")


def test_markdown_escapes_the_verdict_and_html_tables_scroll(tmp_path):
    run = tmp_path / "run"
    write_baseline(run)
    write_steer(run)
    summary = json.loads((run / "steer" / "summary.json").read_text())
    summary["verdict"] = "Fine. ![x](http://evil.example/p.png) [click](javascript:alert(1)) <b>bold</b> | cell"
    (run / "steer" / "summary.json").write_text(json.dumps(summary))
    md_path, html_path = write_report(run)
    md = md_path.read_text()
    assert "![x](" not in md and "[click](" not in md and "<b>" not in md
    assert "\\!\\[x\\](http://evil.example/p.png)" in md and "&lt;b&gt;" in md
    page = html_path.read_text()
    assert page.count('<div class="scroll"><table>') == page.count("<table>") > 0
    assert ".scroll{overflow-x:auto" in page


def test_strength_curves_give_each_operator_its_own_axis(tmp_path):
    from vulnsteer.report.plots import strength_curves_plot

    curves = {"caa/add": {"layer": 2, "alphas": [-4, 4], "balanced_accuracy": [0.5, 0.6], "auroc": [0.5, 0.7]},
              "caa/amplify": {"layer": 3, "alphas": [-1, 16], "balanced_accuracy": [0.5, 0.55], "auroc": [0.6, 0.6]}}
    out = strength_curves_plot(curves, tmp_path / "s.png")
    from PIL import Image

    width, height = Image.open(out).size
    assert height > width / 2, "one row of panels per operator: two operators, two rows"


def test_a_conditional_generation_is_shown_and_an_unselected_one_is_marked(tmp_path):
    write_steer(tmp_path)
    gens = [{"id": f"f{i}", "cwe": "CWE-22", "label": 1, "config": "L2 caa add:8", "unsteered": f"plain {i}",
             "steered": f"pushed {i}", "unsteered_verdict": "no", "steered_verdict": "yes",
             "conditional": f"pushed {i}" if i == 0 else f"plain {i}", "conditional_verdict": "yes" if i == 0 else "no",
             "conditional_selected": i == 0} for i in range(2)]
    (tmp_path / "steer" / "generations.jsonl").write_text("".join(json.dumps(g) + "\n" for g in gens))
    md_path, html_path = write_report(tmp_path)
    md, page = md_path.read_text(), html_path.read_text()
    assert "f0 (CWE-22, labelled vulnerable; steering L2 caa add:8) [selected by the condition]" in md
    assert "conditionally steered (verdict: yes):\n\n```text\npushed 0\n```" in md
    assert "[not selected by the condition]" in md
    assert "conditionally steered (not selected: the unsteered text) (verdict: no):\n\n```text\nplain 1\n```" in md
    assert "<h4>conditionally steered (not selected: the unsteered text) (verdict: no)</h4><pre>plain 1</pre>" in page


MEASURE = """<script>
const r = {view: window.innerWidth, width: document.documentElement.scrollWidth,
  ci: document.querySelectorAll('.ci').length,
  wrapped: [...document.querySelectorAll('.ci')].filter(e => e.getClientRects().length > 1).map(e => e.textContent),
  toc: [...document.querySelectorAll('nav a[href^="#"]')].map(a => a.getAttribute('href')),
  targets: [...document.querySelectorAll('nav a[href^="#"]')].filter(a => document.getElementById(
    a.getAttribute('href').slice(1))).length,
  sections: document.querySelectorAll('section').length};
const out = document.createElement('pre'); out.id = 'measured'; out.textContent = JSON.stringify(r);
document.body.appendChild(out);
</script>"""


def test_report_html_fits_a_1366_px_browser_window_with_contents(tmp_path):
    """report.html in headless Chromium at 1,366 px: no page wider than the window (one file's long token run
    once made it 5,187 px wide), no interval wrapped inside its cell, and a table of contents that links to
    every section."""
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium on PATH; install it with `apt-get install -y chromium`")
    run = tmp_path / "run"
    write_baseline(run)
    write_steer(run)
    gens = [json.loads(line) for line in (run / "steer" / "generations.jsonl").read_text().splitlines()]
    gens[0]["steered"] = "x = " + "0x41" * 2000  # one long token run, no space to break at
    (run / "steer" / "generations.jsonl").write_text("".join(json.dumps(g) + "\n" for g in gens))
    page = write_report(run)[1].read_text()
    probe = tmp_path / "measure.html"
    probe.write_text(page.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1366,900",
                          "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom, flags=re.S)
    assert found, f"chromium printed no measurement: {dom[:300]!r}"
    m = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
    assert m["view"] == 1366 and m["width"] <= m["view"], m
    assert m["ci"] > 20 and m["wrapped"] == []
    assert len(m["toc"]) == m["targets"] == m["sections"] > 5


def test_a_pairs_id_that_looks_like_a_link_is_text_in_report_md(tmp_path):
    evil = "[link](javascript:alert(1))"
    write_baseline(tmp_path)
    write_steer(tmp_path)
    rows = [json.loads(x) for x in (tmp_path / "steer" / "generations.jsonl").read_text().splitlines()]
    rows[0]["id"] = evil
    (tmp_path / "steer" / "generations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = json.loads((tmp_path / "config.json").read_text())
    write(tmp_path / "config.json", {**cfg, "notes": [f"--long-files skip: 1 of 48 files were skipped: {evil}"]})
    md = (write_report(tmp_path)[0]).read_text()
    outside = re.sub(r"(`{3,})text\n.*?\n\1(?!`)", "", md, flags=re.S)
    assert "link" in outside and "javascript" in outside
    assert not re.search(r"(?<!\\)\]\(javascript", outside), "every ](...) of the id is escaped: no link"
