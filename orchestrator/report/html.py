"""Small pure functions that build one self-contained HTML5 report document.

Every function returns a string; `page` wraps the parts in a full document.
The document has no external assets (figures are PNG data URIs, fonts are the
system's, the CSS is inline) and no JavaScript, so the file can be mailed,
archived or opened offline and shows the same thing everywhere. Everything a
caller passes in as text is escaped here; callers never escape.

Layout: readable on a phone (viewport meta, a narrow column, tables scroll
sideways inside their own box instead of widening the page, images shrink to
fit) and when printed (no clipping scroll boxes, smaller tables, figures and
headings kept with what follows them).
"""

from __future__ import annotations

import base64
import re
from html import escape

STYLE = """
*, *::before, *::after { box-sizing: border-box; }
html { font-size: 16px; -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body {
  max-width: 60rem; margin: 0 auto; padding: 1rem;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  line-height: 1.5; color: #1a1a1a; background: #fff;
}
h1 { font-size: 1.6rem; line-height: 1.25; margin: 0.5rem 0; }
h2 { font-size: 1.3rem; line-height: 1.3; margin: 2rem 0 0.75rem; border-bottom: 1px solid #ddd; }
.subtitle { color: #555; margin-top: 0; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; margin: 1rem 0; }
table { border-collapse: collapse; font-size: 0.9rem; }
caption { text-align: left; font-weight: 600; padding: 0.25rem 0; caption-side: top; }
th, td { padding: 0.3rem 0.6rem; border-bottom: 1px solid #e3e3e3; text-align: left; vertical-align: top; }
th { background: #f4f4f4; white-space: nowrap; }
th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.hl td { background: #fff6d5; font-weight: 600; }
figure { margin: 1rem 0; }
figure img { display: block; max-width: 100%; height: auto; }
figcaption { font-size: 0.9rem; color: #444; margin-top: 0.3rem; }
pre {
  overflow-x: auto; padding: 0.75rem; background: #f6f6f6; font-size: 0.85rem;
  font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace;
}
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; }
dt { font-weight: 600; }
dd { margin: 0; overflow-wrap: anywhere; }
@media (max-width: 30rem) {
  body { padding: 0.75rem; }
  dl { grid-template-columns: 1fr; }
  dd { margin-bottom: 0.4rem; }
}
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  /* a scroll box on paper clips the columns that do not fit: let them show */
  .scroll, pre { overflow: visible; }
  pre { white-space: pre-wrap; }
  table { font-size: 8pt; }
  th, td { padding: 0.1rem 0.3rem; }
  figure, tr, dl { break-inside: avoid; page-break-inside: avoid; }
  h1, h2, caption { break-after: avoid; page-break-after: avoid; }
  tr.hl td { background: none; }
}
"""

# A number as a report writes one: 0.8312, -3, 1e-05, 95%, 12.5 s are right-aligned; "CNN", "3/5" are not.
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*(%|s|ms|min|h)?$")


def page(title: str, sections: list[str], subtitle: str = "") -> str:
    """The full document: head with inline CSS, <h1> title, optional subtitle, then the sections in order."""
    sub = f'<p class="subtitle">{escape(subtitle)}</p>\n' if subtitle else ""
    body = "\n".join(sections)
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n<header>\n<h1>{escape(title)}</h1>\n{sub}</header>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def section(title: str, *parts: str, anchor: str | None = None) -> str:
    """A <section> with an <h2> heading; `anchor` becomes its id so a contents list can link to it."""
    ident = f' id="{escape(anchor)}"' if anchor else ""
    inner = "\n".join(parts)
    return f"<section{ident}>\n<h2>{escape(title)}</h2>\n{inner}\n</section>"


def _is_number(text: str) -> bool:
    """A number, or an interval of two ('[0.49, 0.58]'): aligned and never wrapped."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]") and text.count(",") == 1:
        return all(_NUMBER.match(part.strip()) for part in text[1:-1].split(","))
    return bool(_NUMBER.match(text))


def _cell(text: str, numeric: bool) -> str:
    cls = ' class="num"' if numeric and _is_number(text) else ""
    return f"<td{cls}>{escape(text)}</td>"


def _header_cell(j: int, text: str, rows: list[list[str]], numeric: bool) -> str:
    # A column of numbers gets its heading right-aligned too, over the digits it labels.
    column = [str(row[j]) for row in rows if j < len(row) and str(row[j]).strip()]
    cls = ' class="num"' if numeric and column and all(map(_is_number, column)) else ""
    return f'<th scope="col"{cls}>{escape(text)}</th>'


def table(
    header: list[str],
    rows: list[list[str]],
    caption: str = "",
    numeric: bool = True,
    highlight_rows: set[int] = frozenset(),
) -> str:
    """A table in its own sideways-scrolling box. With `numeric`, cells that read as numbers are
    right-aligned with tabular digits; rows whose index is in `highlight_rows` are emphasised."""
    cap = f"<caption>{escape(caption)}</caption>\n" if caption else ""
    head = "".join(_header_cell(j, h, rows, numeric) for j, h in enumerate(header))
    body = []
    for i, row in enumerate(rows):
        cls = ' class="hl"' if i in highlight_rows else ""
        body.append(f"<tr{cls}>" + "".join(_cell(str(c), numeric) for c in row) + "</tr>")
    rows_html = "\n".join(body)
    return (
        f'<div class="scroll">\n<table>\n{cap}<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{rows_html}\n</tbody>\n</table>\n</div>"
    )


def figure(png: bytes, caption: str, alt: str) -> str:
    """A PNG embedded as a base64 data URI (no file beside the report), with a caption."""
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure>\n<img src="data:image/png;base64,{data}" alt="{escape(alt)}">\n'
        f"<figcaption>{escape(caption)}</figcaption>\n</figure>"
    )


def paragraph(text: str) -> str:
    return f"<p>{escape(text)}</p>"


def preformatted(text: str) -> str:
    """Text shown as is (a config, a command line, a log tail): monospace, scrolling sideways on a phone."""
    return f"<pre>{escape(text)}</pre>"


def definition_list(items: list[tuple[str, str]]) -> str:
    """Key/value pairs (job settings, environment): two columns, one column on a narrow screen."""
    inner = "\n".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in items)
    return f"<dl>\n{inner}\n</dl>"
