"""Reader drift: each reader's status totals against the other readers' as reads are signed, a
CUSUM chart with its limit, re-read and calibration agreement, and alerts raised once.

When alerts are evaluated: by :meth:`DriftService.check`, which the coordinator's desk calls on
each refresh and ``scorer drift`` calls when a coordinator runs it; not in the signing
transaction. Signing stays as quick as it was (the chart needs every signed read of the trial),
and a reader's own operation never computes from other readers' reads. An alert records the
signed-case count at which the chart crossed (in the table's ``reads`` column), so the delay to
its raising is the time until the coordinator next looks, not a loss of information.

Counted in cases: the chart runs on each signed case's mean difference (a case is a patient's
visits read together), standardised for the case's visit count and the within-case correlation
of the differences, estimated from the trial's cases (scorer.stats.drift says why).

A grossly wrong reader: with three or more readers, a reader far off the others
(scorer.stats.drift.far_off_readers) is set aside from σ, ρ and the other readers' comparisons,
keeping their own chart; with two readers nothing tells which is wrong (the SD's source says so).

Who sees it: the coordinator (charts, alerts, acknowledging) and the monitor (charts and alerts,
read-only). Nothing in it names a patient, a visit, a date or an image: each series is indexed
by the reader's signed-read or signed-case count only, so it is blinded enough for the monitor.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from scorer.core.methods import get_method
from scorer.core.totals import status_totals
from scorer.services.errors import InvalidInput, NotFound
from scorer.services.lookups import find_trial, protocol_of, rules_of
from scorer.services.operation import Op, Service, operation
from scorer.services.validation import check_text
from scorer.stats.agreement import SDC_Z
from scorer.stats.drift import (
    DRIFT_H,
    DRIFT_K,
    RHO_UNKNOWN,
    cusum,
    far_off_readers,
    pooled_read_sd,
    running_summary,
    standardise_cases,
    within_case_correlation,
)
from scorer.store import repository as repo
from scorer.store.drift_rows import drift_alerts_of, signed_reads_in_order
from scorer.store.schema import DriftAlert

#: Read types whose totals are a reader's primary assessment (compared with the others').
PRIMARY_TYPES = ("primary", "imported")
DIFFERENCE = "difference"


def _round(values: Any) -> tuple[float | None, ...]:
    return tuple(None if not math.isfinite(v) else round(float(v), 4) for v in values)


@dataclass(frozen=True)
class ReaderDrift:
    """One reader's drift: per signed primary read that other readers also read (in the order
    signed) the difference of its status total from their mean, its running mean and SD; per
    signed case (a patient's visits read together) the mean of those differences, and the
    CUSUM's upper and lower sums over the cases (in SDs of a case mean) and where it signalled
    (case number, direction); re-read |differences| (re-read − own read) and differences from
    the calibration reference, each with its running mean; and the status now."""

    reader: str
    reads: int
    cases: int
    differences: tuple[float | None, ...]
    case_differences: tuple[float | None, ...]
    mean: tuple[float | None, ...]
    sd: tuple[float | None, ...]
    upper: tuple[float | None, ...]
    lower: tuple[float | None, ...]
    signals: tuple[tuple[int, str], ...]
    reread_abs: tuple[float | None, ...]
    reread_mean_abs: tuple[float | None, ...]
    calibration: tuple[float | None, ...]
    calibration_mean: tuple[float | None, ...]
    status: str

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["signals"] = [{"case": n, "direction": d} for n, d in self.signals]
        return out


@dataclass(frozen=True)
class DriftAlertView:
    """A drift alert: who, what crossed, how far (statistic and limit in SDs), at which of the
    reader's signed cases, when raised, and the acknowledgement (None until acknowledged)."""

    alert: int
    reader: str
    measure: str
    direction: str
    statistic: float
    limit: float
    case: int
    raised_at: str
    acknowledged_by: str | None
    acknowledged_at: str | None
    note: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DriftReport:
    """A trial's reader drift: one read's error SD σ (status-total units) and where it came
    from ("frozen SDC", "current reads" or "none yet"), the within-case correlation ρ of the
    differences and where it came from ("current cases" or "assumed 1 (too few cases)"), the
    CUSUM's k and h (in SDs of a case's mean difference), each reader's series and the alerts."""

    trial: str
    sigma: float | None
    sigma_source: str
    rho: float
    rho_source: str
    k: float
    h: float
    readers: tuple[ReaderDrift, ...]
    alerts: tuple[DriftAlertView, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial": self.trial,
            "sigma": None if self.sigma is None else round(self.sigma, 4),
            "sigma_source": self.sigma_source,
            "rho": round(self.rho, 4),
            "rho_source": self.rho_source,
            "k": self.k,
            "h": self.h,
            "readers": [r.to_dict() for r in self.readers],
            "alerts": [a.to_dict() for a in self.alerts],
        }


@dataclass(frozen=True)
class _Point:
    reader: str
    patient: int
    visit: int
    read_type: str
    total: float | None
    case: tuple[int | str, ...]


def _points(db: Any, t: Any) -> list[_Point]:
    proto = protocol_of(t)
    method_id = proto.methods[0]
    method = get_method(method_id)
    rules = rules_of(proto)
    names: dict[int, str] = {}
    out = []
    for r in signed_reads_in_order(db, t):
        if r.method != method_id:
            continue
        names.setdefault(r.reader_id, repo.user_by_id(db, r.reader_id).username)
        total = status_totals(repo.to_core_read(db, r, real_ids=False), method, rules).total
        # A read from a worklist belongs to its case; an imported one to its patient's reads
        # of that type (the visits a reader would have read together).
        case = (r.case_id,) if r.case_id is not None else ("patient", r.patient_id, r.read_type)
        out.append(_Point(names[r.reader_id], r.patient_id, r.visit_id, r.read_type, total, case))
    return out


def _frozen_sigma(db: Any, t: Any) -> float | None:
    """One read's error SD from the frozen SDC (SDC = z·σ/√k, Bruynesteyn 2005, so σ =
    SDC·√k/z, k and the level from the freeze's audit row); None while it is not frozen."""
    proto = protocol_of(t)
    if proto.frozen_sdc is None or proto.frozen_sdc <= 0:
        return None
    row = repo.last_setting_change(db, t.id, "frozen_sdc")
    basis = json.loads(row.new).get("basis", {}) if row is not None else {}
    k = int(basis.get("k", 1))
    z = SDC_Z[int(basis.get("level", proto.sdc_level))]
    return float(proto.frozen_sdc) * math.sqrt(k) / z


def _sigma(
    frozen: float | None, primary: dict[tuple[int, int], dict[str, float]], far: frozenset[str]
) -> tuple[float | None, str]:
    """One read's error SD and where it came from: the frozen SDC's, else the pooled SD of the
    readers' totals around each patient-visit's mean, leaving out the readers set aside as far
    off the others (scorer.stats.drift.far_off_readers): one grossly wrong reader would
    otherwise inflate it and hide themself. With two readers nothing tells which is wrong, and
    the source says so."""
    if frozen is not None:
        return frozen, "frozen SDC"
    sigma = pooled_read_sd(list(primary.values()), far)
    if sigma is None:
        return None, "none yet"
    readers = {r for totals in primary.values() for r in totals} - far
    if far:
        return sigma, f"current reads, {', '.join(sorted(far))} set aside as far off the others"
    if len(readers) == 2:
        return sigma, "current reads of two readers: one far off would inflate it; freeze the SDC"
    return sigma, "current reads"


class DriftService(Service):
    """Reader drift charts, their alerts (raised once, audited) and acknowledgements."""

    @operation("coordinator", "monitor")
    def drift(self, op: Op, trial: str) -> DriftReport:
        """Each reader's drift: differences from the other readers, CUSUM chart and limit,
        re-read and calibration agreement, and the trial's drift alerts."""
        return self._report(op.db, trial)

    @operation("coordinator", write=True)
    def check(self, op: Op, trial: str) -> DriftReport:
        """Raise an alert (audited) for each reader whose chart crossed its limit and who has
        no open alert in that direction, nor an alert for that crossing already."""
        tx = op.tx
        report = self._report(tx.session, trial)
        t = find_trial(tx.session, trial)
        existing = drift_alerts_of(tx.session, t)
        users = {u.username: u.id for u in repo.all_users(tx.session)}
        raised = False
        for r in report.readers:
            for direction in ("up", "down"):
                crossings = [n for n, d in r.signals if d == direction]
                if not crossings:
                    continue
                last = crossings[-1]
                mine = [
                    a
                    for a in existing
                    if a.reader_id == users[r.reader]
                    and a.measure == DIFFERENCE
                    and a.direction == direction
                ]
                if any(a.acknowledged_at is None or a.reads >= last for a in mine):
                    continue
                sums = r.upper if direction == "up" else r.lower
                statistic = float(sums[last - 1] or 0.0)
                alert = DriftAlert(
                    trial_id=t.id,
                    reader_id=users[r.reader],
                    measure=DIFFERENCE,
                    direction=direction,
                    statistic=round(statistic, 4),
                    limit=report.h,
                    reads=last,  # the column holds the signed-case count
                    raised_at=tx.now,
                )
                tx.session.add(alert)
                tx.session.flush()
                tx.audit(
                    "drift.alert",
                    "drift_alert",
                    alert.id,
                    trial_id=t.id,
                    new={
                        "reader": r.reader,
                        "measure": DIFFERENCE,
                        "direction": direction,
                        "statistic": alert.statistic,
                        "limit": alert.limit,
                        "case": last,
                        "sigma": report.sigma,
                        "sigma_source": report.sigma_source,
                    },
                )
                raised = True
        return self._report(tx.session, trial) if raised else report

    @operation("coordinator", write=True)
    def acknowledge(self, op: Op, trial: str, alert_id: int, note: str) -> None:
        """The coordinator acknowledges a drift alert with a note of what was done (audited)."""
        if not note.strip():
            raise InvalidInput("a note is required to acknowledge a drift alert")
        check_text(note, "note")
        tx = op.tx
        t = find_trial(tx.session, trial)
        alert = tx.session.get(DriftAlert, alert_id)
        if alert is None or alert.trial_id != t.id:
            raise NotFound(f"no drift alert {alert_id} in trial {trial}")
        if alert.acknowledged_at is not None:
            raise InvalidInput(f"drift alert {alert_id} is acknowledged already")
        alert.acknowledged_by = op.user.user_id
        alert.acknowledged_at = tx.now
        alert.note = note.strip()
        tx.audit(
            "drift.acknowledge",
            "drift_alert",
            alert_id,
            trial_id=t.id,
            new={"note": alert.note},
        )

    def _report(self, db: Any, trial: str) -> DriftReport:
        t = find_trial(db, trial)
        points = _points(db, t)
        primary: dict[tuple[int, int], dict[str, float]] = defaultdict(dict)
        for p in points:
            if p.read_type in PRIMARY_TYPES and p.total is not None:
                primary[(p.patient, p.visit)][p.reader] = p.total
        frozen = _frozen_sigma(db, t)
        far = far_off_readers(list(primary.values()), frozen)
        sigma, source = _sigma(frozen, primary, far)
        readers = sorted({p.reader for p in points if p.read_type in PRIMARY_TYPES})
        compared = {name: _compared_cases(name, points, primary, far) for name in readers}
        estimated = within_case_correlation(
            _centred([cases for name, cases in compared.items() if name not in far])
        )
        rho, rho_source = (
            (estimated, "current cases")
            if estimated is not None
            else (RHO_UNKNOWN, "assumed 1 (too few cases)")
        )
        names = {u.id: u.username for u in repo.all_users(db)}
        alerts = tuple(
            DriftAlertView(
                alert=a.id,
                reader=names[a.reader_id],
                measure=a.measure,
                direction=a.direction,
                statistic=a.statistic,
                limit=a.limit,
                case=a.reads,
                raised_at=a.raised_at,
                acknowledged_by=names[a.acknowledged_by] if a.acknowledged_by else None,
                acknowledged_at=a.acknowledged_at,
                note=a.note,
            )
            for a in drift_alerts_of(db, t)
        )
        reference = protocol_of(t).calibration_reference
        return DriftReport(
            trial=trial,
            sigma=sigma,
            sigma_source=source,
            rho=rho,
            rho_source=rho_source,
            k=DRIFT_K,
            h=DRIFT_H,
            readers=tuple(
                _reader_drift(
                    name, points, primary, compared[name], (sigma, rho), reference, name in far
                )
                for name in readers
            ),
            alerts=alerts,
        )


#: One case's compared visits: (difference from the others' mean, number of others) each.
_Case = list[tuple[float, int]]


def _compared_cases(
    reader: str,
    points: list[_Point],
    primary: dict[tuple[int, int], dict[str, float]],
    far: frozenset[str],
) -> list[_Case]:
    """The reader's signed primary cases that other readers also read, in the order their first
    read was signed, each as its visits' differences from the other readers' mean. Readers set
    aside as far off the others are left out of that mean (one grossly wrong reader would
    otherwise set off every other reader's chart); a visit only they read with this reader is
    not compared."""
    cases: dict[tuple[int | str, ...], _Case] = {}
    for p in points:
        if p.reader != reader or p.read_type not in PRIMARY_TYPES or p.total is None:
            continue
        rest = [
            v
            for name, v in primary[(p.patient, p.visit)].items()
            if name != reader and name not in far
        ]
        if rest:
            cases.setdefault(p.case, []).append((p.total - sum(rest) / len(rest), len(rest)))
    return list(cases.values())


def _centred(by_reader: list[list[_Case]]) -> list[list[float]]:
    """Each reader's cases' differences less that reader's mean difference, all readers' cases
    together: the within-case correlation is of a reader's differences about their own level,
    so one reader's bias does not pass for between-case spread (which drove ρ to 1)."""
    out: list[list[float]] = []
    for cases in by_reader:
        values = [d for case in cases for d, _ in case]
        if not values:
            continue
        level = sum(values) / len(values)
        out.extend([d - level for d, _ in case] for case in cases)
    return out


def _case_chart(
    cases: list[_Case], sigma: float | None, rho: float
) -> tuple[tuple[float | None, ...], tuple[float | None, ...], tuple[tuple[int, str], ...], str]:
    """The CUSUM over the cases' mean differences: upper, lower, signals (case number from 1,
    direction) and the status they give."""
    if sigma is None or not cases:
        return (), (), (), "no limit yet (no SD)" if cases else "no reads compared yet"
    means = [sum(d for d, _ in c) / len(c) for c in cases]
    others = [sum(m for _, m in c) / len(c) for c in cases]
    chart = cusum(standardise_cases(means, others, [len(c) for c in cases], sigma, rho))
    signals = tuple((i + 1, d) for i, d in chart.signals)
    status = f"signalled {signals[-1][1]} at case {signals[-1][0]}" if signals else "in control"
    return _round(chart.upper), _round(chart.lower), signals, status


def _reader_drift(
    reader: str,
    points: list[_Point],
    primary: dict[tuple[int, int], dict[str, float]],
    cases: list[_Case],
    spread: tuple[float | None, float],
    reference: str,
    set_aside: bool,
) -> ReaderDrift:
    """One reader's series from the trial's signed reads (in the order signed); ``spread`` is
    one read's error SD σ (None: not known yet) and the within-case correlation ρ;
    ``set_aside``: the reader is far off the others and left out of their comparisons."""
    own = [p for p in points if p.reader == reader]
    differences = [d for case in cases for d, _ in case]
    rereads = [
        abs(p.total - primary[(p.patient, p.visit)][reader])
        for p in own
        if p.read_type == "reread"
        and p.total is not None
        and reader in primary[(p.patient, p.visit)]
    ]
    reference_totals = {
        (p.patient, p.visit): p.total
        for p in points
        if p.reader == reference and p.total is not None
    }
    calibration = [
        p.total - reference_totals[(p.patient, p.visit)]
        for p in own
        if p.read_type == "calibration"
        and p.total is not None
        and (p.patient, p.visit) in reference_totals
    ]
    summary = running_summary(differences)
    upper, lower, signals, status = _case_chart(cases, *spread)
    if set_aside:
        status += "; far off the others: left out of their comparisons and of the SD"
    return ReaderDrift(
        reader=reader,
        reads=sum(p.read_type in PRIMARY_TYPES for p in own),
        cases=len({p.case for p in own if p.read_type in PRIMARY_TYPES}),
        differences=_round(differences),
        case_differences=_round([sum(d for d, _ in c) / len(c) for c in cases]),
        mean=_round(summary.mean),
        sd=_round(summary.sd),
        upper=upper,
        lower=lower,
        signals=signals,
        reread_abs=_round(rereads),
        reread_mean_abs=_round(running_summary(rereads).mean),
        calibration=_round(calibration),
        calibration_mean=_round(running_summary(calibration).mean),
        status=status,
    )
