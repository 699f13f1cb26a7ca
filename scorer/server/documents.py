"""The operations whose results the type-driven codec cannot carry as they are, carried over
the wire in another form:

- a report :class:`~scorer.reports.document.Document` (its figures are drawing functions):
  sent with each figure drawn on the server as a PNG; the client's copy draws that picture,
  so it writes HTML, PDF, JSON and XLSX as a local report does (figures as pictures);
- an operation that writes a file at ``out`` (an image's PNG, the sponsor's package): run
  into a temporary file on the server whose bytes come back with the result; the client
  writes them at its own ``out``, owner-only, whole or not at all.

What stays on the server's host (``database.backup``) is not offered at all.
"""

from __future__ import annotations

import base64
import io
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Operations returning a Document.
DOCUMENT_OPERATIONS = frozenset(
    {"exchange.agreement_report", "oversight.audit_document", "oversight.session_document"}
)
#: Operations writing a file at their ``out`` argument.
FILE_OPERATIONS = frozenset({"images.export_image_png", "exchange.transfer_package"})
#: The largest file sent back whole in one answer.
MAX_FILE_RESULT = 256 * 1024 * 1024


def _plain(value: Any) -> Any:
    """JSON-safe: NaN and infinities as null, tuples as lists, numpy scalars as numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # a numpy scalar
        return _plain(value.item())
    return value


def encode_document(doc: Any) -> dict[str, Any]:
    from scorer.reports.document import Figure, Paragraph, Table, render_figure

    sections = []
    for section in doc.sections:
        blocks: list[dict[str, Any]] = []
        for b in section.blocks:
            if isinstance(b, Table):
                blocks.append(
                    {"kind": "table", "name": b.name, "caption": b.caption,
                     "columns": list(b.columns), "rows": _plain(b.rows)}
                )  # fmt: skip
            elif isinstance(b, Figure):
                png = base64.b64encode(render_figure(b, dpi=150)).decode("ascii")
                blocks.append(
                    {"kind": "figure", "name": b.name, "caption": b.caption, "png": png,
                     "data": _plain(b.data)}
                )  # fmt: skip
            elif isinstance(b, Paragraph):
                blocks.append({"kind": "paragraph", "text": b.text})
        sections.append({"title": section.title, "blocks": blocks})
    return {
        "title": doc.title,
        "facts": [[k, _plain(v)] for k, v in doc.facts],
        "sections": sections,
        "data": _plain(doc.data),
    }


def _picture(png: bytes) -> Callable[[Any], None]:
    """A Figure's draw function that shows a PNG drawn elsewhere."""

    def draw(figure: Any) -> None:
        from matplotlib.image import imread

        image = imread(io.BytesIO(png), format="png")
        ax = figure.add_axes((0, 0, 1, 1))
        ax.imshow(image)
        ax.set_axis_off()

    return draw


def decode_document(value: Any) -> Any:
    from scorer.reports.document import Document, Figure, Paragraph, Section, Table

    if not isinstance(value, dict) or not {"title", "facts", "sections"} <= set(value):
        raise ValueError("not a report document")
    sections = []
    for s in value["sections"]:
        blocks: list[Any] = []
        for b in s["blocks"]:
            kind = b.get("kind")
            if kind == "table":
                blocks.append(Table(b["name"], b["caption"], list(b["columns"]), b["rows"]))
            elif kind == "figure":
                png = base64.b64decode(b["png"], validate=True)
                blocks.append(Figure(b["name"], b["caption"], _picture(png), b.get("data") or {}))
            elif kind == "paragraph":
                blocks.append(Paragraph(b["text"]))
            else:
                raise ValueError(f"a report block of unknown kind {kind!r}")
        sections.append(Section(s["title"], blocks))
    facts = [(str(k), v) for k, v in value["facts"]]
    return Document(value["title"], facts, sections, value.get("data") or {})


def run_to_bytes(run: Callable[[Path], Any], suffix: str) -> tuple[Any, bytes]:
    """Run an operation writing at a temporary path on the server; (its result, the bytes)."""
    with tempfile.TemporaryDirectory(prefix="scorer-out-") as folder:
        out = Path(folder) / f"out{suffix}"
        result = run(out)
        if out.stat().st_size > MAX_FILE_RESULT:
            raise ValueError(f"the file is larger than {MAX_FILE_RESULT >> 20} MiB")
        return result, out.read_bytes()


def zipped(files: dict[str, bytes]) -> bytes:
    """Files in one zip, stored as they are (films are compressed already)."""
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()
