"""The score writer: one thread, entries committed in order and acknowledged on the UI thread;
a failed entry is reported (and the next ones still go in, in order), then retried; a locked
session pauses writing without losing anything; flush waits for the acknowledgements."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from scorer.core.methods import Area, get_method
from scorer.core.reads import AreaScore
from scorer.gui.score_writer import ScoreWriter, WriteEntry
from scorer.gui.scoring_grid import GridModel, ScoringGrid, ScoringSample, build_scoring_sample
from scorer.workspace import ScorerError

SVH = get_method("svh")
A1, A2, A3 = (d.area for d in SVH.areas[:3])
FOOT = Area("LF", "MTP1", "ERO")
DISK_FULL = "the disk is full or failing: nothing was saved. Free space and try again."


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScoringSample]:
    folder = tmp_path_factory.mktemp("writer")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SCORER_DATA_DIR", str(folder / "data"))
        env.setenv("SCORER_CONFIG", str(folder / "no-site-config.toml"))
        env.delenv("SCORER_DB", raising=False)
        built = build_scoring_sample(folder / "trial", patients=4, visits=2)
    yield built
    built.workspace.close()


@pytest.fixture
def writers() -> Iterator[Callable[..., ScoreWriter]]:
    made: list[ScoreWriter] = []

    def make(facade: Any, session: Any) -> ScoreWriter:
        w = ScoreWriter(facade, session)
        made.append(w)
        return w

    yield make
    for w in made:
        w.resume()
        w.stop(10)


def read_codes(sample: ScoringSample, n: int) -> dict[str, str]:
    return dict(sample.workspace.reading.open_case(sample.session, sample.cases[n]).reads)


def scores(sample: ScoringSample, code: str) -> dict[Area, AreaScore]:
    return sample.workspace.reading.get_read(sample.session, code).scores


def set_trial_locked(sample: ScoringSample, locked: bool) -> None:
    """Lock the trial's reading behind the facade (as a coordinator's lock would)."""
    path = sample.workspace.store.location.sqlite_path
    con = sqlite3.connect(path)
    try:
        with con:
            con.execute("UPDATE trials SET locked = ?", (int(locked),))
    finally:
        con.close()


class FlakyFacade:
    """The real facade, except that chosen calls raise as a full disk would."""

    def __init__(self, real: Any, fail_calls: set[int]) -> None:
        self.real = real
        self.fail_calls = fail_calls
        self.calls = 0
        self.threads: set[int] = set()

    def _maybe_fail(self) -> None:
        self.calls += 1
        self.threads.add(threading.get_ident())
        if self.calls in self.fail_calls:
            raise ScorerError(DISK_FULL)

    def set_scores(
        self, s: Any, code: str, values: Mapping[Area, AreaScore], *a: Any, **kw: Any
    ) -> Any:
        self._maybe_fail()
        return self.real.set_scores(s, code, values, *a, **kw)

    def clear_scores(
        self, s: Any, code: str, areas: list[Area], change_reason: str = "", **kw: Any
    ) -> Any:
        self._maybe_fail()
        return self.real.clear_scores(s, code, areas, change_reason, **kw)

    def set_note(self, s: Any, code: str, note: str) -> Any:
        self._maybe_fail()
        return self.real.set_note(s, code, note)

    def raise_flag(
        self, s: Any, case_code: str, message: str, visit: Any = None, films: Any = ()
    ) -> int:
        return int(self.real.raise_flag(s, case_code, message, visit, films))


def test_entries_are_committed_and_acknowledged_in_submission_order(
    qtbot: QtBot, sample: ScoringSample, writers: Callable[..., ScoreWriter]
) -> None:
    code = read_codes(sample, 0)["A"]
    facade = FlakyFacade(sample.workspace.reading, set())
    writer = writers(facade, sample.session)
    acks: list[tuple[str, Area, int]] = []
    writer.acknowledged.connect(lambda c, a, v: acks.append((c, a, v)))
    submitted: list[Area] = []
    last: dict[Area, AreaScore | None] = {}
    for i in range(30):
        area = (A1, A2, A3, FOOT)[i % 4]
        if area == FOOT:
            value: AreaScore | None = AreaScore.from_sides([i % 6, (i + 1) % 6])
        else:
            value = None if i == 25 else AreaScore.scored(i % 5)
        writer.submit(WriteEntry(code, {area: value}))
        submitted.append(area)
        last[area] = value
    assert writer.pending_count == 30
    assert writer.flush(30)
    assert [a for _c, a, _v in acks] == submitted
    versions = [v for _c, _a, v in acks]
    assert versions == sorted(versions)
    assert facade.threads and threading.get_ident() not in facade.threads  # off the UI thread
    assert len(facade.threads) == 1  # one writer thread
    assert scores(sample, code) == {a: v for a, v in last.items() if v is not None}


def test_a_failed_entry_is_reported_and_the_next_still_go_in_order(
    qtbot: QtBot, sample: ScoringSample, writers: Callable[..., ScoreWriter]
) -> None:
    codes = read_codes(sample, 1)
    facade = FlakyFacade(sample.workspace.reading, {2})
    writer = writers(facade, sample.session)
    case = GridModel(SVH, codes, case_code=sample.cases[1], submit=writer.submit)
    grid = ScoringGrid(case, writer)
    qtbot.addWidget(grid)
    grid.show()
    outcomes: list[tuple[str, Area]] = []
    writer.acknowledged.connect(lambda _c, a, _v: outcomes.append(("saved", a)))
    writer.failed.connect(lambda _c, a, _m: outcomes.append(("failed", a)))
    case.type_digit(1)  # A1
    case.type_digit(2)  # A2: the disk is full
    case.type_digit(3)  # A3
    assert writer.flush(20)
    assert outcomes == [("saved", A1), ("failed", A2), ("saved", A3)]
    assert [case.cell("A", a).save for a in (A1, A2, A3)] == ["saved", "failed", "saved"]
    assert case.cell("A", A2).error == DISK_FULL
    assert case.entry("A", A2) is not None  # the entry stays on screen, red
    assert grid.retry_button.isVisible()
    assert "1 not saved" in grid.save_label.text()
    assert scores(sample, codes["A"]) == {A1: AreaScore.scored(1), A3: AreaScore.scored(3)}
    # Retry: now the disk has room.
    grid.retry()
    assert writer.flush(20)
    assert case.failed == 0 and case.pending == 0
    assert not grid.retry_button.isVisible()
    assert scores(sample, codes["A"]) == {
        A1: AreaScore.scored(1),
        A2: AreaScore.scored(2),
        A3: AreaScore.scored(3),
    }


def test_a_locked_trial_fails_the_entries_until_unlocked_then_retry_saves_them(
    qtbot: QtBot, sample: ScoringSample, writers: Callable[..., ScoreWriter]
) -> None:
    codes = read_codes(sample, 2)
    writer = writers(sample.workspace.reading, sample.session)
    case = GridModel(SVH, codes, case_code=sample.cases[2], submit=writer.submit)
    messages: list[str] = []
    writer.failed.connect(lambda _c, _a, m: messages.append(m))
    set_trial_locked(sample, True)
    try:
        case.type_digit(4)
        case.rest_of_region_zero()
        assert writer.flush(20)
    finally:
        set_trial_locked(sample, False)
    assert messages and all("locked" in m for m in messages)
    assert case.failed == 31 and case.pending == 0  # every LH area, erosion and JSN
    assert scores(sample, codes["A"]) == {}
    assert case.retry_failed() == 31
    assert writer.flush(20)
    assert case.failed == 0
    stored = scores(sample, codes["A"])
    assert len(stored) == 31 and stored[A1] == AreaScore.scored(4)


def test_a_locked_session_pauses_writing_and_loses_nothing(
    qtbot: QtBot, sample: ScoringSample, writers: Callable[..., ScoreWriter]
) -> None:
    ws = sample.workspace
    session = ws.accounts.login(sample.reader, sample.password)
    codes = dict(ws.reading.open_case(session, sample.cases[3]).reads)
    writer = writers(ws.reading, session)
    case = GridModel(SVH, codes, submit=writer.submit)
    ws.accounts.lock(session)  # as after fifteen idle minutes
    with qtbot.waitSignal(writer.sessionLocked, timeout=10_000) as locked:
        case.type_digit(2)
        case.type_digit(1)
    assert "locked" in str(locked.args[0])
    assert writer.paused and not writer.flush(0.2)
    assert writer.pending_count == 2 and case.pending == 2 and case.failed == 0
    ws.accounts.unlock(session, sample.password)
    writer.resume()
    assert writer.flush(20)
    assert case.pending == 0 and case.failed == 0
    assert scores(sample, codes["A"]) == {A1: AreaScore.scored(2), A2: AreaScore.scored(1)}


def test_an_acknowledged_score_is_already_committed(
    qtbot: QtBot, sample: ScoringSample, writers: Callable[..., ScoreWriter]
) -> None:
    """The acknowledgement comes after the commit: another connection to the file sees the
    score when the grid hears of it (a crash after that loses nothing)."""
    code = read_codes(sample, 0)["B"]
    writer = writers(sample.workspace.reading, sample.session)
    path = sample.workspace.store.location.sqlite_path
    seen: list[tuple[Area, Any]] = []

    def on_disk(_code: str, area: Area, _version: int) -> None:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = con.execute(
                "SELECT s.score, s.sides FROM area_scores s JOIN reads r ON r.id = s.read_id "
                "WHERE r.code = ? AND s.region = ? AND s.joint = ? AND s.feature = ?",
                (code, area.region, area.joint, area.feature),
            ).fetchone()
        finally:
            con.close()
        seen.append((area, row))

    writer.acknowledged.connect(on_disk)
    writer.submit(WriteEntry(code, {A1: AreaScore.scored(3)}))
    writer.submit(WriteEntry(code, {FOOT: AreaScore.from_sides([4, 1])}))
    assert writer.flush(20)
    assert seen == [(A1, (3, None)), (FOOT, (5, "[4, 1]"))]


class GatedFacade:
    """Holds every write until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()

    def set_scores(
        self, s: Any, code: str, values: Mapping[Area, AreaScore], *a: Any, **kw: Any
    ) -> Any:
        self.gate.wait(10)
        return [type("Ack", (), {"area": a, "version": 1})() for a in values]

    def clear_scores(self, *a: Any) -> Any:
        raise AssertionError("not used")

    def set_note(self, *a: Any) -> None:
        raise AssertionError("not used")

    def raise_flag(self, *a: Any) -> int:
        raise AssertionError("not used")


def test_flush_waits_for_the_acknowledgements_and_stop_ends_the_thread(
    qtbot: QtBot, writers: Callable[..., ScoreWriter]
) -> None:
    facade = GatedFacade()
    writer = writers(facade, None)
    writer.submit(WriteEntry("R1", {A1: AreaScore.scored(1)}))
    assert not writer.flush(0.2)
    assert writer.pending_count == 1
    facade.gate.set()
    assert writer.flush(5)
    assert writer.stop(5)
    assert not writer.running
    with pytest.raises(RuntimeError, match="stopped"):
        writer.submit(WriteEntry("R1", {A1: AreaScore.scored(2)}))
