"""Reader drift through the services (issue 30, item 4): the charts from signed reads, alerts
raised once and audited, acknowledged with a note, rights, and the trail verifying after."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from scorer.core.methods import get_method
from scorer.core.reads import AreaScore, Read
from scorer.core.readscsv import format_reads_csv
from scorer.store import repository as repo
from scorer.store.drift_rows import drift_alerts_of
from scorer.workspace import (
    DriftReport,
    InvalidInput,
    NotFound,
    PermissionDenied,
    UserSession,
    Workspace,
)

PASSWORD = "Sunflower-Meadow-7"
TRIAL = "DRIFT"
PATIENTS = 60
SHIFT_FROM = 10  # patient index from which reader "carol" scores higher
SHIFT = 8


def _read(patient: int, reader: str, total: int) -> Read:
    """A signed primary read whose SvH status total is ``total`` (that many areas scored 1)."""
    areas = get_method("svh").areas
    return Read(
        trial=TRIAL,
        patient=f"P{patient:03d}",
        visit="W0",
        reader=reader,
        method="svh",
        read_type="primary",
        read_id=f"{reader}-{patient:03d}",
        status="signed",
        visit_date=date(2024, 1, 1),
        scores={d.area: AreaScore.scored(1 if i < total else 0) for i, d in enumerate(areas)},
    )


def _reads() -> list[Read]:
    out = []
    for p in range(PATIENTS):
        base = 10 + (p * 7) % 13
        out.append(_read(p, "alice", base))
        out.append(_read(p, "bob", base + (1 if p % 2 else -1)))
        out.append(_read(p, "carol", base + (SHIFT if p >= SHIFT_FROM else 0)))
    return out


class Setup:
    def __init__(self, ws: Workspace, admin: UserSession) -> None:
        self.ws = ws
        self.admin = admin
        self.coord = self.user("cora", "coordinator")
        self.monitor = self.user("mona", "monitor")

    def user(self, name: str, role: str) -> UserSession:
        self.ws.accounts.add_user(self.admin, name, name.title(), role, "Temporary-pass-0")
        s = self.ws.accounts.login(name, "Temporary-pass-0")
        self.ws.accounts.change_password(s, "Temporary-pass-0", PASSWORD)
        return s


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    ws = Workspace.initialize("ada", "Ada Admin", PASSWORD, db=str(tmp_path / "d.db"))
    d = Setup(ws, ws.accounts.login("ada", PASSWORD))
    ws.trials.create_trial(d.coord, TRIAL, "Drift", visits=[("W0", 0)])
    ws.exchange.import_reads(d.coord, TRIAL, format_reads_csv(_reads()))
    yield d
    ws.close()


def test_the_drifting_reader_signals_up(setup: Setup) -> None:
    report = setup.ws.drift.drift(setup.coord, TRIAL)
    # Carol's +8 is over 3 SDs of alice's and bob's (who differ by ±1): she is set aside, so
    # the SD and alice's and bob's comparisons are theirs alone.
    assert report.sigma_source == "current reads, carol set aside as far off the others"
    assert report.sigma == pytest.approx(0.5**0.5)
    by = {r.reader: r for r in report.readers}
    assert set(by) == {"alice", "bob", "carol"}
    carol = by["carol"]
    assert carol.reads == carol.cases == PATIENTS and len(carol.differences) == PATIENTS
    assert carol.differences[0] == 0.5  # base − mean(alice base, bob base − 1)
    ups = [n for n, d in carol.signals if d == "up"]
    assert ups and ups[0] > SHIFT_FROM  # not before the shift
    assert carol.status.startswith("signalled up")
    assert "far off the others" in carol.status
    assert by["alice"].signals == by["bob"].signals == ()
    assert len(carol.upper) == len(carol.lower) == PATIENTS


def test_alerts_are_raised_once_audited_and_acknowledged(setup: Setup) -> None:
    ws, coord = setup.ws, setup.coord
    assert ws.drift.drift(coord, TRIAL).alerts == ()  # looking raises nothing
    first = ws.drift.check(coord, TRIAL)
    carol = [a for a in first.alerts if a.reader == "carol"]
    assert [(a.measure, a.direction) for a in carol] == [("difference", "up")]
    assert carol[0].limit == first.h and carol[0].statistic > first.h
    assert ws.drift.check(coord, TRIAL).alerts == first.alerts  # raised once
    with pytest.raises(InvalidInput, match="note is required"):
        ws.drift.acknowledge(coord, TRIAL, carol[0].alert, "  ")
    ws.drift.acknowledge(coord, TRIAL, carol[0].alert, "spoke to carol; re-calibrating")
    with pytest.raises(InvalidInput, match="acknowledged already"):
        ws.drift.acknowledge(coord, TRIAL, carol[0].alert, "again")
    with pytest.raises(NotFound, match="no drift alert 999"):
        ws.drift.acknowledge(coord, TRIAL, 999, "x")
    after = ws.drift.check(coord, TRIAL)
    # Carol's later crossings of the same run are not raised again unless after the one
    # acknowledged; each new alert is for a later read than the acknowledged one.
    acked = next(a for a in after.alerts if a.alert == carol[0].alert)
    assert acked.acknowledged_by == "cora" and acked.note.startswith("spoke to carol")
    later = [a for a in after.alerts if a.reader == "carol" and a.alert != acked.alert]
    assert all(a.case > acked.case for a in later)
    with ws.store.read() as db:
        actions = [a.action for a in repo.audit_rows(db)]
        assert actions.count("drift.acknowledge") == 1
        assert actions.count("drift.alert") == len(after.alerts)
        assert len(drift_alerts_of(db, repo.trial_by_code(db, TRIAL))) == len(after.alerts)
    assert ws.verify().ok


def test_rights_monitor_reads_only(setup: Setup) -> None:
    ws = setup.ws
    setup.ws.drift.check(setup.coord, TRIAL)
    seen = ws.drift.drift(setup.monitor, TRIAL)
    assert seen.alerts and seen.readers
    with pytest.raises(PermissionDenied):
        ws.drift.check(setup.monitor, TRIAL)
    with pytest.raises(PermissionDenied):
        ws.drift.acknowledge(setup.monitor, TRIAL, seen.alerts[0].alert, "x")


def test_no_reads_no_chart(tmp_path: Path) -> None:
    ws = Workspace.initialize("ada", "Ada Admin", PASSWORD, db=str(tmp_path / "e.db"))
    d = Setup(ws, ws.accounts.login("ada", PASSWORD))
    ws.trials.create_trial(d.coord, "EMPTY", "Empty", visits=[("W0", 0)])
    report = ws.drift.drift(d.coord, "EMPTY")
    assert (report.sigma, report.sigma_source, report.readers) == (None, "none yet", ())
    ws.close()


def test_cases_of_several_visits_are_charted_as_one_value_each(tmp_path: Path) -> None:
    """A patient's visits read together are one case: the chart has one value per case (the
    mean of its visits' differences), and the within-case correlation is estimated from the
    trial's cases once there are enough of them."""
    ws = Workspace.initialize("ada", "Ada Admin", PASSWORD, db=str(tmp_path / "v.db"))
    d = Setup(ws, ws.accounts.login("ada", PASSWORD))
    visits = [("W0", 0), ("W24", 24), ("W52", 52)]
    ws.trials.create_trial(d.coord, "VISITS", "Visits", visits=visits)
    reads = []
    for p in range(12):
        for v, (label, _) in enumerate(visits):
            base = 10 + (p * 7) % 13 + v
            opinion = 1 if p % 3 else -1  # a per-patient part shared by the patient's visits
            for reader, total in (("alice", base), ("bob", base + opinion + (v == 1))):
                reads.append(
                    replace(
                        _read(p, reader, total),
                        trial="VISITS",
                        visit=label,
                        read_id=f"{reader}-{p:03d}-{label}",
                        visit_date=date(2024, 1, 1 + v),
                    )
                )
    ws.exchange.import_reads(d.coord, "VISITS", format_reads_csv(reads))
    report = ws.drift.drift(d.coord, "VISITS")
    bob = next(r for r in report.readers if r.reader == "bob")
    assert (bob.reads, bob.cases, len(bob.differences)) == (36, 12, 36)
    assert len(bob.case_differences) == len(bob.upper) == 12
    first = bob.differences[:3]
    assert bob.case_differences[0] == pytest.approx(sum(x or 0.0 for x in first) / 3, abs=1e-4)
    assert report.rho_source == "current cases" and 0.0 < report.rho < 1.0
    ws.close()


