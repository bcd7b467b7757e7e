"""A report as a list of blocks, rendered to Markdown and to a self-contained HTML page from the same blocks.

Only what the report emits: headings, paragraphs, tables, images and code blocks. Inline text may hold
`code` spans and **bold** runs; everything else is literal (escaped for HTML, `|` escaped in Markdown
table cells). No Markdown library: both renderings are a few lines each, and they cannot drift apart
because neither is derived from the other.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from samplers.validation import check_int


@dataclass(frozen=True)
class Heading:
    level: int  # 1 (the page title) to 3
    text: str

    def __post_init__(self) -> None:
        check_int("level", self.level, 1, 3)


@dataclass(frozen=True)
class Paragraph:
    text: str  # inline text: `code` and **bold** are formatted


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]  # column titles (inline text)
    rows: tuple[tuple[str, ...], ...]  # cells as text, each row as long as the header

    def __post_init__(self) -> None:
        for k, row in enumerate(self.rows):
            if len(row) != len(self.header):
                raise ValueError(f"rows[{k}] must have {len(self.header)} cells; got {len(row)}")


@dataclass(frozen=True)
class Image:
    path: str  # relative to the page, e.g. "sweep_beta.png"
    alt: str  # a one-line description


@dataclass(frozen=True)
class Code:
    text: str  # shown verbatim (commands)


Block = Heading | Paragraph | Table | Image | Code


def number(value: float | None, spec: str = ".3g") -> str:
    """`value` formatted, or "n/a" where it is missing or not finite."""
    return "n/a" if value is None or not math.isfinite(value) else format(value, spec)


def to_markdown(blocks: Sequence[Block]) -> str:
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Paragraph):
            parts.append(block.text)
        elif isinstance(block, Table):
            lines = [block.header, ("---",) * len(block.header), *block.rows]
            parts.append("\n".join("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in lines))
        elif isinstance(block, Image):
            parts.append(f"![{block.alt}]({block.path})")
        else:
            parts.append(f"```\n{block.text}\n```")
    return "\n\n".join(parts) + "\n"


def inline_html(text: str) -> str:
    """Escaped text with `code` -> <code> and **bold** -> <strong>."""
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


STYLE = (
    "body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em;line-height:1.45}"
    "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;padding:.25em .6em;"
    "text-align:left}th{background:#eee}img{max-width:100%}pre{background:#f4f4f4;padding:.8em;"
    "overflow-x:auto}code{background:#f4f4f4}"
)


def to_html(blocks: Sequence[Block], title: str) -> str:
    body = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{inline_html(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{inline_html(block.text)}</p>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{inline_html(c)}</th>" for c in block.header)
            rows = "".join(
                "<tr>" + "".join(f"<td>{inline_html(c)}</td>" for c in row) + "</tr>" for row in block.rows
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(block, Image):
            src, alt = html.escape(block.path), html.escape(block.alt)
            body.append(f'<p><img src="{src}" alt="{alt}"></p>')
        else:
            body.append(f"<pre><code>{html.escape(block.text, quote=False)}</code></pre>")
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}'
        f"</title>\n<style>{STYLE}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )
