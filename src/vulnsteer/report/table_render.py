"""A `TableData` rendered three ways from the same strings: the terminal (rich), GitHub markdown and HTML."""

from __future__ import annotations

import html
import re

from rich.table import Table

from vulnsteer.report.tables import TableData, baseline_data, headline_data

CONSOLE_PUBLISHED = 2  # published-model columns the terminal shows; report.md has them all


def to_rich(data: TableData) -> Table:
    """The terminal's view: fits 100 columns without clipping a cell. Intervals go on a second line, cells
    fold instead of ending in an ellipsis, and only the top published models stay (the report has all)."""
    pub = [i for i, c in enumerate(data.columns) if c.startswith("pub: ")]
    keep = [i for i in range(len(data.columns)) if i not in pub[CONSOLE_PUBLISHED:]]
    note = data.note
    if len(pub) > CONSOLE_PUBLISHED:
        note += f" The terminal shows {CONSOLE_PUBLISHED} of {len(pub)} published models; report.md shows all."
    table = Table(title=data.title, caption=note or None, padding=(0, 1), collapse_padding=True)
    numeric = data.numeric()
    for i in keep:
        col = data.columns[i].removeprefix("pub: ")
        table.add_column(col, justify="right" if numeric[i] else "left", overflow="fold")
    for row in data.rows:
        table.add_row(*(row[i].replace(" [", "\n[").replace(" MDE ", "\nMDE ") for i in keep))
    return table


def md_cell(text: str) -> str:
    """A cell as literal text: HTML escaped, and `](`/`][` broken so a pairs id like `[x](javascript:...)`
    is never a link (the numbers' own `[low, high]` brackets stay as they are)."""
    cell = html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ")
    return cell.replace("](", "]\\(").replace("][", "]\\[")


def to_markdown(data: TableData) -> str:
    """A GitHub table (title and note as plain lines around it)."""
    lines = [f"**{md_cell(data.title)}**", ""] if data.title else []
    lines.append("| " + " | ".join(md_cell(c) for c in data.columns) + " |")
    lines.append("|" + "|".join("---:" if right else ":---" for right in data.numeric()) + "|")
    def cell(i: int, j: int, c: str) -> str:
        link = data.links.get((i, j))
        return md_cell(c) if link is None else f"[{md_cell(c)}]({link}.md)"
    lines += ["| " + " | ".join(cell(i, j, c) for j, c in enumerate(row)) + " |" for i, row in enumerate(data.rows)]
    if data.note:
        lines += ["", f"*{md_cell(data.note)}*"]
    return "\n".join(lines) + "\n"


_INTERVAL = re.compile(r"-?\d+(?:\.\d+)? \[(?:-?\d+(?:\.\d+)?, -?\d+(?:\.\d+)?|n/a)\](?: MDE -?\d+(?:\.\d+)?)?")


def nowrap_intervals(escaped: str) -> str:
    """HTML-escaped text with each '0.62 [0.50, 0.75]' (and its MDE) in a span that never wraps inside."""
    return _INTERVAL.sub(lambda m: f'<span class="ci">{m.group(0)}</span>', escaped)


def to_html(data: TableData) -> str:
    e = html.escape
    cls = ['' if right else ' class="l"' for right in data.numeric()]
    head = "".join(f"<th>{e(c)}</th>" for c in data.columns)
    def cell(i: int, j: int, c: str) -> str:
        link = data.links.get((i, j))
        return nowrap_intervals(e(c)) if link is None else f'<a href="{e(link)}.html">{e(c)}</a>'
    body = "".join("<tr>" + "".join(f"<td{k}>{cell(i, j, c)}</td>" for j, (k, c) in enumerate(zip(cls, row)))
                   + "</tr>" for i, row in enumerate(data.rows))
    caption = f"<caption>{e(data.title)}</caption>" if data.title else ""
    note = f'<p class="note">{e(data.note)}</p>' if data.note else ""
    # The wrapper scrolls sideways: a wide table (many published models) must not overflow the page.
    return (f'<div class="scroll"><table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
            f"{note}")


def baseline_table(summary: dict, published: dict | None, reading: str = "score") -> Table:
    return to_rich(baseline_data(summary, published, reading))


def headline_table(steer_summary: dict, where: str | None = None) -> Table:
    return to_rich(headline_data(steer_summary, where))
