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
from scorer.workspace import InvalidInput, NotFound, PermissionDenied, UserSession, Workspace

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
    assert report.sigma_source == "current reads"
    assert report.sigma is not None and report.sigma > 0
    by = {r.reader: r for r in report.readers}
    assert set(by) == {"alice", "bob", "carol"}
    carol = by["carol"]
    assert carol.reads == carol.cases == PATIENTS and len(carol.differences) == PATIENTS
    assert carol.differences[0] == 0.5  # base − mean(alice base, bob base − 1)
    ups = [n for n, d in carol.signals if d == "up"]
    assert ups and ups[0] > SHIFT_FROM  # not before the shift
    assert carol.status.startswith("signalled up")
    assert all(d == "down" for r in ("alice", "bob") for _, d in by[r].signals)
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
