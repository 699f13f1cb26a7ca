"""A reader's session end to end over a real database: log in, open a paired case, score every
area of every visit from the keyboard, sign with the password, go on to the next case; the
stored scores are what was typed. Also: signing refused until the case is complete, a signed
case read-only until reopened with a reason, a wrong signing password changes nothing,
resuming a half-scored case, viewer keys typed in the grid, and the inactivity lock."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from scorer.core.methods import get_method
from scorer.core.reads import AreaScore
from scorer.gui.reading import ReadingWindow, layout_settings
from scorer.gui.sample_case import (
    SAMPLE_READER,
    SAMPLE_READER_PASSWORD,
    SampleReading,
    build_sample_workspace,
)
from scorer.gui.workstation import Workstation
from tests.gui.reading_keys import case_keystrokes

SVH = get_method("svh")
COORDINATOR = ("cora", "Willow-Compass-2024")


@pytest.fixture
def reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SampleReading]:
    """A new database per test: two synthetic patients (three visits, hands and feet),
    reader rita's worklist generated."""
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    sample = build_sample_workspace(tmp_path / "trial", patients=2, pixel_mm=1.0)
    yield sample
    sample.workspace.close()


def open_window(qtbot: QtBot, sample: SampleReading, folder: Path, **kw: Any) -> ReadingWindow:
    window = ReadingWindow(
        sample.workspace, sample.session, sample.trial, settings=layout_settings(folder), **kw
    )
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.model is not None and window.grid is not None, timeout=30000)
    return window


def type_keys(window: ReadingWindow, keys: str) -> None:
    """Type as a reader does: into whatever has the keyboard focus."""
    assert window.grid is not None
    for ch in keys:
        QTest.keyClicks(QApplication.focusWidget() or window, ch)


def wait_saved(qtbot: QtBot, window: ReadingWindow) -> None:
    qtbot.waitUntil(lambda: window.writer.pending_count == 0, timeout=60000)
    assert window.model is not None and window.model.failed == 0


def sign_with_dialog(qtbot: QtBot, window: ReadingWindow, password: str, user: str = "") -> None:
    QTest.keyClick(window.grid.table, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.sign_dialog is not None and window.sign_dialog.isVisible())
    dialog = window.sign_dialog
    assert dialog is not None
    if dialog.first_signature:
        QTest.keyClicks(dialog.username, user)
    QTest.keyClicks(dialog.password, password)
    QTest.keyClick(dialog.password, Qt.Key.Key_Return)


def test_log_in_score_a_paired_case_from_the_keyboard_sign_and_go_on(
    qtbot: QtBot, reading: SampleReading
) -> None:
    ws = reading.workspace
    station = Workstation(ws, username=SAMPLE_READER)
    opened: list[ReadingWindow] = []
    station.readingOpened.connect(opened.append)
    station.start()
    login = station.login_dialog
    assert login is not None
    qtbot.addWidget(login)
    QTest.keyClicks(login.password, SAMPLE_READER_PASSWORD)
    QTest.keyClick(login.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(opened), timeout=30000)
    window = opened[0]  # the workstation's own (deleted when closed)
    qtbot.waitUntil(
        lambda: window.model is not None and window.case_view.case is not None, timeout=30000
    )
    # The keyboard is the grid's once the case is on screen, films and all.
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.grid.table, timeout=5000)
    first_case = window.current_code
    model = window.model
    assert model is not None and model.letters == ("A", "B", "C")
    assert window.worklist_table.rowCount() == 2
    assert not window.sign_action.isEnabled()

    expected = {}
    for n, stroke in enumerate(case_keystrokes(SVH, model.letters)):
        # The cursor is where the next entry goes, with no mouse: the grid moves on by itself.
        assert (model.current_letter, model.current_area) == (stroke.letter, stroke.area), n
        type_keys(window, stroke.keys)
        expected[(stroke.letter, stroke.area)] = stroke.value
        if n == 40:
            # Signing is refused while areas are left: the dialog does not even open.
            window.ask_sign()
            assert window.sign_dialog is None
    assert len(expected) == 3 * 86
    wait_saved(qtbot, window)
    assert window.case_state() == "complete" and window.sign_action.isEnabled()
    reads = dict(model.reads)

    signed: list[str] = []
    window.caseSigned.connect(signed.append)
    sign_with_dialog(qtbot, window, SAMPLE_READER_PASSWORD, user=SAMPLE_READER)
    qtbot.waitUntil(lambda: bool(signed), timeout=30000)
    assert signed == [first_case]
    # On to the next case by itself; the worklist says the first is signed.
    qtbot.waitUntil(lambda: window.current_code != first_case and window.model is not None)
    assert window.worklist_table.item(0, 2).text() == "signed"
    nxt = window.model
    assert nxt is not None and all(c.entry is None for c in nxt.cells.values())

    coordinator = ws.accounts.login(*COORDINATOR)
    for letter, code in reads.items():
        view = ws.reading.get_read(coordinator, code)
        assert view.status == "signed"
        stored = dict(view.scores)
        want = {a: v for (lt, a), v in expected.items() if lt == letter}
        assert stored == want
    trail = ws.oversight.audit_trail(coordinator)
    sets = [r for r in trail if r.action == "score.set" and r.entity_id in reads.values()]
    assert len(sets) == 3 * 86  # every entry audited on its own row
    signs = [r for r in trail if r.action == "read.sign" and r.entity_id in reads.values()]
    assert len(signs) == 3
    assert ws.verify().ok
    window.close()


