"""The scoring grid's state as a plain object: one case's entries, their changes and undo
steps, subtotals, and the cursor. It draws nothing: the grid widget (scorer.gui.scoring_grid)
binds to it, and a test drives it without a window; its saves go to the score writer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from scorer.core.methods import REASONS, Area, AreaDef, Method, get_method
from scorer.core.reads import AreaScore, Read
from scorer.core.totals import MissingDataRules, status_totals
from scorer.gui.score_writer import WriteEntry

if TYPE_CHECKING:
    from scorer.workspace import OpenedCase

SaveState = Literal["saved", "pending", "failed"]
CellKey = tuple[str, Area]

REASON_LABELS: Mapping[str, str] = {
    "not_visible": "Not visible (off the film, overlapping)",
    "image_quality": "Image quality",
    "operated": "Operated (arthroplasty, arthrodesis)",
    "other": "Other (describe)",
}
REASON_SHORT: Mapping[str, str] = {
    "not_visible": "NV",
    "image_quality": "IQ",
    "operated": "OP",
    "other": "OT",
}
FEATURE_SHORT: Mapping[str, str] = {"ERO": "Erosion", "JSN": "JSN", "LAR": "Larsen"}
KEYS_HELP = (
    "0–9  grade (foot erosion: proximal then distal digit)\n"
    "N  not assessable (then 1–4)    Shift+N  whole region not assessable\n"
    "Z  rest of this region = 0    Backspace  clear    Esc  drop a half-typed entry\n"
    "Ctrl+Z  undo    Ctrl+Y  redo    Ctrl+R  retry unsaved\n"
    "↑ ↓ Enter  move    Tab / Shift+Tab  next / previous visit    Home / End\n"
    "G  grade atlas: every grade of this area, drawn and cited\n"
    "V  the visit being scored alone, filling the films' view (V again: every visit)"
)


# ====================================================================== the model (no Qt)


@dataclass(frozen=True)
class Entry:
    """What a cell holds: a score (or not-assessable reason) and the text of reason "other"."""

    score: AreaScore
    reason_text: str = ""

    def text(self) -> str:
        """The cell's text: ``3``, ``2+1=3`` for an area graded in sides, ``NA:IQ``."""
        s = self.score
        if s.score is None:
            return f"NA:{REASON_SHORT.get(s.reason or '', '?')}"
        if s.sides:
            return "+".join(str(x) for x in s.sides) + f"={s.score}"
        return str(s.score)


@dataclass
class Cell:
    """One area of one visit: its entry (None: unscored) and whether it is saved."""

    entry: Entry | None = None
    save: SaveState = "saved"
    seq: int = 0  # the latest submission's number; older answers do not change the state
    error: str = ""
    change_reason: str = ""


@dataclass(frozen=True)
class Change:
    """One area of one visit going from ``old`` to ``new`` (None: unscored)."""

    letter: str
    area: Area
    old: Entry | None
    new: Entry | None


@dataclass(frozen=True)
class Step:
    """One undoable action: a digit, a not-assessable mark, "rest of region = 0"..."""

    label: str
    changes: tuple[Change, ...]


@dataclass(frozen=True)
class GridEvent:
    """What changed in a :class:`GridModel`: ``cells`` (values, with the keys), ``saved`` (the
    save state of the keyed cells), ``current`` (the cursor or the half-typed entry), ``save``
    (the pending / failed counts), ``note``, ``status``."""

    kind: str
    cells: tuple[CellKey, ...] = ()


@dataclass(frozen=True)
class Subtotal:
    """A live total: the status total once every area in it is entered, else the sum so far.

    ``value`` None with ``left == 0`` is a missing total (too many areas not assessable).
    """

    value: float | None
    left: int
    adjusted: bool = False

    def text(self) -> str:
        if self.left:
            # The sum so far: grades are never negative, so the total will be at least this.
            return f"≥{_number(self.value or 0)}"
        if self.value is None:
            return "–"
        return _number(self.value) + ("*" if self.adjusted else "")

    def tooltip(self) -> str:
        if self.left:
            return f"{_number(self.value or 0)} so far; {self.left} area(s) not entered yet"
        if self.value is None:
            return "missing: too many areas not assessable"
        if self.adjusted:
            return "scaled up for the areas not assessable"
        return "complete"