VISITS = [("W0", 0), ("W24", 24), ("W52", 52)]
WRONG_CASES = 3  # cases the grossly wrong reader signs


def _visit_read(patient: int, visit: int, reader: str, total: int, *, wrong: bool = False) -> Read:
    """A signed primary read of one of VISITS of a 3-visit trial "WRONG"; ``wrong``: every area
    scored at its maximum (the outsider's grossly wrong reader) instead of ``total``."""
    read = replace(
        _read(patient, reader, total),
        trial="WRONG",
        visit=VISITS[visit][0],
        read_id=f"{reader}-{patient:03d}-{VISITS[visit][0]}",
        visit_date=date(2024, 1, 1 + visit),
    )
    if wrong:
        areas = get_method("svh").areas
        read = replace(read, scores={d.area: AreaScore.scored(d.max) for d in areas})
    return read


def _good_reads(patients: int) -> list[Read]:
    """Two unbiased readers with a few units of disagreement on patients whose totals grow
    across visits."""
    out = []
    for p in range(patients):
        for v in range(len(VISITS)):
            truth = 10 + (p * 7) % 23 + 2 * v
            out.append(_visit_read(p, v, "alice", truth + (p * 5 + v * 3) % 5 - 2))
            out.append(_visit_read(p, v, "bob", truth + (p * 3 + v * 7) % 5 - 2))
    return out