def test_a_signed_case_is_read_only_until_reopened_with_a_reason(
    qtbot: QtBot, reading: SampleReading, tmp_path: Path
) -> None:
    ws, s = reading.workspace, reading.session
    window = open_window(qtbot, reading, tmp_path / "layout")
    model = window.model
    assert model is not None
    for stroke in case_keystrokes(SVH, model.letters):
        type_keys(window, stroke.keys)
    wait_saved(qtbot, window)

    # A wrong password: the message is shown, the dialog stays, nothing is signed.
    window.ask_sign()
    dialog = window.sign_dialog
    assert dialog is not None
    QTest.keyClicks(dialog.username, SAMPLE_READER)
    QTest.keyClicks(dialog.password, "not-the-password")
    QTest.keyClick(dialog.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: dialog.error.isVisible() and not dialog.busy, timeout=20000)
    assert "password" in dialog.error.text().lower()
    assert {ws.reading.get_read(s, r).status for r in model.reads.values()} == {"in_progress"}
    dialog.password.setText(SAMPLE_READER_PASSWORD)
    with qtbot.waitSignal(window.caseSigned, timeout=20000):
        dialog.submit()
    assert {ws.reading.get_read(s, r).status for r in model.reads.values()} == {"signed"}

    # Back to the signed case: digits are refused and store nothing.
    window.open_index(0)
    qtbot.waitUntil(lambda: window.model is model)
    assert window.case_state() == "signed" and window.reopen_action.isEnabled()
    assert not window.sign_action.isEnabled()
    version = {r: ws.reading.get_read(s, r).version for r in model.reads.values()}
    model.set_current(0, 0)
    before = model.entry("A", model.current_area)
    type_keys(window, "4")
    assert model.entry("A", model.current_area) == before
    assert "signed" in window.grid.message_label.text()

    # Reopen with a reason: the signatures are void, the grid takes entries again.
    window.ask_reopen()
    reopen = window.reopen_dialog
    assert reopen is not None
    reopen.submit()  # no reason: refused
    assert reopen.error.text() == "A reason is required."
    QTest.keyClicks(reopen.reason, "LH MCP1 erosion entered on the wrong joint")
    with qtbot.waitSignal(window.caseReopened, timeout=20000):
        QTest.keyClick(reopen.reason, Qt.Key.Key_Return)
    assert {ws.reading.get_read(s, r).status for r in model.reads.values()} == {"in_progress"}
    assert window.worklist_table.item(0, 2).text() == "in progress"
    model.set_current(0, 0)
    type_keys(window, "4")
    wait_saved(qtbot, window)
    assert ws.reading.get_read(s, model.reads["A"]).scores[SVH.areas[0].area] == AreaScore.scored(4)
    assert ws.reading.get_read(s, model.reads["A"]).version > version[model.reads["A"]]
    coordinator = ws.accounts.login(*COORDINATOR)
    voids = [
        r
        for r in ws.oversight.audit_trail(coordinator)
        if r.action == "read.void_signature" and r.entity_id in model.reads.values()
    ]
    assert len(voids) == 3
    assert {v.reason for v in voids} == {"LH MCP1 erosion entered on the wrong joint"}
    # Sign again: password only (the session's first signature has been given).
    with qtbot.waitSignal(window.caseSigned, timeout=20000):
        sign_with_dialog(qtbot, window, SAMPLE_READER_PASSWORD)
    assert {ws.reading.get_read(s, r).status for r in model.reads.values()} == {"signed"}
    window.close()