def _number(v: float) -> str:
    return f"{v:.0f}" if abs(v - round(v)) < 1e-9 else f"{v:.1f}"


@dataclass(frozen=True)
class CaseScores:
    """A case as the grid opens it: the visit letters with their read codes and stored reads
    (``scorer.workspace.ReadView``: scores, reason texts, note, status, version)."""

    case_code: str
    method: str
    reads: Mapping[str, str]
    views: Mapping[str, Any] = field(default_factory=dict)


class CaseFacade(Protocol):
    def get_read(self, s: Any, code: str) -> Any: ...


def load_case(facade: CaseFacade, session: Any, opened: OpenedCase) -> CaseScores:
    """The stored reads of a case opened with ``Workspace.open_case`` (run it off the UI
    thread): what the grid needs to resume where the reader stopped."""
    reads = {str(k): str(v) for k, v in opened.reads.items()}
    views = {letter: facade.get_read(session, code) for letter, code in reads.items()}
    return CaseScores(opened.code, opened.method, reads, views)


Submit = Callable[[WriteEntry], None]
Listener = Callable[[GridEvent], None]


class GridModel:
    """The scores of one case on screen: cells, cursor, undo / redo and totals (no Qt).

    Rows are the method's areas in canonical order (grouped by region, then feature);
    columns are the visit letters. Every change goes to ``submit`` as a
    :class:`~scorer.gui.score_writer.WriteEntry` and its cells stay *pending* until the
    writer acknowledges them.
    """

    def __init__(
        self,
        method: Method,
        reads: Mapping[str, str],
        *,
        case_code: str = "",
        submit: Submit | None = None,
        rules: MissingDataRules | None = None,
    ) -> None:
        self.method = method
        self.areas: tuple[AreaDef, ...] = method.areas
        self.letters: tuple[str, ...] = tuple(reads)
        self.reads: dict[str, str] = dict(reads)
        self.case_code = case_code
        self.submit = submit
        self.rules = rules or MissingDataRules()
        self._letter_of = {code: letter for letter, code in self.reads.items()}
        self._row_of = {d.area: i for i, d in enumerate(self.areas)}
        self.cells: dict[CellKey, Cell] = {
            (letter, d.area): Cell() for letter in self.letters for d in self.areas
        }
        self.status: dict[str, str] = {letter: "in_progress" for letter in self.letters}
        self.versions: dict[str, int] = {letter: 0 for letter in self.letters}
        self.notes: dict[str, str] = {letter: "" for letter in self.letters}
        self.note_state: dict[str, SaveState] = {letter: "saved" for letter in self.letters}
        self.note_error: dict[str, str] = {letter: "" for letter in self.letters}
        self.row = 0
        self.col = 0
        self.partial: int | None = None  # first digit of an area graded in sides
        self.advance_across = False  # after a digit: next visit (True) or next area (False)
        self.undo_stack: list[Step] = []
        self.redo_stack: list[Step] = []
        self.writes = 0  # area writes submitted (each is one audited change when it commits)
        self._seq = 0
        self._note_seq: dict[str, int] = {}
        self._listeners: list[Listener] = []

    @classmethod
    def from_case(
        cls,
        case: CaseScores,
        *,
        submit: Submit | None = None,
        rules: MissingDataRules | None = None,
    ) -> GridModel:
        """A model filled from the stored reads, its cursor on the first unscored area."""
        model = cls(
            get_method(case.method),
            case.reads,
            case_code=case.case_code,
            submit=submit,
            rules=rules,
        )
        for letter, view in case.views.items():
            if letter not in model.status:
                continue
            model.status[letter] = str(getattr(view, "status", "in_progress"))
            model.versions[letter] = int(getattr(view, "version", 0))
            model.notes[letter] = str(getattr(view, "note", "") or "")
            texts: Mapping[Area, str] = getattr(view, "reason_text", {}) or {}
            for area, score in (getattr(view, "scores", {}) or {}).items():
                key = (letter, Area(*area))
                if key in model.cells:
                    model.cells[key].entry = Entry(score, texts.get(area, ""))
        first = model.first_unscored()
        if first is not None:
            model.row, model.col = first
        return model

    # ------------------------------------------------------------------ listening

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _emit(self, kind: str, cells: Iterable[CellKey] = ()) -> None:
        event = GridEvent(kind, tuple(cells))
        for listener in list(self._listeners):
            listener(event)

    # ------------------------------------------------------------------ reading state

    @property
    def current_def(self) -> AreaDef:
        return self.areas[self.row]

    @property
    def current_area(self) -> Area:
        return self.areas[self.row].area

    @property
    def current_letter(self) -> str:
        return self.letters[self.col] if self.letters else ""

    def row_of(self, area: Area) -> int:
        return self._row_of[area]

    def cell(self, letter: str, area: Area) -> Cell:
        return self.cells[(letter, area)]

    def entry(self, letter: str, area: Area) -> Entry | None:
        return self.cells[(letter, area)].entry

    def area_mark(self, area: Area, letter: str | None = None) -> str:
        """``empty``, ``scored``, ``na`` (not assessable) or ``failed`` for the joint map."""
        c = self.cells[(letter or self.current_letter, area)]
        if c.save == "failed":
            return "failed"
        if c.entry is None:
            return "empty"
        return "scored" if c.entry.score.assessable else "na"

    def editable(self, letter: str) -> bool:
        return self.status.get(letter) not in ("signed", "void")

    def unscored(self, letter: str) -> list[Area]:
        return [d.area for d in self.areas if self.cells[(letter, d.area)].entry is None]

    def first_unscored(self) -> tuple[int, int] | None:
        """(row, column) of the first unscored area, visit by visit."""
        for col, letter in enumerate(self.letters):
            if not self.editable(letter):
                continue
            for row, d in enumerate(self.areas):
                if self.cells[(letter, d.area)].entry is None:
                    return row, col
        return None

    def count(self, state: SaveState) -> int:
        return sum(1 for c in self.cells.values() if c.save == state) + sum(
            1 for s in self.note_state.values() if s == state
        )

    @property
    def pending(self) -> int:
        return self.count("pending")

    @property
    def failed(self) -> int:
        return self.count("failed")

    def region_rows(self, region: str) -> list[int]:
        return [i for i, d in enumerate(self.areas) if d.region == region]

    def groups(self) -> list[tuple[str, str]]:
        return list(self.method.groups())

    # ------------------------------------------------------------------ totals

    def totals(self, letter: str) -> dict[tuple[str, ...], Subtotal]:
        """Live totals of a visit: per (region, feature) group ``("group", r, f)``, per feature
        ``("feature", f)``, per region ``("region", r)`` and ``("total",)``; plus
        ``("left",)`` whose ``left`` is the number of areas not entered yet."""
        scores = {
            d.area: c.entry.score
            for d in self.areas
            if (c := self.cells[(letter, d.area)]).entry is not None
        }
        read = Read("", "", "", "", self.method.id, status="in_progress", scores=scores)
        t = status_totals(read, self.method, self.rules)
        left: dict[tuple[str, str], int] = {}
        raw: dict[tuple[str, str], float] = {}
        for d in self.areas:
            g = (d.region, d.feature)
            s = scores.get(d.area)
            left[g] = left.get(g, 0) + (s is None)
            raw[g] = raw.get(g, 0.0) + (d.weight * s.score if s and s.score is not None else 0.0)
        out: dict[tuple[str, ...], Subtotal] = {}

        def combine(groups: list[tuple[str, str]], final: float | None) -> Subtotal:
            n = sum(left[g] for g in groups)
            if n:
                return Subtotal(sum(raw[g] for g in groups), n)
            return Subtotal(final, 0, any(t.used[g] < t.size[g] for g in groups))

        all_groups = list(left)
        for g in all_groups:
            out[("group", *g)] = combine([g], t.groups[g])
        for f in self.method.features:
            gs = [g for g in all_groups if g[1] == f]
            if gs:
                out[("feature", f)] = combine(gs, t.by_feature.get(f))
        for r in self.method.regions:
            out[("region", r)] = combine([g for g in all_groups if g[0] == r], t.by_region[r])
        out[("total",)] = combine(all_groups, t.total)
        out[("left",)] = Subtotal(None, sum(left.values()))
        return out

    # ------------------------------------------------------------------ moving

    def set_current(self, row: int, col: int) -> None:
        """Put the cursor on (row, column), clamped; a half-typed entry is dropped."""
        row = max(0, min(len(self.areas) - 1, row))
        col = max(0, min(len(self.letters) - 1, col)) if self.letters else 0
        if (row, col) == (self.row, self.col) and self.partial is None:
            return
        self.row, self.col = row, col
        self.partial = None
        self._emit("current")

    def go_to_area(self, area: Area, letter: str | None = None) -> None:
        col = self.letters.index(letter) if letter else self.col
        self.set_current(self._row_of[area], col)

    def move(self, rows: int = 0, cols: int = 0) -> None:
        self.set_current(self.row + rows, self.col + cols)

    def next_visit(self, backwards: bool = False) -> None:
        """Tab: the same area in the next visit; after the last visit, the next area."""
        if not self.letters:
            return
        n = len(self.letters)
        if backwards:
            if self.col > 0:
                self.set_current(self.row, self.col - 1)
            elif self.row > 0:
                self.set_current(self.row - 1, n - 1)
        elif self.col < n - 1:
            self.set_current(self.row, self.col + 1)
        elif self.row < len(self.areas) - 1:
            self.set_current(self.row + 1, 0)

    def cancel_partial(self) -> bool:
        if self.partial is None:
            return False
        self.partial = None
        self._emit("current")
        return True

    def _advance(self) -> None:
        """After an entry: the next area of this visit (or the next visit, when advancing
        across); past the end, the first area still unscored."""
        if self.advance_across:
            if self.col < len(self.letters) - 1:
                self.set_current(self.row, self.col + 1)
                return
            if self.row < len(self.areas) - 1:
                self.set_current(self.row + 1, 0)
                return
        elif self.row < len(self.areas) - 1:
            self.set_current(self.row + 1, self.col)
            return
        first = self.first_unscored()
        if first is not None:
            self.set_current(*first)

    def _after_region(self, region: str) -> None:
        """After a whole-region action: the next region's first area in this visit."""
        rows = self.region_rows(region)
        nxt = rows[-1] + 1 if rows else self.row + 1
        if nxt < len(self.areas):
            self.set_current(nxt, self.col)
            return
        first = self.first_unscored()
        if first is not None:
            self.set_current(*first)

    # ------------------------------------------------------------------ entering

    def _refuse_locked(self) -> str:
        letter = self.current_letter
        if not letter:
            return "no case is open"
        if not self.editable(letter):
            return f"visit {letter} is {self.status[letter]}: it cannot change here"
        return ""

    def type_digit(self, digit: int) -> str:
        """A digit typed on the current cell: sets the grade (or one side of it) and moves on.
        Returns why it was refused ("" when taken); a refused digit changes nothing."""
        refused = self._refuse_locked()
        if refused:
            return refused
        d = self.current_def
        if d.sides:
            f = self.method.features[d.feature]
            side = d.sides[0 if self.partial is None else 1]
            if not f.min <= digit <= f.max:
                return f"{digit} is out of range for {d.area} {side} ({f.min}–{f.max})"
            if self.partial is None and len(d.sides) > 1:
                self.partial = digit
                self._emit("current")
                return ""
            sides = [digit] if self.partial is None else [self.partial, digit]
            self.partial = None
            value = AreaScore.from_sides(sides)
        else:
            if not d.min <= digit <= d.max:
                return f"{digit} is out of range for {d.area} ({d.min}–{d.max})"
            value = AreaScore.scored(digit)
        label = f"{d.area} = {Entry(value).text()}"
        self._do(label, [(self.current_letter, d.area, Entry(value))])
        self._advance()
        return ""

    def mark_not_assessable(self, reason: str, text: str = "") -> str:
        """The current area is not assessable for ``reason``; moves on."""
        refused = self._refuse_locked() or _check_reason(reason, text)
        if refused:
            return refused
        self.partial = None
        entry = Entry(AreaScore.not_assessable(reason), text.strip() if reason == "other" else "")
        self._do(
            f"{self.current_area} not assessable",
            [(self.current_letter, self.current_area, entry)],
        )
        self._advance()
        return ""

    def mark_region_not_assessable(self, reason: str, text: str = "") -> str:
        """Every area of the current region, in the current visit, not assessable."""
        refused = self._refuse_locked() or _check_reason(reason, text)
        if refused:
            return refused
        self.partial = None
        region = self.current_def.region
        entry = Entry(AreaScore.not_assessable(reason), text.strip() if reason == "other" else "")
        letter = self.current_letter
        self._do(
            f"{region} not assessable",
            [(letter, self.areas[r].area, entry) for r in self.region_rows(region)],
        )
        self._after_region(region)
        return ""

    def rest_of_region_zero(self) -> str:
        """Every unscored area of the current region, in the current visit, = 0."""
        refused = self._refuse_locked()
        if refused:
            return refused
        self.partial = None
        region = self.current_def.region
        letter = self.current_letter
        targets = []
        for r in self.region_rows(region):
            d = self.areas[r]
            if self.cells[(letter, d.area)].entry is None:
                value = AreaScore.from_sides([0] * len(d.sides)) if d.sides else AreaScore.scored(0)
                targets.append((letter, d.area, Entry(value)))
        if not targets:
            return f"every area of {region} in visit {letter} is entered already"
        self._do(f"rest of {region} = 0", targets)
        self._after_region(region)
        return ""

    def clear_current(self) -> str:
        """Remove the current area's entry (it becomes unscored)."""
        if self.cancel_partial():
            return ""
        refused = self._refuse_locked()
        if refused:
            return refused
        if self.entry(self.current_letter, self.current_area) is None:
            return ""
        self._do(f"clear {self.current_area}", [(self.current_letter, self.current_area, None)])
        return ""

    def _do(self, label: str, targets: Sequence[tuple[str, Area, Entry | None]]) -> None:
        changes = tuple(
            Change(letter, area, self.cells[(letter, area)].entry, new)
            for letter, area, new in targets
            if self.cells[(letter, area)].entry != new
        )
        if not changes:
            return
        self.undo_stack.append(Step(label, changes))
        self.redo_stack.clear()
        self._apply(changes, "")

    def undo(self) -> str:
        """Take back the last step (written through the facade like any change)."""
        if not self.undo_stack:
            return "nothing to undo"
        step = self.undo_stack[-1]
        refused = self._refuse_steps(step)
        if refused:
            return refused
        self.undo_stack.pop()
        self.redo_stack.append(step)
        self.partial = None
        self._apply(tuple(Change(c.letter, c.area, c.new, c.old) for c in step.changes), "undo")
        self._show(step)
        return ""

    def redo(self) -> str:
        if not self.redo_stack:
            return "nothing to redo"
        step = self.redo_stack[-1]
        refused = self._refuse_steps(step)
        if refused:
            return refused
        self.redo_stack.pop()
        self.undo_stack.append(step)
        self.partial = None
        self._apply(step.changes, "redo")
        self._show(step)
        return ""

    def _refuse_steps(self, step: Step) -> str:
        for c in step.changes:
            if not self.editable(c.letter):
                return f"visit {c.letter} is {self.status[c.letter]}: it cannot change here"
        return ""

    def _show(self, step: Step) -> None:
        first = step.changes[0]
        self.set_current(self._row_of[first.area], self.letters.index(first.letter))
        self._emit("current")

    def _apply(self, changes: Sequence[Change], change_reason: str) -> None:
        """Put the new values in the cells (pending) and hand them to the writer, one entry
        per visit: the scores of a step go in one transaction."""
        by_letter: dict[str, list[Change]] = {}
        for c in changes:
            by_letter.setdefault(c.letter, []).append(c)
        for letter, group in by_letter.items():
            seqs: dict[Area, int] = {}
            for c in group:
                cell = self.cells[(letter, c.area)]
                self._seq += 1
                cell.entry = c.new
                cell.seq = seqs[c.area] = self._seq
                cell.save = "pending"
                cell.error = ""
                cell.change_reason = change_reason
            self._submit(letter, {c.area: c.new for c in group}, seqs, change_reason)
        self._emit("cells", [(c.letter, c.area) for c in changes])
        self._emit("save")

    def _submit(
        self,
        letter: str,
        values: Mapping[Area, Entry | None],
        seqs: Mapping[Area, int],
        change_reason: str,
    ) -> None:
        self.writes += len(values)
        if self.submit is None:
            return
        self.submit(
            WriteEntry(
                self.reads[letter],
                {a: (e.score if e is not None else None) for a, e in values.items()},
                {a: e.reason_text for a, e in values.items() if e is not None and e.reason_text},
                change_reason,
                on_ack=lambda code, area, version: self._acked(code, area, version, seqs[area]),
                on_fail=lambda code, area, message: self._failed(code, area, message, seqs[area]),
            )
        )

    def _acked(self, read_code: str, area: Area, version: int, seq: int) -> None:
        letter = self._letter_of[read_code]
        self.versions[letter] = max(self.versions[letter], version)
        cell = self.cells[(letter, area)]
        if cell.seq == seq:
            cell.save = "saved"
            cell.error = ""
            self._emit("saved", [(letter, area)])

    def _failed(self, read_code: str, area: Area, message: str, seq: int) -> None:
        letter = self._letter_of[read_code]
        cell = self.cells[(letter, area)]
        if cell.seq == seq:
            cell.save = "failed"
            cell.error = message
            self._emit("saved", [(letter, area)])

    def retry_failed(self) -> int:
        """Write again every cell (and note) that could not be saved; returns how many."""
        n = 0
        for letter in self.letters:
            keys = [
                (letter, d.area)
                for d in self.areas
                if self.cells[(letter, d.area)].save == "failed"
            ]
            by_reason: dict[str, list[CellKey]] = {}
            for key in keys:
                by_reason.setdefault(self.cells[key].change_reason, []).append(key)
            for reason, group in by_reason.items():
                seqs: dict[Area, int] = {}
                for key in group:
                    cell = self.cells[key]
                    self._seq += 1
                    cell.seq = seqs[key[1]] = self._seq
                    cell.save = "pending"
                    cell.error = ""
                self._submit(letter, {k[1]: self.cells[k].entry for k in group}, seqs, reason)
                n += len(group)
            if self.note_state[letter] == "failed":
                self._submit_note(letter)
                n += 1
        if n:
            self._emit("saved", [k for k, c in self.cells.items() if c.save == "pending"])
        return n

    def set_status(self, letter: str, status: str) -> None:
        """A read was signed or reopened elsewhere (by the host window)."""
        self.status[letter] = status
        self._emit("status")

    # ------------------------------------------------------------------ notes

    def set_note(self, letter: str, text: str) -> str:
        """The free-text note of a visit's read; written like a score."""
        if text == self.notes[letter]:
            return ""
        if not self.editable(letter):
            return f"visit {letter} is {self.status[letter]}: its note cannot change here"
        self.notes[letter] = text
        self._submit_note(letter)
        return ""

    def _submit_note(self, letter: str) -> None:
        self._seq += 1
        seq = self._seq
        self.note_state[letter] = "pending"
        self.note_error[letter] = ""
        self._emit("note")
        self._emit("save")
        if self.submit is None:
            return

        def done(_code: str, error: str) -> None:
            if self._note_seq.get(letter) != seq:
                return
            self.note_state[letter] = "failed" if error else "saved"
            self.note_error[letter] = error
            self._emit("note")
            self._emit("save")

        self._note_seq[letter] = seq
        self.submit(WriteEntry(self.reads[letter], note=self.notes[letter], on_note=done))


def _check_reason(reason: str, text: str) -> str:
    if reason not in REASONS:
        return f"unknown reason {reason!r}"
    if reason == "other" and not text.strip():
        return "describe the reason 'other'"
    return ""


# ====================================================================== the Qt table
