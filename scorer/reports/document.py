"""A report as data — title, facts, sections of paragraphs, tables and figures — and its four
renderings: JSON, HTML (figures inline), PDF (matplotlib, one figure or table block a page
section) and XLSX (one sheet per table, readable column names).

Reports build a :class:`Document`; :func:`write` picks the rendering from the file's suffix and
writes to a temporary file renamed into place, so a failed write leaves nothing half-written.
Every table and figure carries its n in its caption.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

# matplotlib's Figure API only, never pyplot: pyplot keeps global state and is not
# thread-safe, and reports are written on worker threads (the monitor's exports).
from matplotlib.figure import Figure as MplFigure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from scorer.core.cells import csv_row, set_xlsx_cell
from scorer.core.private_files import replacing

if TYPE_CHECKING:
    from matplotlib.backends.backend_pdf import PdfPages

FORMATS = ("html", "pdf", "json", "xlsx")


@dataclass
class Table:
    """A table: a caption (stating n), column names and rows of plain values."""

    name: str  # short, also the XLSX sheet name
    caption: str
    columns: list[str]
    rows: list[list[Any]]


@dataclass
class Figure:
    """A figure drawn by ``draw(figure)`` on a matplotlib figure; the caption states n."""

    name: str
    caption: str
    draw: Callable[[MplFigure], None]
    data: dict[str, Any] = field(default_factory=dict)  # what it plots (for JSON)


@dataclass
class Paragraph:
    text: str


Block = Table | Figure | Paragraph


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Document:
    """A report: title, facts (key/value lines at the top; a count as a number, so that the
    XLSX and JSON hold a number), sections, and raw data for JSON."""

    title: str
    facts: Sequence[tuple[str, str | int | float]]
    sections: list[Section]
    data: dict[str, Any] = field(default_factory=dict)

    def tables(self) -> list[Table]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Table)]

    def figures(self) -> list[Figure]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Figure)]


def fmt(value: Any, digits: int = 3) -> str:
    """A value as a report prints it: numbers rounded, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"
    return str(value)


def render_figure(fig: Figure, width: float = 7.0, height: float = 4.2, dpi: int = 110) -> bytes:
    """The figure as PNG bytes."""
    mfig = MplFigure(figsize=(width, height), dpi=dpi)
    fig.draw(mfig)
    buf = io.BytesIO()
    mfig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


# ---------------------------------------------------------------------------------- writers


def to_json(doc: Document) -> str:
    body = {
        "title": doc.title,
        "facts": dict(doc.facts),
        **doc.data,
        "tables": {
            t.name: {"caption": t.caption, "columns": t.columns, "rows": t.rows}
            for t in doc.tables()
        },
        "figures": {f.name: {"caption": f.caption, **f.data} for f in doc.figures()},
    }
    return json.dumps(body, indent=2, ensure_ascii=False, default=_json_default) + "\n"


def _json_default(o: Any) -> Any:
    if isinstance(o, float) and math.isnan(o):
        return None
    raise TypeError(f"cannot write {type(o).__name__} to JSON")


CSS = """
body { font-family: sans-serif; margin: 2em auto; max-width: 64em; color: #1d2127; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ccd; }
table { border-collapse: collapse; margin: 0.6em 0 1.4em; font-size: 0.9em; }
th, td { border: 1px solid #c8ccd4; padding: 0.25em 0.6em; text-align: right; }
th { background: #eef0f4; } td:first-child, th:first-child { text-align: left; }
caption { caption-side: top; text-align: left; font-weight: bold; padding: 0.3em 0; }
figure { margin: 1em 0 2em; } figcaption { font-weight: bold; margin-bottom: 0.4em; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dl.facts dt { font-weight: bold; }
"""


