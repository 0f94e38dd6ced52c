"""The blocks a report section is made of (text, table, figure, generation): built once by `report.sections`
(with `report.steer_sections`) and `report.compare`, rendered by `report.document` to markdown and HTML alike."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vulnsteer.report.tables import TableData


@dataclass
class Text:
    text: str


@dataclass
class Fig:
    path: Path
    alt: str


@dataclass
class Generation:
    row: dict


Block = Text | TableData | Fig | Generation


@dataclass
class Section:
    title: str
    blocks: list[Block]


def not_run_blocks(rel: str) -> list[Block]:
    """What a section shows when its file `rel` is missing (report.sections lists such sections last)."""
    return [Text(f"Not run ({rel} is not in this run folder).")]
