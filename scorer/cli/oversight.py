"""Commands of oversight: audit verify (the trail, its receipts and the signatures), audit
sessions (log-in sessions as they happened) and audit timeline (one session's rows)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from scorer.cli.options import CliError, Database, Login, Passwords, open_workspace, run_store
from scorer.cli.output import EXIT_ERROR, EXIT_OK, OutputFormat, emit, err
from scorer.cli.registry import command, group

group(
    "audit",
    help="audit: verify the trail, receipts and signatures; sessions and their timelines",
    dest="audit_cmd",
)


@command("audit", "verify", listed=False)
def audit_verify(*, format: OutputFormat = "text", database: Database) -> int:
    """Verify the audit trail: every chain, its receipts and the signatures."""
    from scorer.workspace import ScorerError

    try:
        ws = open_workspace(database)
    except (ScorerError, CliError) as exc:
        err(str(exc))
        return EXIT_ERROR
    try:
        result = ws.verify()
    finally:
        ws.close()
    report = {
        "ok": result.ok,
        "errors": result.errors,
        "warnings": result.warnings,
        "rows": result.rows,
        "signatures": result.signatures,
        "replayed": result.replayed,
        "differences": [
            {"table": t, "key": k, "column": c, "problem": m} for t, k, c, m in result.differences
        ],
        "heads": {t: {"rows": h.seq, "mac": h.mac} for t, h in result.heads.items()},
    }
    emit(format, report, _verify_lines)
    return EXIT_OK if result.ok else EXIT_ERROR


def _verify_lines(report: dict[str, Any]) -> Iterator[str]:
    """The verification, for people: each chain's head, the signatures, what failed."""
    for t, h in report["heads"].items():
        yield f"{t}: {h['rows']} rows, head {h['mac'][:16]}..."
    yield f"signatures checked: {report['signatures']}"
    if report["ok"]:
        yield (
            f"tables rebuilt from the trail ({report['replayed']} row changes replayed): "
            "every table matches"
        )
    for w in report["warnings"]:
        yield f"warning: {w}"
    for e in report["errors"]:
        yield f"FAILED: {e}"
    yield "audit trail verifies" if report["ok"] else "audit trail does NOT verify"


@command("audit", "sessions", listed=False)
def audit_sessions(
    *,
    account: str | None = None,
    day: str | None = None,
    case: str | None = None,
    format: OutputFormat = "text",
    login: Login,
) -> int:
    """Log-in sessions as they happened: where, when and how each ended, cases and the time on
    them, films and the time on each, scores (monitor, coordinator).

    Args:
        account: only the sessions of this user ID
        day: only sessions started that day (YYYY-MM-DD)
        case: only sessions that opened this case code
    """

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        rows = ws.oversight.reading_sessions(s, account, day, case)
        emit(format, [asdict(r) for r in rows], _session_lines)
        return EXIT_OK

    return run_store(login, body)


def _session_lines(rows: list[dict[str, Any]]) -> Iterator[str]:
    """Each session in a paragraph: its line, then one line per film."""
    if not rows:
        yield "no sessions"
    for r in rows:
        where = r["workstation"] or "workstation not recorded"
        if r["address"]:
            where += f" ({r['address']})"
        yield (
            f"{r['session']}  {r['user']}  {where}  {r['start'][:19]} .. {r['end'][:19]}  "
            f"ended: {r['ended']}"
        )
        minutes = f"{r['seconds_on_cases'] / 60:.1f} min"
        if r["open_case"]:
            minutes += f" (case {r['open_case']} open-ended, {r['open_seconds']:g} s)"
        yield (
            f"  cases {r['cases_opened']}, {minutes} on cases, scores {r['scores']}, "
            f"audit rows {r['audit_rows']}, events {r['events']}, films {r['images_viewed']}"
        )
        for i in r["images"]:
            zooms = ", ".join(f"{z:g}x" for z in i["magnifications"]) or "-"
            yield f"    film {i['image']}  case {i['case']}  {i['seconds']:g} s  at {zooms}"


@command("audit", "timeline", listed=False)
def audit_timeline(session: str, *, format: OutputFormat = "text", login: Login) -> int:
    """One session's timeline: its events and audit rows, each score with the visit letter the
    reader saw and the true visit (monitor, coordinator).

    Args:
        session: the session's id (from scorer audit sessions)
    """

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        rows = ws.oversight.session_timeline(s, session)
        emit(format, [asdict(r) for r in rows], _timeline_lines)
        return EXIT_OK

    return run_store(login, body)


def _timeline_lines(rows: list[dict[str, Any]]) -> Iterator[str]:
    for r in rows:
        visit = f"  visit {r['visit_letter']} = {r['visit']}" if r["visit_letter"] else ""
        detail = "" if r["detail"] is None else f"  {json.dumps(r['detail'], ensure_ascii=False)}"
        reason = f"  ({r['reason']})" if r["reason"] else ""
        what = f"{r['at'][:23]}  {r['source']:<5}  {r['what']}  {r['subject']}"
        yield f"{what}{visit}{detail}{reason}"