def _wrong_reads(patients: int) -> list[Read]:
    return [
        _visit_read(p, v, "carol", 0, wrong=True)
        for p in range(patients)
        for v in range(len(VISITS))
    ]


def _wrong_reader_trial(tmp_path: Path) -> Setup:
    ws = Workspace.initialize("ada", "Ada Admin", PASSWORD, db=str(tmp_path / "w.db"))
    d = Setup(ws, ws.accounts.login("ada", PASSWORD))
    ws.trials.create_trial(d.coord, "WRONG", "Wrong reader", visits=VISITS)
    return d


def _alerts_by_reader(report: DriftReport) -> dict[str, list[tuple[str, int]]]:
    out: dict[str, list[tuple[str, int]]] = {}
    for a in report.alerts:
        out.setdefault(a.reader, []).append((a.direction, a.case))
    return out


def test_a_grossly_wrong_reader_does_not_hide_without_a_frozen_sdc(tmp_path: Path) -> None:
    """The outsider's first finding: a reader scoring every area at its maximum on 3 cases,
    the SDC not frozen. The SD from the current reads used to take in the wrong reader's
    totals (2.4 → 154 on the demo) and hid them until case 10; the wrong reader is now set
    aside from the SD and from the others' comparisons, alarms at their first case, and the
    good readers raise nothing."""
    d = _wrong_reader_trial(tmp_path)
    d.ws.exchange.import_reads(
        d.coord, "WRONG", format_reads_csv(_good_reads(12) + _wrong_reads(WRONG_CASES))
    )
    report = d.ws.drift.check(d.coord, "WRONG")
    assert report.sigma_source == "current reads, carol set aside as far off the others"
    assert report.sigma is not None and report.sigma < 3  # alice's and bob's spread only
    assert report.rho_source == "current cases" and report.rho < 1
    # One alert, for the chart's latest crossing: it crosses at every one of carol's cases.
    assert _alerts_by_reader(report) == {"carol": [("up", WRONG_CASES)]}
    by = {r.reader: r for r in report.readers}
    assert by["carol"].signals[0] == (1, "up")
    assert by["alice"].signals == by["bob"].signals == ()
    assert len(by["carol"].case_differences) == WRONG_CASES
    d.ws.close()


def test_one_wrong_reader_sets_off_no_alert_on_the_good_ones_with_a_frozen_sdc(
    tmp_path: Path,
) -> None:
    """The outsider's second finding: with the SDC frozen, a reader scoring the maximum used
    to set off "down" alerts on both good readers (their difference was from a mean holding
    the wrong reader's totals). The wrong reader is left out of the others' comparisons."""
    d = _wrong_reader_trial(tmp_path)
    d.ws.exchange.import_reads(d.coord, "WRONG", format_reads_csv(_good_reads(12)))
    frozen = d.ws.adjudication.freeze_sdc(
        d.coord, "WRONG", "after the good reads", PASSWORD, username="cora"
    )
    d.ws.exchange.import_reads(d.coord, "WRONG", format_reads_csv(_wrong_reads(12)))
    report = d.ws.drift.check(d.coord, "WRONG")
    assert report.sigma_source == "frozen SDC" and frozen > 0
    assert _alerts_by_reader(report) == {"carol": [("up", 12)]}
    by = {r.reader: r for r in report.readers}
    assert by["carol"].signals[0] == (1, "up")
    assert by["alice"].signals == by["bob"].signals == ()
    assert "far off the others" in by["carol"].status
    assert d.ws.verify().ok
    d.ws.close()


def test_two_readers_cannot_be_told_apart(tmp_path: Path) -> None:
    """With only two readers nothing tells which is wrong: neither is set aside, the SD's source
    says it would be inflated (it takes in the wrong reader's totals), and the two charts show
    the disagreement only slowly, mirror images of each other: both cross at case 15."""
    d = _wrong_reader_trial(tmp_path)
    good = [r for r in _good_reads(15) if r.reader == "alice"]
    d.ws.exchange.import_reads(d.coord, "WRONG", format_reads_csv(good + _wrong_reads(15)))
    report = d.ws.drift.check(d.coord, "WRONG")
    assert report.sigma_source.startswith("current reads of two readers")
    assert report.sigma is not None and report.sigma > 100
    by = {r.reader: r for r in report.readers}
    assert all("far off" not in r.status for r in report.readers)
    assert by["alice"].signals == ((15, "down"),) and by["carol"].signals == ((15, "up"),)
    d.ws.close()