def test_reopening_the_window_resumes_where_the_reader_stopped(
    qtbot: QtBot, reading: SampleReading, tmp_path: Path
) -> None:
    window = open_window(qtbot, reading, tmp_path / "layout")
    code = window.current_code
    strokes = list(case_keystrokes(SVH, ("A", "B", "C")))[:100]
    for stroke in strokes:
        type_keys(window, stroke.keys)
    QTest.keyClicks(window.grid.note, "")  # nothing typed in the note
    window.close()  # waits for the writer: every entry is acknowledged first
    again = open_window(qtbot, reading, tmp_path / "layout")
    assert again.current_code == code
    model = again.model
    assert model is not None
    for stroke in strokes:
        entry = model.entry(stroke.letter, stroke.area)
        assert entry is not None and entry.score == stroke.value
    nxt = list(case_keystrokes(SVH, ("A", "B", "C")))[100]
    assert (model.current_letter, model.current_area) == (nxt.letter, nxt.area)
    again.close()


def test_viewer_keys_typed_in_the_grid_act_on_the_visit_being_scored(
    qtbot: QtBot, reading: SampleReading, tmp_path: Path
) -> None:
    window = open_window(qtbot, reading, tmp_path / "layout")
    qtbot.waitUntil(lambda: window.case_view.case is not None, timeout=30000)
    model = window.model
    assert model is not None
    model.set_current(0, 1)  # visit B
    panel_b = window.case_view.panels["B"]
    inverted = panel_b.model.view.invert
    type_keys(window, "i")
    assert panel_b.model.view.invert != inverted
    assert window.case_view.panels["A"].model.view.invert == inverted
    assert all(c.entry is None for c in model.cells.values())  # no score was entered
    # A foot area shows the feet films.
    model.go_to_area(next(d.area for d in SVH.areas if d.region == "LF"))
    assert window.case_view.page is not None and window.case_view.page.title == "Feet"
    window.close()


def test_an_idle_session_locks_and_the_password_unlocks_it(
    qtbot: QtBot, reading: SampleReading, tmp_path: Path
) -> None:
    window = open_window(qtbot, reading, tmp_path / "layout", inactivity_minutes=0.01)
    # Not waitSignal: on a busy machine the 0.6 s may be up before the window is ready.
    qtbot.waitUntil(lambda: window.locked, timeout=10000)
    assert window.locked and not window.splitter.isVisible()
    dialog = window.unlock_dialog
    assert dialog is not None and dialog.isVisible()
    assert "locked after inactivity" in dialog.message.text()
    QTest.keyClicks(dialog.password, "wrong-password-1")
    QTest.keyClick(dialog.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: dialog.error.isVisible() and not dialog.busy, timeout=20000)
    assert window.locked
    window.inactivity_s = 3600
    QTest.keyClicks(dialog.password, SAMPLE_READER_PASSWORD)
    with qtbot.waitSignal(window.sessionUnlocked, timeout=20000):
        QTest.keyClick(dialog.password, Qt.Key.Key_Return)
    assert not window.locked and window.splitter.isVisible()
    type_keys(window, "1")
    wait_saved(qtbot, window)
    window.close()


def _shape(window: ReadingWindow, codes: set[str]) -> list[str]:
    """What the reader sees of the case on screen, with its opaque codes blanked."""
    assert window.grid is not None and window.grid.table_model is not None
    tm = window.grid.table_model
    texts = [*window.case_view.all_text(), window.position_label.text()]
    texts += [str(tm.headerData(c, Qt.Orientation.Horizontal, 0)) for c in range(tm.columnCount())]
    texts += [window.windowTitle(), window.case_state_label.text()]
    out = []
    for text in texts:
        for code in codes:
            text = text.replace(code, "CODE")
        text = re.sub(r"\d+%", "zoom%", text)  # the zoom depends on the window's layout
        out.append(re.sub(r"\d+ of \d+", "n of N", text))
    return sorted(set(out))


