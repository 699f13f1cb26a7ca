"""The scoring grid over a real workspace: a paired case scored entirely from the keyboard
(foot erosion in two digits, not assessable with a reason, "rest of region = 0", a whole region
not assessable, undo and redo), every entry committed through the facade and audited, refused
keys storing nothing, resuming where the reader stopped, notes, flags and live totals."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from scorer.core.methods import Area, get_method
from scorer.core.reads import AreaScore, Read
from scorer.core.totals import status_totals
from scorer.gui.score_writer import ScoreWriter
from scorer.gui.scoring_grid import (
    Entry,
    GridModel,
    ScoringGrid,
    ScoringSample,
    build_scoring_sample,
    load_case,
)

SVH = get_method("svh")
ZERO = AreaScore.scored(0)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScoringSample]:
    """One database for the module: reader rita's worklist of four three-visit cases."""
    folder = tmp_path_factory.mktemp("grid")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SCORER_DATA_DIR", str(folder / "data"))
        env.setenv("SCORER_CONFIG", str(folder / "no-site-config.toml"))
        env.delenv("SCORER_DB", raising=False)
        built = build_scoring_sample(folder / "trial", patients=4, visits=3)
    yield built
    built.workspace.close()


@pytest.fixture
def make_grid(
    qtbot: QtBot, sample: ScoringSample
) -> Iterator[Callable[[int], tuple[ScoringGrid, ScoreWriter]]]:
    """Open case ``n`` of the worklist in a grid with its own writer (stopped afterwards)."""
    writers: list[ScoreWriter] = []

    def make(n: int) -> tuple[ScoringGrid, ScoreWriter]:
        ws, s = sample.workspace, sample.session
        case = load_case(ws.reading, s, ws.reading.open_case(s, sample.cases[n]))
        writer = ScoreWriter(ws.reading, s)
        writers.append(writer)
        grid = ScoringGrid(GridModel.from_case(case, submit=writer.submit), writer)
        qtbot.addWidget(grid)
        grid.resize(480, 1000)
        grid.show()
        return grid, writer

    yield make
    for writer in writers:
        assert writer.stop(10)


def wait_saved(qtbot: QtBot, grid: ScoringGrid, writer: ScoreWriter) -> None:
    qtbot.waitUntil(lambda: writer.pending_count == 0, timeout=60_000)
    assert grid.model.pending == 0
    assert grid.model.failed == 0


def stored(sample: ScoringSample, grid: ScoringGrid, letter: str) -> Any:
    return sample.workspace.reading.get_read(sample.session, grid.model.reads[letter])


