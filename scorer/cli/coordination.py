"""Commands of the coordinator's desk: progress, flags, calibration, adjudication."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from scorer.cli.options import CliError, Login, Passwords, run_store
from scorer.cli.output import EXIT_OK, OutputFormat, emit
from scorer.cli.registry import Opt, command, group


@command("progress")
def progress(*, trial: str, format: OutputFormat = "text", login: Login) -> int:
    """the reading's progress per reader (coordinator)"""

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        emit(format, ws.coordination.progress(s, trial).to_dict(), _progress_lines)
        return EXIT_OK

    return run_store(login, body)


def _progress_lines(p: dict[str, Any]) -> Iterator[str]:
    yield (
        f"{'reader':<12} {'cases':>5} {'signed':>6} {'in prog.':>8} {'not st.':>7} "
        f"{'re-reads':>9} {'calib.':>7} {'median s/case':>13}"
    )
    for r in p["readers"]:
        med = r["median_seconds_per_case"]
        yield (
            f"{r['reader']:<12} {r['cases']:>5} {r['signed']:>6} {r['in progress']:>8} "
            f"{r['not started']:>7} {r['rereads_signed']:>4}/{r['rereads']:<4} "
            f"{r['calibration_signed']:>3}/{r['calibration']:<3} "
            f"{med if med is not None else '-':>13}"
        )


group("flags", help="reader flags: list, answer (coordinator)", dest="flags_cmd")


@command("flags", "list", listed=False)
def flags_list(
    *, all: bool = False, format: OutputFormat = "text", trial: str, login: Login
) -> int:
    """The readers' flags of a trial, open ones (or all), with their answers.

    Args:
        all: closed flags too
    """

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        flags = ws.coordination.flags(s, trial, open_only=not all)
        emit(format, [f.to_dict() for f in flags], _flag_lines)
        return EXIT_OK

    return run_store(login, body)


def _flag_lines(flags: list[dict[str, Any]]) -> Iterator[str]:
    for f in flags:
        state = "closed" if f["closed"] else "open"
        where = f" visit {f['letter']}" if f.get("letter") else ""
        yield f"#{f['flag']} {state:<6} case {f['case']}{where} {f['reader']}: {f['message']}"
        if f.get("patient"):
            visit = f" at {f['visit']}" if f.get("visit") else ""
            date = f" ({f['visit_date']})" if f.get("visit_date") else ""
            images = f"; images {', '.join(f['images'])}" if f.get("images") else ""
            yield f"      patient {f['patient']}{visit}{date}{images}"
        if f["answer"]:
            yield f"      answer: {f['answer']}"


@command("flags", "answer")
def flags_answer(flag: int, *, answer: str, trial: str, login: Login) -> int:
    """answer a flag and close it"""

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        ws.coordination.answer_flag(s, trial, flag, answer)
        print(f"flag {flag} answered and closed")
        return EXIT_OK

    return run_store(login, body)


group("calibration", help="calibration: set, worklists, show, release", dest="cal_cmd")


@command("calibration", "set")
def calibration_set(
    *,
    patients: Annotated[str, Opt(metavar="CODE,CODE")],
    reference: Annotated[str, Opt(metavar="USER")],
    reason: str,
    trial: str,
    login: Login,
) -> int:
    """the calibration patients and whose reads are reference"""

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        ws.trials.set_trial_setting(s, trial, "calibration_reference", reference, reason)
        ws.trials.set_trial_setting(s, trial, "calibration_patients", patients.split(","), reason)
        print(f"calibration set: {patients} (reference reads: {reference})")
        return EXIT_OK

    return run_store(login, body)


@command("calibration", "worklists")
def calibration_worklists(*, trial: str, login: Login) -> int:
    """calibration worklists for the assigned readers"""

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        made = ws.calibration.calibration_worklists(s, trial).cases
        for reader, n in sorted(made.items()):
            print(f"{reader}: {n} calibration case(s)")
        if not made:
            print("every assigned reader has a calibration worklist already")
        return EXIT_OK

    return run_store(login, body)


@command("calibration", "show")
def calibration_show(*, format: OutputFormat = "text", trial: str, login: Login) -> int:
    """each reader's agreement with the reference"""

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        emit(format, ws.calibration.calibration_report(s, trial).to_dict(), _calibration_lines)
        return EXIT_OK

    return run_store(login, body)


def _calibration_lines(report: dict[str, Any]) -> Iterator[str]:
    yield f"reference: {report['reference']} ({report['reference_reads']} reads)"
    for r in report["readers"]:
        icc = r["icc"]
        icc_text = f"{icc['value']} (n={r['icc_n']})" if icc else f"- (n={r['icc_n']})"
        state = "released" if r["released"] else "in calibration"
        yield f"{r['reader']:<12} {r['signed']}/{r['cases']} signed  ICC(A,1) {icc_text}  {state}"
        for feature, f in r["features"].items():
            yield (
                f"    {feature}: {f['pct_exact']}% exact, {f['pct_within_one']}% within "
                f"one grade (n={f['n']} areas)"
            )