def test_a_reread_case_looks_exactly_like_any_other_case(
    qtbot: QtBot, reading: SampleReading, tmp_path: Path
) -> None:
    ws = reading.workspace
    coordinator = ws.accounts.login(*COORDINATOR)
    admin = ws.accounts.login("ada", "Sunflower-Meadow-7")
    ws.accounts.add_user(admin, "rosa", "Rosa Reader", "reader", "Temporary-pass-3")
    ws.trials.set_trial_setting(
        coordinator, reading.trial, "reread_share", 0.5, "intra-reader check"
    )
    ws.trials.set_trial_setting(coordinator, reading.trial, "reread_min_gap", 1, "a short worklist")
    ws.worklists.assign_reader(coordinator, reading.trial, "rosa")
    ws.worklists.generate_worklists(coordinator, reading.trial)
    full = ws.worklists.worklist(coordinator, reading.trial, "rosa")
    kinds = [row.read_type for row in full]
    assert kinds.count("reread") == 1 and kinds.count("primary") == 2
    reread = next(row for row in full if row.read_type == "reread")
    original = next(
        row for row in full if row.read_type == "primary" and row.patient == reread.patient
    )
    rosa = ws.accounts.login("rosa", "Temporary-pass-3")
    ws.accounts.change_password(rosa, "Temporary-pass-3", "Harbour-Lantern-2024")
    seen = ws.worklists.worklist(rosa, reading.trial)
    assert all(set(row.to_dict()) == {"code", "progress", "status"} for row in seen)
    window = ReadingWindow(ws, rosa, reading.trial, settings=layout_settings(tmp_path / "ui"))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: len(window.rows) == 3 and window.model is not None, timeout=30000)
    shapes = {}
    answers = {}
    for row in (original, reread):
        window.open_index(next(i for i, r in enumerate(window.rows) if r["code"] == row.code))
        qtbot.waitUntil(
            lambda code=row.code: (
                window.model is not None
                and window.model.case_code == code
                and window.case_view.case is not None
                and window.case_view.case.code == code
            ),
            timeout=30000,
        )
        qtbot.wait(300)  # let the films' layout settle
        answers[row.code] = window.opened[row.code]
        codes = {row.code, *window.model.reads.values()}
        codes |= {
            img.image for imgs in ws.images.case_images(rosa, row.code).values() for img in imgs
        }
        shapes[row.code] = _shape(window, codes)
        for read in window.model.reads.values():
            view = ws.reading.get_read(rosa, read)
            assert (view.read_type, view.visit, view.patient_code) == ("", "", "")
    assert shapes[original.code] == shapes[reread.code]
    a, b = answers[original.code], answers[reread.code]
    assert type(a) is type(b) and sorted(a.reads) == sorted(b.reads)
    window.close()


def test_a_calibration_case_shows_the_reference_after_signing(
    qtbot: QtBot, reading: SampleReading, tmp_path: Path
) -> None:
    from scorer.core.reads import Read as CoreRead
    from scorer.core.readscsv import format_reads_csv

    ws = reading.workspace
    coordinator = ws.accounts.login(*COORDINATOR)
    zero = {
        d.area: AreaScore.from_sides([0, 0]) if d.sides else AreaScore.scored(0) for d in SVH.areas
    }
    reference = [
        CoreRead(
            trial=reading.trial,
            patient="CAL-1",
            visit=v,
            reader="lead-ref",
            method="svh",
            read_id=f"REF-{v}",
            read_type="imported",
            status="signed",
            scores=zero,
        )
        for v in ("W0", "W24", "W52")
    ]
    ws.exchange.import_reads(coordinator, reading.trial, format_reads_csv(reference))
    code = next(
        p.code
        for p in ws.trials.list_patients(coordinator, reading.trial)
        if p.real_id == "CAL-1"
    )
    ws.trials.set_trial_setting(
        coordinator, reading.trial, "calibration_reference", "lead-ref", "ref"
    )
    ws.trials.set_trial_setting(coordinator, reading.trial, "calibration_patients", [code], "set")
    assert ws.calibration.calibration_worklists(coordinator, reading.trial).cases == {"rita": 1}
    window = open_window(qtbot, reading, tmp_path / "layout")
    assert window.worklist_table.rowCount() == 3  # the calibration case, then the trial's two
    model = window.model
    assert model is not None and window.current_code == window.rows[0]["code"]
    strokes = list(case_keystrokes(SVH, model.letters))
    for stroke in strokes:
        type_keys(window, stroke.keys)
    wait_saved(qtbot, window)
    with qtbot.waitSignal(window.caseSigned, timeout=20000):
        sign_with_dialog(qtbot, window, SAMPLE_READER_PASSWORD, user=SAMPLE_READER)
    qtbot.waitUntil(lambda: window.feedback_dialog is not None, timeout=20000)
    dialog = window.feedback_dialog
    compared = [s for s in strokes if s.value.score is not None]
    same = sum(s.value.score == 0 for s in compared)
    assert f"{same} of {len(compared)} areas the same" in dialog.summary.text()
    assert dialog.table.rowCount() == len(strokes)
    dialog.close()
    # The next case is a trial case: closed until the coordinator releases the reader.
    qtbot.waitUntil(lambda: "calibration" in window.statusBar().currentMessage(), timeout=20000)
    ws.calibration.release_reader(coordinator, reading.trial, "rita", "agreement acceptable")
    window.close()


