"""Rendering of the pipeline report: a small content model (paragraphs, bullet lists, tables,
plots) and its two renderings, self-contained HTML and markdown with PNGs beside it.

Kept apart from what the report says (`report.py`), so both formats always carry the same content.
"""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass, field
from pathlib import Path


# --------------------------------------------------------------------------- content model


@dataclass
class Table:
    header: list[str]
    rows: list[list]


@dataclass
class Plot:
    name: str  # file name stem for the markdown twin
    png: bytes
    caption: str


@dataclass
class Section:
    title: str
    blocks: list = field(default_factory=list)  # str (paragraph), list[str] (bullets), Table, Plot


def fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    return str(value)


CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f2f2f2}
td:first-child,th:first-child{text-align:left}img{max-width:100%}figcaption{font-size:12px;color:#555}
h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}li{margin:.2em 0}"""


def render_html(sections: list[Section]) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{e(sections[0].title)}</title><style>{CSS}</style></head><body>"]
    for i, section in enumerate(sections):
        out.append(f"<h{1 if i == 0 else 2}>{e(section.title)}</h{1 if i == 0 else 2}>")
        for block in section.blocks:
            if isinstance(block, str):
                out.append(f"<p>{e(block)}</p>")
            elif isinstance(block, list):
                out.append("<ul>" + "".join(f"<li>{e(x)}</li>" for x in block) + "</ul>")
            elif isinstance(block, Table):
                head = "".join(f"<th>{e(h)}</th>" for h in block.header)
                body = "".join("<tr>" + "".join(f"<td>{e(fmt(c))}</td>" for c in row) + "</tr>" for row in block.rows)
                out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            elif isinstance(block, Plot):
                data = base64.b64encode(block.png).decode("ascii")
                out.append(f'<figure><img alt="{e(block.caption)}" src="data:image/png;base64,{data}">'
                           f"<figcaption>{e(block.caption)}</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _md(text) -> str:
    """Markdown viewers render inline HTML: names and paths are shown, never interpreted."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def _md_cell(value) -> str:
    return _md(fmt(value)).replace("\\", "\\\\").replace("|", "\\|")


def render_markdown(sections: list[Section]) -> tuple[str, dict[str, bytes]]:
    """Markdown text and the PNG files (name -> bytes) it links to, relative to itself."""
    out, files = [], {}
    for i, section in enumerate(sections):
        out += [f"{'#' if i == 0 else '##'} {_md(section.title)}", ""]
        for block in section.blocks:
            if isinstance(block, str):
                out += [_md(block), ""]
            elif isinstance(block, list):
                out += [f"- {_md(x)}" for x in block] + [""]
            elif isinstance(block, Table):
                out.append("| " + " | ".join(_md_cell(h) for h in block.header) + " |")
                out.append("|" + "---|" * len(block.header))
                out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
                out.append("")
            elif isinstance(block, Plot):
                files[f"{block.name}.png"] = block.png
                out += [f"![{_md(block.caption).replace(']', ')')}]({block.name}.png)", ""]
    return "\n".join(out), files


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
