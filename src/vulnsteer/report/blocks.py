"""The blocks a report section is made of (text, table, figure, generation): built once by `report.sections`
and `report.compare`, rendered by `report.document` to markdown and HTML alike."""

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