def test_time_on_each_film_is_logged_paused_while_locked_and_shown_per_session(
    qtbot: QtBot, reading: SampleReading, tmp_path: Path
) -> None:
    ws = reading.workspace
    window = open_window(qtbot, reading, tmp_path / "layout")
    qtbot.waitUntil(lambda: window.case_view.case is not None, timeout=30000)
    first = window.current_code
    hands = sorted(p.shown.image for p in window.case_view.panels.values() if p.shown)
    assert len(hands) == 3  # one hands film per visit on screen
    window.case_view.film_clock.take()  # count from here (the films came up a moment ago)
    t0 = time.monotonic()
    qtbot.wait(700)
    window.case_view.step_page(1)  # the feet
    t1 = time.monotonic()
    feet = sorted(p.shown.image for p in window.case_view.panels.values() if p.shown)
    assert feet and not set(feet) & set(hands)
    qtbot.wait(400)
    window.lock_session()
    t2 = time.monotonic()
    qtbot.wait(2500)  # locked: the films are hidden and not timed
    window.unlock_dialog.password.setText(SAMPLE_READER_PASSWORD)
    with qtbot.waitSignal(window.sessionUnlocked, timeout=20000):
        window.unlock_dialog.submit()
    t3 = time.monotonic()
    qtbot.wait(300)
    window.open_index(1)
    qtbot.waitUntil(lambda: window.current_code != first, timeout=20000)
    t4 = time.monotonic()
    window.close()

    coordinator = ws.accounts.login(*COORDINATOR)
    events = [e for e in ws.oversight.events(coordinator, SAMPLE_READER) if e.session]
    viewed = [e for e in events if e.kind == "image.viewed"]
    by_image: dict[str, float] = {}
    for e in viewed:
        assert e.detail["case_code"] in (first, window.current_code)
        by_image[e.subject] = by_image.get(e.subject, 0.0) + e.detail["seconds"]
    for code in hands:  # on screen from t0 to t1, not after
        assert 0.6 <= by_image[code] <= (t1 - t0) + 0.2, (code, by_image, t1 - t0)
    for code in feet:  # from t1 to t4 less the time locked (at least t3 - t2)
        # At least most of the 400 ms before the lock (a loaded machine shifts when the lock
        # and the unlock land: CI saw 0.4 s of the 0.7 s); never the time locked.
        assert 0.3 <= by_image[code] <= (t4 - t1) - (t3 - t2) + 0.2, (code, by_image)
    closed = [e for e in events if e.kind == "case.closed" and e.subject == first]
    # The case was on screen and unlocked at least from t0 to the lock at t2 (when the
    # clock resumes after the unlock depends on the machine's load: CI saw 1.2 s of 1.4 s).
    assert closed and sum(e.detail["seconds"] for e in closed) >= (t2 - t0) - 0.05
    (row,) = ws.oversight.reading_sessions(coordinator, SAMPLE_READER)
    assert row.images_viewed == len(by_image) >= 6
    assert row.seconds_per_image == pytest.approx(sum(by_image.values()) / len(by_image), abs=0.05)