def to_html(doc: Document) -> str:
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(doc.title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{e(doc.title)}</h1>",
        '<dl class="facts">',
    ]
    for k, v in doc.facts:
        out.append(f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>")
    out.append("</dl>")
    for section in doc.sections:
        out.append(f"<h2>{e(section.title)}</h2>")
        for b in section.blocks:
            if isinstance(b, Paragraph):
                out.append(f"<p>{e(b.text)}</p>")
            elif isinstance(b, Table):
                out.append(f'<table id="{e(b.name)}"><caption>{e(b.caption)}</caption><tr>')
                out += [f"<th>{e(c)}</th>" for c in b.columns]
                out.append("</tr>")
                for row in b.rows:
                    out.append("<tr>" + "".join(f"<td>{e(fmt(v))}</td>" for v in row) + "</tr>")
                out.append("</table>")
            else:
                png = base64.b64encode(render_figure(b)).decode("ascii")
                out.append(
                    f'<figure id="{e(b.name)}"><figcaption>{e(b.caption)}</figcaption>'
                    f'<img alt="{e(b.caption)}" src="data:image/png;base64,{png}"></figure>'
                )
    out.append("</body></html>\n")
    return "\n".join(out)


A4 = (8.27, 11.69)


def to_pdf(doc: Document, target: Path) -> None:
    """A4 pages: the title and facts, then each section's blocks; long tables continue on
    further pages with their heading repeated."""
    # Imported here: the PDF backend (and the font subsetter it brings) is a tenth of the
    # import time of an HTML report, which never uses it.
    from matplotlib.backends.backend_pdf import PdfPages

    with PdfPages(target, metadata={"Title": doc.title, "Creator": "scorer"}) as pdf:
        page = _Page(pdf)
        page.text(doc.title, size=16, bold=True, gap=0.04)
        for k, v in doc.facts:
            page.wrapped(f"{k}: {v}")
        for section in doc.sections:
            page.space(0.02)
            page.text(section.title, size=12.5, bold=True, gap=0.03)
            for b in section.blocks:
                if isinstance(b, Paragraph):
                    page.wrapped(b.text)
                elif isinstance(b, Table):
                    page.table(b)
                else:
                    page.figure(b)
        page.finish()


class _Page:
    """Lays blocks down an A4 page from the top, starting new pages as needed."""

    def __init__(self, pdf: PdfPages) -> None:
        self.pdf = pdf
        self.fig: MplFigure | None = None
        self.y = 0.0
        self.pages = 0

    def _new(self) -> MplFigure:
        if self.fig is not None:
            self.pdf.savefig(self.fig)  # type: ignore[no-untyped-call]
        self.fig = MplFigure(figsize=A4)
        self.pages += 1
        self.fig.text(0.5, 0.02, f"page {self.pages}", ha="center", size=7, color="#666")
        self.y = 0.95
        return self.fig

    def _room(self, need: float) -> MplFigure:
        if self.fig is None or self.y - need < 0.05:
            return self._new()
        return self.fig

    def space(self, h: float) -> None:
        self.y -= h

    def text(self, s: str, size: float = 9, bold: bool = False, gap: float = 0.02) -> None:
        fig = self._room(gap)
        fig.text(0.07, self.y, s, size=size, weight="bold" if bold else "normal", va="top")
        self.y -= gap

    def wrapped(self, s: str, width: int = 105) -> None:
        import textwrap

        for line in textwrap.wrap(s, width) or [""]:
            self.text(line, size=8.5, gap=0.016)
        self.y -= 0.006

    def table(self, t: Table) -> None:
        """The table drawn as text in ruled cells (numbers right-aligned, text left): one
        text per cell and one line path per page, not matplotlib.table, whose per-cell layout
        made a 2,000-row audit trail take a minute."""
        row_h = 0.0165
        n = len(t.columns)
        rows = [[fmt(v) for v in r] for r in t.rows] or [["(none)"] + [""] * (n - 1)]
        lengths = [
            max([len(str(t.columns[c]))] + [len(row[c]) for row in rows if c < len(row)])
            for c in range(n)
        ]
        widths = [max(3, min(k, 40)) for k in lengths]
        spans = [0.86 * w / sum(widths) for w in widths]
        lefts = [0.07 + sum(spans[:c]) for c in range(n)]
        size = 6.5 if n > 7 else 7.5
        pad = 0.005
        start = 0
        while start < len(rows):
            fig = self._room(row_h * 4)
            fits = max(1, int((self.y - 0.06) / row_h) - 2)
            chunk = rows[start : start + fits]
            caption = t.caption if start == 0 else f"{t.caption} (continued)"
            fig.text(0.07, self.y, caption, size=8.5, weight="bold", va="top")
            self.y -= 0.02
            top, height = self.y, row_h * (len(chunk) + 1)
            fig.add_artist(
                Rectangle((0.07, top - row_h), 0.86, row_h, facecolor="#eef0f4", edgecolor="none")
            )
            xs: list[float] = []
            ys: list[float] = []
            for r in range(len(chunk) + 2):  # the rules, one path with gaps (NaN)
                xs += [0.07, 0.93, math.nan]
                ys += [top - r * row_h] * 2 + [math.nan]
            for x in [*lefts, 0.93]:
                xs += [x, x, math.nan]
                ys += [top, top - height, math.nan]
            fig.add_artist(Line2D(xs, ys, linewidth=0.3, color="#000000"))
            for r, row in enumerate([[str(c) for c in t.columns], *chunk]):
                y = top - row_h * (r + 0.5)
                for c, text in enumerate(row[:n]):
                    if not text:
                        continue
                    right = _numeric(text)
                    x = lefts[c] + spans[c] - pad if right else lefts[c] + pad
                    ha = "right" if right else "left"
                    fig.text(x, y, text, size=size, ha=ha, va="center")
            self.y -= height + 0.02
            start += len(chunk)
            if start < len(rows):
                self._new()

    def figure(self, f: Figure) -> None:
        h = 0.36
        fig = self._room(h + 0.03)
        fig.text(0.07, self.y, f.caption, size=8.5, weight="bold", va="top")
        self.y -= 0.02
        png = render_figure(f, 7.0, 3.6, dpi=130)
        from PIL import Image

        with Image.open(io.BytesIO(png)) as im:
            pixels = im.convert("RGB")
            ax = fig.add_axes((0.07, self.y - h, 0.86, h))
            ax.imshow(pixels)
            ax.axis("off")
        self.y -= h + 0.02

    def finish(self) -> None:
        if self.fig is None:
            self._new()
        assert self.fig is not None
        self.pdf.savefig(self.fig)  # type: ignore[no-untyped-call]


def _numeric(text: str) -> bool:
    try:
        float(text.replace("–", "nan"))
    except ValueError:
        return False
    return True


def to_xlsx(doc: Document, target: Path) -> None:
    """One sheet per table (named after it, headings in bold), and an "About" sheet with the
    title and facts (numbers as numbers, texts as texts)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    about = wb.active
    about.title = "About"
    _append(about, [doc.title])
    about["A1"].font = Font(bold=True, size=13)
    for k, v in doc.facts:
        _append(about, [k, v])
    used: set[str] = {"About"}
    for t in doc.tables():
        name = _sheet_name(t.name, used)
        ws = wb.create_sheet(name)
        _append(ws, [t.caption])
        ws["A1"].font = Font(bold=True)
        _append(ws, t.columns)
        for cell in ws[2]:
            cell.font = Font(bold=True)
        for row in t.rows:
            _append(ws, [_cell(v) for v in row])
        for i, col in enumerate(t.columns, start=1):
            width = max([len(str(col))] + [len(fmt(r[i - 1])) for r in t.rows if i - 1 < len(r)])
            ws.column_dimensions[ws.cell(row=2, column=i).column_letter].width = min(60, width + 2)
    wb.save(target)


def table_csv(table: Table) -> str:
    """A table as CSV text (header row, then its rows; LF line ends): each text a spreadsheet
    shows as text (``'`` before one starting with = + - @, tab or CR; scorer.core.cells),
    numbers as numbers."""
    import csv

    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    # With LF line ends the csv module leaves a field holding a lone CR unquoted, which a
    # reader takes for a line end: such a row is written with every field quoted.
    quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for row in (table.columns, *table.rows):
        cells = csv_row(row)
        (quoted if any(isinstance(c, str) and "\r" in c for c in cells) else w).writerow(cells)
    return out.getvalue()


def _append(ws: Any, values: list[Any]) -> None:
    """A row below the sheet's last, each text a string cell (never a formula), escaped where
    XLSX cannot hold a character (scorer.core.cells); numbers stay numbers."""
    ws.append([None] * len(values))  # the row openpyxl's append would take
    row = ws.max_row
    for col, value in enumerate(values, start=1):
        set_xlsx_cell(ws.cell(row=row, column=col), value)


def _cell(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v)
    return v


def _sheet_name(name: str, used: set[str]) -> str:
    base = "".join(c for c in name if c not in "[]:*?/\\")[:31] or "Sheet"
    out, n = base, 2
    while out in used:
        out = f"{base[:28]}-{n}"
        n += 1
    used.add(out)
    return out


def write(doc: Document, out: str | os.PathLike[str]) -> Path:
    """Write ``doc`` to ``out`` in the format its suffix names (.html, .pdf, .json, .xlsx)."""
    target = Path(out)
    kind = target.suffix.lower().lstrip(".")
    if kind not in FORMATS:
        raise ValueError(f"{target.name}: the report is written as .{', .'.join(FORMATS)}")
    # Owner-only (0600) from its first byte, whole or not at all.
    with replacing(target) as temporary:
        if kind == "json":
            temporary.write_text(to_json(doc), encoding="utf-8")
        elif kind == "html":
            temporary.write_text(to_html(doc), encoding="utf-8")
        elif kind == "pdf":
            to_pdf(doc, temporary)
        else:
            to_xlsx(doc, temporary)
    return target