@command("calibration", "release")
def calibration_release(reader: str, *, reason: str, trial: str, login: Login) -> int:
    """release a calibrated reader to the trial's cases"""

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        ws.calibration.release_reader(s, trial, reader, reason)
        print(f"{reader} released to the trial's cases")
        return EXIT_OK

    return run_store(login, body)


group("adjudication", help="adjudication: freeze-sdc, update, assign, show", dest="adj_cmd")


@command("adjudication", "freeze-sdc")
def adjudication_freeze_sdc(*, reason: str, trial: str, login: Login) -> int:
    """compute the SDC now and freeze it (signed, meaning approved)"""

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        preview = ws.adjudication.sdc_preview(s, trial)
        if preview.problem:
            raise CliError(preview.problem)
        print(
            f"SDC ({preview.level:g}%): {preview.value} from n={preview.n} patients read "
            f"twice, k={preview.k} readers ({', '.join(preview.readers)})"
        )
        password = pw.get(f"password of {s.username} to sign the freeze (meaning approved): ")
        value = ws.adjudication.freeze_sdc(
            s, trial, reason, password, username=s.username, previewed=preview.value
        )
        print(f"SDC frozen at {value} (signed by {s.full_name})")
        return EXIT_OK

    return run_store(login, body)


@command("adjudication", "update")
def adjudication_update(*, trial: str, login: Login) -> int:
    """queue discrepant patients, finish adjudications"""

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        out = ws.adjudication.update_adjudication(s, trial)
        print(
            f"{out.checked} patient(s) checked, {out.queued} newly discrepant, "
            f"{out.done} adjudication(s) completed"
        )
        return EXIT_OK

    return run_store(login, body)


@command("adjudication", "assign")
def adjudication_assign(adjudicator: str, *, trial: str, login: Login) -> int:
    """give the queued patients to an adjudicator"""

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        n = ws.adjudication.assign_adjudications(s, trial, adjudicator)
        print(f"{n} patient(s) assigned to {adjudicator}")
        return EXIT_OK

    return run_store(login, body)


@command("adjudication", "show")
def adjudication_show(*, format: OutputFormat = "text", trial: str, login: Login) -> int:
    """the queue, the rule applied and the results"""

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        emit(format, ws.adjudication.adjudications(s, trial).to_dict(), _adjudication_lines)
        return EXIT_OK

    return run_store(login, body)


def _adjudication_lines(report: dict[str, Any]) -> Iterator[str]:
    limit = (
        f"difference {report['difference']}"
        if report["trigger"] == "difference"
        else f"frozen SDC {report['frozen_sdc']}"
    )
    yield f"trigger: {limit}; final rule: {report['final_rule']}"
    for a in report["patients"]:
        who = a.get("patient", "-")
        res = a["result"]
        final = (
            f" final change {res['final_change']:g} from {', '.join(res['reads'])}" if res else ""
        )
        yield f"{who:<12} {a['status']:<9} {'; '.join(a['reasons'])}{final}"


@command("drift")
def drift(*, trial: str, format: OutputFormat = "text", login: Login) -> int:
    """each reader's drift chart and alerts (coordinator: raises new alerts; monitor: reads)"""

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        # The coordinator's look is when alerts are evaluated (scorer.services.drift).
        report = ws.drift.check(s, trial) if s.role == "coordinator" else ws.drift.drift(s, trial)
        emit(format, report.to_dict(), _drift_lines)
        return EXIT_OK

    return run_store(login, body)


def _drift_lines(d: dict[str, Any]) -> Iterator[str]:
    sigma = "-" if d["sigma"] is None else f"{d['sigma']:g}"
    yield (
        f"read error SD {sigma} (from {d['sigma_source']}); within-case correlation "
        f"{d['rho']:g} (from {d['rho_source']}); CUSUM over cases, k = {d['k']:g}, "
        f"limit h = {d['h']:g} SDs"
    )
    yield (
        f"{'reader':<12} {'reads':>5} {'cases':>5} {'compared':>8} {'mean diff':>9} "
        f"{'CUSUM +/-':>13}  status"
    )
    for r in d["readers"]:
        mean = r["mean"][-1] if r["mean"] else None
        up = r["upper"][-1] if r["upper"] else None
        down = r["lower"][-1] if r["lower"] else None
        sums = "-" if up is None else f"{up:.1f}/{down:.1f}"
        yield (
            f"{r['reader']:<12} {r['reads']:>5} {r['cases']:>5} {len(r['differences']):>8} "
            f"{'-' if mean is None else f'{mean:+.2f}':>9} {sums:>13}  {r['status']}"
        )
    for a in d["alerts"]:
        state = f"acknowledged by {a['acknowledged_by']}" if a["acknowledged_at"] else "OPEN"
        yield (
            f"alert #{a['alert']} {a['reader']} {a['direction']} at case {a['case']} "
            f"({a['statistic']:g} > {a['limit']:g}), {state}"
        )
