"""report.md and report.html, rebuilt from a run folder's files alone (docs/RUN_FOLDER.md); no model needed.

The sections come from `report.sections`; this module renders each block to markdown and to HTML
(self-contained: figures embedded as data URIs, model output escaped).
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from vulnsteer.errors import DataError
from vulnsteer.experiments.run_folder import schema
from vulnsteer.experiments.run_folder.reader import Run, unfinished
from vulnsteer.io import atomic_write_text
from vulnsteer.report.blocks import Block, Fig, Generation, Section
from vulnsteer.report.sections import build_sections
from vulnsteer.report.table_render import md_cell, nowrap_intervals, to_html, to_markdown
from vulnsteer.report.tables import TableData

CSS = """body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}th,td{border:1px solid #ccc;padding:.2rem .5rem}
td{text-align:right}td.l{text-align:left;min-width:8rem}th{background:#f3f3f3}caption{font-weight:bold;text-align:left}
.note{font-size:.85rem;color:#555}img{max-width:100%}pre{white-space:pre-wrap;background:#f7f7f7;padding:.5rem;
font-size:.8rem;max-height:24rem;overflow:auto;overflow-wrap:anywhere}
.pair{display:grid;grid-auto-flow:column;grid-auto-columns:minmax(0,1fr);gap:1rem}
.scroll{overflow-x:auto;max-width:100%}.ci{white-space:nowrap}.warn{font-weight:bold;color:#a00}
nav ol{columns:2;font-size:.9rem}"""


def _fence(text: str) -> str:
    ticks = "`" * max(3, max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{ticks}text\n{text}\n{ticks}"


def _gen_head(r: dict) -> str:
    label = {1: "vulnerable", 0: "secure", None: "unknown"}.get(r.get("label"), str(r.get("label")))
    tags = []
    if r.get("score_verdict_flipped"):
        tags.append("steering flipped its answer-score verdict")
    if r.get("identical"):
        tags.append("steered text IDENTICAL to unsteered")
    if r.get("conditional_selected") is not None:
        tags.append("selected by the condition" if r["conditional_selected"] else "not selected by the condition")
    more = f" [{'; '.join(tags)}]" if tags else ""
    return f"{r.get('id')} ({r.get('cwe')}, labelled {label}; steering {r.get('config')}){more}"


def _gen_columns(r: dict) -> tuple[str, ...]:
    return ("unsteered", "steered", "conditional") if "conditional" in r else ("unsteered", "steered")


def _gen_title(r: dict, name: str) -> str:
    """A generation's heading; an unselected file's conditional text is its unsteered text, said so."""
    label = {"conditional": "conditionally steered"}.get(name, name)
    if name == "conditional" and not r.get("conditional_selected"):
        label += " (not selected: the unsteered text)"
    return f"{label} (verdict: {r.get(name + '_verdict')})"


def _markdown(block: Block, run_dir: Path) -> str:
    if isinstance(block, TableData):
        return to_markdown(block)
    if isinstance(block, Fig):
        return f"![{block.alt}]({block.path.relative_to(run_dir).as_posix()})\n"
    if isinstance(block, Generation):
        r = block.row
        return f"**{md_cell(_gen_head(r))}**\n\n" + "\n\n".join(
            f"{_gen_title(r, name)}:\n\n{_fence(str(r.get(name) or ''))}" for name in _gen_columns(r)) + "\n"
    return md_text(block.text) + "\n"


def md_text(text: str) -> str:
    """Text as markdown shows it literally: HTML escaped, and the characters that would make links, images,
    emphasis, code or table cells backslash-escaped (a run folder's JSON can hold anything)."""
    return re.sub(r"([\\`*_\[\]|!])", r"\\\1", html.escape(text, quote=False))


def _html(block: Block) -> str:
    e = html.escape
    if isinstance(block, TableData):
        return to_html(block)
    if isinstance(block, Fig):
        data = base64.b64encode(block.path.read_bytes()).decode("ascii")
        return f'<figure><img alt="{e(block.alt)}" src="data:image/png;base64,{data}"></figure>'
    if isinstance(block, Generation):
        r = block.row
        side = "".join(f"<div><h4>{e(_gen_title(r, name))}</h4><pre>{e(str(r.get(name) or ''))}</pre></div>"
                       for name in _gen_columns(r))
        return f'<h3>{e(_gen_head(r))}</h3><div class="pair">{side}</div>'
    return f"<p>{nowrap_intervals(e(block.text))}</p>"


def write_report(run_dir: Path, finishing: bool = False) -> tuple[Path, Path]:
    """Write run_dir/report.md, run_dir/report.html (figures embedded) and run_dir/figures/*.png.
    `finishing`: the run that writes it has finished every stage and marks itself finished once the report
    exists, so its status "running" is not reported as unfinished."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: not a run folder; pass the folder a vulnsteer command wrote")
    try:
        sections = build_sections(run_dir)
        cfg = Run(run_dir).json(schema.CONFIG)
        model = cfg.get("model") if isinstance(cfg, dict) else None
        title = f"vulnsteer report: {model}" if isinstance(model, str) else f"vulnsteer report: {run_dir.name}"
        if not finishing and (why := unfinished(cfg)) is not None:
            title = f"UNFINISHED RUN ({why}) - {title}"
        return write_document(title, sections, run_dir, "report",
                              [w] if (w := random_weights_warning(model)) else [])
    except OSError as exc:  # a read-only or full folder: one line, whatever file it hit first
        raise DataError(f"{run_dir}: cannot write the report ({exc.strerror}: {exc.filename}); make the folder "
                        "writable or free space, then run `vulnsteer report` on it again") from None


def random_weights_warning(model: object) -> str | None:
    """The line that heads a report on a `tiny-*` model: its weights are random, so its numbers test the
    pipeline and say nothing about any real model."""
    if not (isinstance(model, str) and model.startswith("tiny-")):
        return None
    return (f"{model} has random weights: every number below is a smoke test of the pipeline, not a finding "
            "about any model. An interval that excludes 0 here is chance or an artefact.")


def write_document(title: str, sections: list[Section], out_dir: Path, stem: str,
                   lead: list[str] | None = None) -> tuple[Path, Path]:
    """Render `sections` to out_dir/<stem>.md and out_dir/<stem>.html, each `lead` line in bold under the
    title, then a table of contents linking each section; figures must lie under out_dir."""
    e = html.escape
    md = [f"# {e(title, quote=False)}\n", *(f"**{md_text(t)}**\n" for t in lead or [])]
    body = [f"<h1>{e(title)}</h1>", *(f'<p class="warn">{e(t)}</p>' for t in lead or [])]
    md.append("Contents:\n\n" + "".join(f"{i}. [{md_text(s.title)}](#s{i})\n" for i, s in enumerate(sections, 1)))
    body.append('<nav><h2>Contents</h2><ol>' + "".join(f'<li><a href="#s{i}">{e(s.title)}</a></li>'
                                                      for i, s in enumerate(sections, 1)) + "</ol></nav>")
    for i, s in enumerate(sections, 1):
        md.append(f'<a id="s{i}"></a>\n\n## {s.title}\n\n' + "\n".join(_markdown(b, out_dir) for b in s.blocks))
        body.append(f'<section id="s{i}"><h2>{e(s.title)}</h2>' + "".join(_html(b) for b in s.blocks) + "</section>")
    md_path, html_path = out_dir / f"{stem}.md", out_dir / f"{stem}.html"
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
            f"</title><style>{CSS}</style></head><body>{''.join(body)}</body></html>\n")
    for path, text in ((md_path, "\n".join(md)), (html_path, page)):
        if path.exists() and not path.is_file():
            raise DataError(f"{path} exists and is not a file; move it away so the report can be written there")
        atomic_write_text(path, text)
    return md_path, html_path