def test_session_security_end_to_end_lockout_through_the_workstation(
    qtbot: QtBot, reading: SampleReading
) -> None:
    """Log in through the workstation (a wrong password first), lock the session from the
    keyboard, then fail the unlock until the account locks: the films and scores stay hidden,
    the right password is refused while locked and ends the session (the workstation is back
    at the log-in, saying why), a new log-in is refused too, and the trail
    records every failure and the lockout."""
    ws = reading.workspace
    attempts = ws.settings.lockout_attempts
    station = Workstation(ws, username=SAMPLE_READER)
    opened: list[ReadingWindow] = []
    station.readingOpened.connect(opened.append)
    station.start()
    login = station.login_dialog
    assert login is not None
    qtbot.addWidget(login)
    QTest.keyClicks(login.password, "Not-my-password-1")
    QTest.keyClick(login.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: login.error.isVisible() and not login.busy, timeout=20000)
    assert login.error.text().startswith("wrong user ID or password")
    QTest.keyClicks(login.password, SAMPLE_READER_PASSWORD)
    QTest.keyClick(login.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(opened), timeout=30000)
    window = opened[0]
    qtbot.waitUntil(lambda: window.case_view.case is not None and window.grid is not None)
    type_keys(window, "1")
    wait_saved(qtbot, window)

    with qtbot.waitSignal(window.sessionLocked, timeout=10000):
        QTest.keyClick(window.grid.table, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    dialog = window.unlock_dialog
    assert dialog is not None and dialog.isVisible()
    for n in range(attempts):
        QTest.keyClicks(dialog.password, f"Wrong-unlock-{n}x")
        QTest.keyClick(dialog.password, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: dialog.error.isVisible() and not dialog.busy, timeout=20000)
        assert window.locked and not window.splitter.isVisible()
    assert "locked" in dialog.error.text(), dialog.error.text()
    assert window.model is not None
    codes = list(window.model.reads.values())
    # The right password, but the account is locked: that ends the session (issue 27), and the
    # workstation goes back to the log-in, saying why.
    QTest.keyClicks(dialog.password, SAMPLE_READER_PASSWORD)
    with qtbot.waitSignal(window.sessionEnded, timeout=20000) as ended:
        QTest.keyClick(dialog.password, Qt.Key.Key_Return)
    assert "locked after repeated failed attempts until" in ended.args[0]
    qtbot.waitUntil(
        lambda: station.login_dialog is not login and station.login_dialog.isVisible(),
        timeout=20000,
    )
    assert station.login_dialog.error.text() == ended.args[0]
    qtbot.addWidget(station.login_dialog)
    coordinator = ws.accounts.login(*COORDINATOR)
    stored = [len(ws.reading.get_read(coordinator, code).scores) for code in codes]
    assert sum(stored) == 1, stored  # the entry made before the lock is kept
    trail = [r for r in ws.oversight.audit_trail(coordinator) if r.entity_id == SAMPLE_READER]
    failures = [r for r in trail if r.action == "user.login_failed"]
    assert len(failures) == 1 + attempts  # the log-in typo and every unlock failure
    assert [r.action for r in trail].count("user.lockout") == 1
    from scorer.workspace import AuthError

    with pytest.raises(AuthError, match="locked"):
        ws.accounts.login(SAMPLE_READER, SAMPLE_READER_PASSWORD)


def test_a_reason_chosen_in_the_popup_marks_the_cell_asked_about_not_the_visit_focus_falls_to(
    qtbot: QtBot, reading: SampleReading, tmp_path: Path
) -> None:
    """With the visits side by side, closing the reason popup hands the focus to a visit's
    viewer, which makes that visit the grid's current one; N then a reason still marks the
    cell the reader was on (it used to mark visit A's, overwriting its score)."""
    window = open_window(qtbot, reading, tmp_path / "settings")
    window.resize(1920, 1080)
    qtbot.waitUntil(lambda: window.case_view.case is not None, timeout=30000)
    assert not window.case_view.tabs_mode
    model = window.model
    assert model is not None and model.letters == ("A", "B", "C")
    model.set_current(0, 0)
    window.grid.table.setFocus()
    type_keys(window, "3")  # A's first area scored
    first = model.areas[0].area
    model.set_current(0, 1)  # B's first area
    window.grid.table.setFocus()
    for ch in "n2":
        QTest.keyClicks(QApplication.focusWidget() or window, ch)
        QApplication.processEvents()
    assert model.cells[("B", first)].entry is not None
    assert model.cells[("B", first)].entry.score == AreaScore.not_assessable("image_quality")
    assert model.cells[("A", first)].entry is not None
    assert model.cells[("A", first)].entry.score == AreaScore.scored(3)
    wait_saved(qtbot, window)
    window.close()
