"""Commands of oversight: audit verify (the trail, its receipts and the signatures)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from scorer.cli.options import CliError, Database, open_workspace
from scorer.cli.output import EXIT_ERROR, EXIT_OK, OutputFormat, emit, err
from scorer.cli.registry import command, group

group("audit", help="audit: verify the trail, receipts and signatures", dest="audit_cmd")


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