def test_a_paired_case_is_scored_from_the_keyboard_and_stored_as_typed(
    qtbot: QtBot, sample: ScoringSample, make_grid: Callable[[int], tuple[ScoringGrid, ScoreWriter]]
) -> None:
    grid, writer = make_grid(0)
    model = grid.model
    areas = model.areas
    assert model.letters == ("A", "B", "C")
    assert (model.row, model.col) == (0, 0)  # a new case starts at its first area
    expected: dict[str, dict[Area, AreaScore]] = {letter: {} for letter in model.letters}
    writes = 0
    rejections: list[str] = []
    grid.rejected.connect(rejections.append)

    def at(row: int, col: int) -> None:
        assert (model.row, model.col) == (row, col), (areas[model.row].area, model.col)

    def type_value(letter: str, row: int, seed: int) -> AreaScore:
        """Type the grade of ``row`` (two digits for foot erosion) and note what to expect."""
        nonlocal writes
        d = areas[row]
        if d.sides:
            proximal, distal = seed % 6, (seed * 2 + 1) % 6
            qtbot.keyClicks(grid, f"{proximal}{distal}")
            value = AreaScore.from_sides([proximal, distal])
        else:
            grade = (seed * 7 + 3) % (d.max + 1)
            qtbot.keyClicks(grid, str(grade))
            value = AreaScore.scored(grade)
        expected[letter][d.area] = value
        writes += 1
        return value

    # ---- visit A: digits, one area not assessable, and "rest of region = 0" in RH.
    rh = model.region_rows("RH")
    for row, d in enumerate(areas):
        if d.region == "RH" and row > rh[2]:
            if row == rh[3]:
                at(row, 0)
                qtbot.keyClick(grid, Qt.Key.Key_Z)
                for r in rh[3:]:
                    expected["A"][areas[r].area] = ZERO
                writes += len(rh) - 3
                at(rh[-1] + 1, 0)  # on to the next region
            continue
        at(row, 0)
        if row == 5:
            qtbot.keyClick(grid, Qt.Key.Key_N)
            assert grid.reason_popup.isVisible()
            qtbot.keyClicks(grid, "2")  # image quality
            assert not grid.reason_popup.isVisible()
            expected["A"][d.area] = AreaScore.not_assessable("image_quality")
            writes += 1
        else:
            type_value("A", row, row)
    at(0, 1)  # the end of a visit goes on to the next visit's first unscored area
    assert model.unscored("A") == []

    # ---- visit B: an out-of-range digit, undo and redo of a first entry and of a change.
    jsn_row = model.row_of(Area("LH", "PIP2", "JSN"))
    foot_row = model.row_of(Area("LF", "MTP2", "ERO"))
    for row, d in enumerate(areas):
        at(row, 1)
        if row == 10:
            value = type_value("B", row, row + 1)
            at(11, 1)
            qtbot.keyClick(grid, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
            assert model.entry("B", d.area) is None  # undone: cleared through clear_score
            at(10, 1)
            qtbot.keyClick(grid, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
            assert model.entry("B", d.area) is not None
            assert model.entry("B", d.area).score == value  # type: ignore[union-attr]
            writes += 2
            at(10, 1)
            qtbot.keyClick(grid, Qt.Key.Key_Down)
            continue
        if row == jsn_row:
            qtbot.keyClicks(grid, "5")  # JSN is 0-4: refused, nothing stored, no move
            assert rejections and "out of range" in rejections[-1]
            assert model.entry("B", d.area) is None
            at(row, 1)
            first = type_value("B", row, row)
            qtbot.keyClick(grid, Qt.Key.Key_Up)
            other = (first.score + 1) % 5  # type: ignore[operator]
            qtbot.keyClicks(grid, str(other))
            assert model.entry("B", d.area).score == AreaScore.scored(other)  # type: ignore[union-attr]
            qtbot.keyClick(grid, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
            assert model.entry("B", d.area).score == first  # type: ignore[union-attr]
            writes += 2
            at(row, 1)
            qtbot.keyClick(grid, Qt.Key.Key_Return)
            continue
        if row == foot_row:
            qtbot.keyClicks(grid, "6")  # each side of a foot erosion is 0-5
            assert "out of range" in rejections[-1]
            qtbot.keyClicks(grid, "3")
            assert model.partial == 3
            qtbot.keyClick(grid, Qt.Key.Key_Escape)  # drop the half-typed entry
            assert model.partial is None
            at(row, 1)
        type_value("B", row, row + 1)
    at(0, 2)

    # ---- visit C: the left foot not assessable as a whole ("other", with a text); Tab.
    lf = model.region_rows("LF")
    for row, d in enumerate(areas):
        if d.region == "LF":
            if row == lf[0]:
                at(row, 2)
                qtbot.keyClick(grid, Qt.Key.Key_N, Qt.KeyboardModifier.ShiftModifier)
                qtbot.keyClicks(grid, "4")
                assert grid.reason_popup.asking_text
                qtbot.keyClicks(grid, "lost film")
                qtbot.keyClick(grid, Qt.Key.Key_Return)
                for r in lf:
                    expected["C"][areas[r].area] = AreaScore.not_assessable("other")
                writes += len(lf)
                at(lf[-1] + 1, 2)
            continue
        at(row, 2)
        if row == 40:
            qtbot.keyClick(grid, Qt.Key.Key_Backtab, Qt.KeyboardModifier.ShiftModifier)
            at(40, 1)
            qtbot.keyClick(grid, Qt.Key.Key_Tab)
            at(40, 2)
        type_value("C", row, row + 2)
    assert model.first_unscored() is None

    wait_saved(qtbot, grid, writer)
    assert grid.save_label.text().endswith("All saved")
    for letter in model.letters:
        view = stored(sample, grid, letter)
        assert view.scores == expected[letter], letter
        assert len(view.scores) == 86
    texts = stored(sample, grid, "C").reason_text
    assert {texts[areas[r].area] for r in lf} == {"lost film"}

    # One audit row per area changed: every digit, mark, undo and redo.
    codes = set(model.reads.values())
    trail = [
        row
        for row in sample.workspace.oversight.audit_trail(sample.coordinator)
        if row.action in ("score.set", "score.clear") and row.entity_id in codes
    ]
    assert len(trail) == writes == model.writes
    reasons = [(row.action, row.reason) for row in trail]
    assert reasons.count(("score.clear", "undo")) == 1  # undo of a first entry
    assert reasons.count(("score.set", "undo")) == 1  # undo of a change
    assert reasons.count(("score.set", "redo")) == 1


def test_an_out_of_range_digit_stores_nothing(
    qtbot: QtBot, sample: ScoringSample, make_grid: Callable[[int], tuple[ScoringGrid, ScoreWriter]]
) -> None:
    grid, writer = make_grid(1)
    model = grid.model
    refused: list[str] = []
    grid.rejected.connect(refused.append)
    for area, digit in (
        (Area("RH", "MCP3", "JSN"), "5"),
        (Area("LH", "ULN", "ERO"), "6"),
        (Area("RF", "MTP4", "ERO"), "7"),
        (Area("LF", "IP1", "JSN"), "9"),
    ):
        model.go_to_area(area, "B")
        qtbot.keyClicks(grid, digit)
        assert (model.current_area, model.current_letter) == (area, "B")  # no move
        assert model.entry("B", area) is None
        assert refused[-1].startswith(f"{digit} is out of range for {area}")
    assert model.undo_stack == []
    assert writer.pending_count == 0
    assert "out of range" in grid.message_label.text()
    assert stored(sample, grid, "B").scores == {}


def test_reopening_a_case_resumes_where_the_reader_stopped(
    qtbot: QtBot, sample: ScoringSample, make_grid: Callable[[int], tuple[ScoringGrid, ScoreWriter]]
) -> None:
    grid, writer = make_grid(2)
    qtbot.keyClicks(grid, "0123401234")
    qtbot.keyClick(grid, Qt.Key.Key_N)
    qtbot.keyClicks(grid, "3")  # operated
    grid.note.setPlainText("cyst near LH MCP2")
    assert grid.finish(30)  # as the window closes: the note is written, all acknowledged
    assert writer.pending_count == 0
    before = {k: c.entry for k, c in grid.model.cells.items()}
    grid.close()

    again, _writer = make_grid(2)
    model = again.model
    assert {k: c.entry for k, c in model.cells.items()} == before
    assert all(c.save == "saved" for c in model.cells.values())
    assert (model.row, model.col) == (11, 0)  # the first area not entered
    index = again.table.currentIndex()
    assert again.table_model is not None
    assert again.table_model.area_row(index.row()) == 11
    assert index.column() == 0
    assert model.notes["A"] == "cyst near LH MCP2"
    assert again.note.toPlainText() == "cyst near LH MCP2"
    assert model.entry("A", model.areas[10].area) == Entry(AreaScore.not_assessable("operated"))


def test_columns_show_visit_letters_only_and_areas_by_code(
    sample: ScoringSample, make_grid: Callable[[int], tuple[ScoringGrid, ScoreWriter]]
) -> None:
    grid, _writer = make_grid(3)
    tm = grid.table_model
    assert tm is not None
    headers = [tm.headerData(c, Qt.Orientation.Horizontal) for c in range(tm.columnCount())]
    assert headers == ["A", "B", "C"]
    labels = [tm.headerData(r, Qt.Orientation.Vertical) for r in range(tm.rowCount())]
    assert "LH MCP2 ERO" in labels and "RF IP1 JSN" in labels
    area_labels = [label for r, label in enumerate(labels) if tm.rows[r][0] == "area"]
    assert area_labels == [str(d.area) for d in SVH.areas]  # canonical order
    # Nothing about visits, dates or the patient anywhere in the grid's text.
    real = {"W0", "W24", "W52", "SUBJ-001", "SUBJ-002", "SUBJ-003", "SUBJ-004"}
    shown = " ".join(str(x) for x in labels + headers)
    assert not any(word in shown for word in real)


def test_flag_to_coordinator_sends_the_message(
    qtbot: QtBot, sample: ScoringSample, make_grid: Callable[[int], tuple[ScoringGrid, ScoreWriter]]
) -> None:
    grid, _writer = make_grid(3)
    qtbot.mouseClick(grid.flag_button, Qt.MouseButton.LeftButton)
    dialog = grid.flag_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.text.setPlainText("visit B may be another patient")
    with qtbot.waitSignal(grid.flagRaised, timeout=10_000) as raised:
        dialog.accept()
    flags = sample.workspace.coordination.flags(sample.coordinator, sample.trial)
    mine = [f for f in flags if f.flag == raised.args[0]]
    assert mine and mine[0].message == "visit B may be another patient"
    assert mine[0].case == grid.model.case_code


def test_live_totals_follow_the_entries(
    qtbot: QtBot, make_grid: Callable[[int], tuple[ScoringGrid, ScoreWriter]]
) -> None:
    grid, writer = make_grid(3)
    model = grid.model
    model.go_to_area(Area("LF", "MTP1", "ERO"), "C")
    qtbot.keyClicks(grid, "32")  # LF MTP1 ERO = 3 + 2
    totals = model.totals("C")
    assert totals[("group", "LF", "ERO")].text() == "≥5"
    assert totals[("left",)].left == 85
    assert grid.totals_table.item(2, 0).text() == "≥5"  # C, erosion
    # Complete the visit: the totals become the status totals (scaled for areas not
    # assessable, marked *).
    model.go_to_area(Area("LH", "MCP1", "ERO"), "C")
    qtbot.keyClick(grid, Qt.Key.Key_N)
    qtbot.keyClicks(grid, "1")
    for region in ("LH", "RH", "LF", "RF"):
        model.go_to_area(SVH.areas_of(region)[0].area, "C")
        qtbot.keyClick(grid, Qt.Key.Key_Z)
    assert model.unscored("C") == []
    scores = {d.area: model.entry("C", d.area).score for d in SVH.areas}  # type: ignore[union-attr]
    expected = status_totals(Read("", "", "", "", "svh", scores=scores), SVH)
    totals = model.totals("C")
    assert totals[("total",)].value == pytest.approx(expected.total)
    assert totals[("region", "LH")].adjusted
    assert expected.total == 5  # LF MTP1 erosion 3 + 2; every other area 0
    assert totals[("total",)].text() == "5*"
    assert totals[("feature", "JSN")].text() == "0"
    wait_saved(qtbot, grid, writer)


def test_a_signed_visit_refuses_changes(
    qtbot: QtBot, make_grid: Callable[[int], tuple[ScoringGrid, ScoreWriter]]
) -> None:
    grid, writer = make_grid(3)
    model = grid.model
    model.set_status("B", "signed")
    model.go_to_area(Area("RH", "PIP4", "ERO"), "B")
    refused: list[str] = []
    grid.rejected.connect(refused.append)
    qtbot.keyClicks(grid, "1")
    qtbot.keyClick(grid, Qt.Key.Key_Z)
    assert all("signed" in r for r in refused) and len(refused) == 2
    assert model.entry("B", Area("RH", "PIP4", "ERO")) is None
    assert writer.pending_count == 0
    assert grid.note.isReadOnly() is True


def test_a_grade_panel_shows_the_current_areas_definitions(
    qtbot: QtBot, make_grid: Callable[[int], tuple[ScoringGrid, ScoreWriter]]
) -> None:
    grid, _writer = make_grid(3)
    grid.model.go_to_area(Area("RH", "MCP2", "JSN"), "A")
    assert grid.grades.grade_texts == dict(SVH.features["JSN"].grades)
    assert "RH MCP2 JSN" in grid.grades.title.text()
    grid.model.go_to_area(Area("RF", "MTP5", "ERO"), "A")
    assert grid.grades.grade_texts == dict(SVH.features["ERO"].grades)
    assert "proximal then distal" in grid.grades.subtitle.text()


class CountingFacade:
    """The real workspace, with a note of each write the score writer makes."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls: list[tuple[str, list[Area]]] = []

    def set_scores(self, s: Any, code: str, values: Any, *a: Any, **kw: Any) -> Any:
        self.calls.append(("set_scores", list(values)))
        return self.real.set_scores(s, code, values, *a, **kw)

    def clear_scores(self, s: Any, code: str, areas: Any, *a: Any, **kw: Any) -> Any:
        self.calls.append(("clear_scores", list(areas)))
        return self.real.clear_scores(s, code, areas, *a, **kw)

    def set_note(self, s: Any, code: str, note: str) -> Any:
        return self.real.set_note(s, code, note)

    def raise_flag(
        self, s: Any, case_code: str, message: str, visit: Any = None, films: Any = ()
    ) -> int:
        return int(self.real.raise_flag(s, case_code, message, visit, films))


def audit_rows(sample: ScoringSample, code: str) -> list[tuple[str, str, str]]:
    """(action, old, at) of a read's audit rows, oldest first, read from the file."""
    import sqlite3

    con = sqlite3.connect(f"file:{sample.workspace.store.location.sqlite_path}?mode=ro", uri=True)
    try:
        return con.execute(
            "SELECT action, old, at FROM audit_events WHERE entity_id = ? ORDER BY seq", (code,)
        ).fetchall()
    finally:
        con.close()


def test_undo_of_rest_of_region_is_one_transaction(qtbot: QtBot, sample: ScoringSample) -> None:
    """Undo of "rest of region = 0" over N areas is one clear_scores call: a failure on the
    last area leaves all N stored (and unaudited), the cells red; the retry clears them all,
    one score.clear audit row per area, all in one transaction."""
    import json
    import sqlite3

    ws, s = sample.workspace, sample.session
    facade = CountingFacade(ws.reading)
    writer = ScoreWriter(facade, s)
    case = load_case(ws.reading, s, ws.reading.open_case(s, sample.cases[1]))
    grid = ScoringGrid(GridModel.from_case(case, submit=writer.submit), writer)
    qtbot.addWidget(grid)
    grid.show()
    model = grid.model
    rh = model.region_rows("RH")
    model.set_current(rh[0], 0)
    qtbot.keyClicks(grid, "1")  # the first area scored by hand, the rest = 0
    first = model.areas[rh[0]].area
    qtbot.keyClick(grid, Qt.Key.Key_Z)
    zeroed = [model.areas[r].area for r in rh[1:]]
    assert [c.area for c in model.undo_stack[-1].changes] == zeroed and len(zeroed) > 10
    code = model.reads["A"]
    try:
        wait_saved(qtbot, grid, writer)
        scored = stored(sample, grid, "A").scores
        assert scored == {first: AreaScore.scored(1), **dict.fromkeys(zeroed, ZERO)}
        before = audit_rows(sample, code)
        facade.calls.clear()

        # The last area's delete fails inside the transaction, after the others were deleted.
        last = zeroed[-1]
        con = sqlite3.connect(sample.workspace.store.location.sqlite_path)
        with con:
            con.execute(
                "CREATE TRIGGER test_fail_clear BEFORE DELETE ON area_scores "
                f"WHEN OLD.region = '{last.region}' AND OLD.joint = '{last.joint}' "
                f"AND OLD.feature = '{last.feature}' BEGIN SELECT RAISE(ABORT, 'disk full'); END"
            )
        con.close()
        qtbot.keyClick(grid, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        assert all(model.cell("A", a).save == "pending" for a in zeroed)
        qtbot.waitUntil(lambda: writer.pending_count == 0, timeout=60_000)
        assert facade.calls == [("clear_scores", zeroed)]  # one call for the N areas
        assert all(model.cell("A", a).save == "failed" for a in zeroed)
        assert model.failed == len(zeroed) and model.pending == 0
        assert all(model.entry("A", a) is None for a in zeroed)  # the grid shows the undo
        assert stored(sample, grid, "A").scores == scored  # all N still stored
        assert audit_rows(sample, code) == before  # nothing half-written, nothing audited

        con = sqlite3.connect(sample.workspace.store.location.sqlite_path)
        with con:
            con.execute("DROP TRIGGER test_fail_clear")
        con.close()
        facade.calls.clear()
        qtbot.keyClick(grid, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
        wait_saved(qtbot, grid, writer)
        assert facade.calls == [("clear_scores", zeroed)]
        assert all(model.cell("A", a).save == "saved" for a in zeroed)
        assert stored(sample, grid, "A").scores == {first: AreaScore.scored(1)}
        new = audit_rows(sample, code)[len(before) :]
        assert [action for action, _old, _at in new] == ["score.clear"] * len(zeroed)
        assert [json.loads(old)["area"] for _a, old, _at in new] == [str(a) for a in zeroed]
        assert all(json.loads(old)["score"] == 0 for _a, old, _at in new)
        assert len({at for _a, _o, at in new}) == 1  # one transaction's time
    finally:
        assert writer.stop(10)
