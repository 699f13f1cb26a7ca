"""Commands that bring reads in and send data out: reads import, export (reads, totals, audit
trail, transfer package), report (agreement, endpoints)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from scorer.cli.options import CliError, Login, Passwords, run_store
from scorer.cli.output import EXIT_ERROR, EXIT_OK, err, write_atomic
from scorer.cli.registry import Opt, command, group

group("reads", help="reads: import a reads CSV", dest="reads_cmd")


@command("reads", "import", listed=False)
def reads_import(file: Annotated[str, Opt(metavar="FILE.csv")], *, trial: str, login: Login) -> int:
    """Import a reads CSV (spec §9) into a trial."""
    line_open = [False]

    def progress(done: int, total: int, _what: str) -> None:
        # Only an import of more than one batch shows its progress, on one line of stderr.
        if done >= total and not line_open[0]:
            return
        sys.stderr.write(f"\r{done}/{total} read(s) imported or already there")
        line_open[0] = done < total
        if not line_open[0]:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        path = Path(file)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read {path}: {exc.strerror or exc}") from exc
        try:
            done = ws.exchange.import_reads(s, trial, data, source=str(path), progress=progress)
        finally:
            if line_open[0]:
                sys.stderr.write("\n")  # an interrupted import's progress line ends
        print(
            f"imported {done.added} read(s) into {trial}; {done.already} already there"
            f" (in {done.batches} batch(es))"
        )
        return EXIT_OK

    return run_store(login, body)


group("export", help="exports: reads, totals, audit trail, transfer package", dest="export_cmd")

#: Writes an export to the path given and says what it wrote: (workspace, session, path).
Writer = Callable[[Any, Any, Path], str]


def _export(login: Login, out: str, writer: Writer) -> int:
    """Log in, write the export to ``out``, say what was written."""

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        try:
            print(writer(ws, s, Path(out)))
        except OSError as exc:
            raise CliError(f"cannot write {out}: {exc.strerror or exc}") from exc
        return EXIT_OK

    return run_store(login, body)


@command("export", "reads")
def export_reads(
    *,
    trial: str,
    out: Annotated[str, Opt(metavar="FILE.csv")],
    blinded: bool = False,
    login: Login,
) -> int:
    """the reads CSV (spec §9) and its manifest beside it

    Args:
        blinded: patient codes instead of real identifiers
    """

    def write(ws: Any, s: Any, path: Path) -> str:
        text, manifest = ws.exchange.export_reads_with_manifest(s, trial, blinded=blinded)
        write_atomic(path, text)
        side = path.with_name(path.name + ".manifest.json")
        write_atomic(side, json.dumps(manifest.to_dict(), indent=2) + "\n")
        state = "locked" if manifest.locked else "NOT locked (the reading is open)"
        return f"wrote {path} and {side.name}: trial {trial}, {state}"

    return _export(login, out, write)


@command("export", "totals")
def export_totals(*, trial: str, out: Annotated[str, Opt(metavar="FILE.csv")], login: Login) -> int:
    """per-patient totals per visit and change"""

    def write(ws: Any, s: Any, path: Path) -> str:
        write_atomic(path, ws.exchange.export_totals(s, trial))
        return f"wrote {path}"

    return _export(login, out, write)


@command("export", "audit")
def export_audit(*, out: Annotated[str, Opt(metavar="FILE.csv")], login: Login) -> int:
    """the whole audit trail as CSV"""

    def write(ws: Any, s: Any, path: Path) -> str:
        write_atomic(path, ws.exchange.export_audit(s))
        return f"wrote {path}"

    return _export(login, out, write)


@command("export", "package")
def export_package(
    *, trial: str, out: Annotated[str, Opt(metavar="FILE.zip")], login: Login
) -> int:
    """the sponsor's zip of a locked trial, with checksums"""

    def write(ws: Any, s: Any, path: Path) -> str:
        sums = ws.exchange.transfer_package(s, trial, path)
        return f"wrote {path}: {len(sums)} files and MANIFEST.sha256"

    return _export(login, out, write)


group("report", help="reports: agreement (from the database), endpoints", dest="report_cmd")


def _report_metavar() -> str:
    """FILE.{html,pdf,...}: the formats a report is written in."""
    from scorer.reports.document import FORMATS

    return f"FILE.{{{','.join(FORMATS)}}}"


def _report_path(out: str) -> Path | None:
    """The report's path, or None (said why) when its suffix names no report format."""
    from scorer.reports.document import FORMATS

    path = Path(out)
    if path.suffix.lower().lstrip(".") not in FORMATS:
        err(f"{path.name}: write the report as .{', .'.join(FORMATS)}")
        return None
    return path


@command("report", "agreement")
def report_agreement(
    *, trial: str, out: Annotated[str, Opt(metavar=_report_metavar)], login: Login
) -> int:
    """reader agreement: ICC, SDC, Bland-Altman, kappa"""
    from scorer.reports.document import write
    from scorer.stats.icc import start_loading

    start_loading()  # scipy's F distribution loads while the reads are fetched
    path = _report_path(out)
    if path is None:
        return EXIT_ERROR

    def body(ws: Any, s: Any, pw: Passwords) -> int:
        doc = ws.exchange.agreement_report(s, trial)
        try:
            write(doc, path)
        except OSError as exc:
            raise CliError(f"cannot write {path}: {exc.strerror or exc}") from exc
        print(f"wrote {path}")
        return EXIT_OK

    return run_store(login, body)


@command("report", "endpoints")
def report_endpoints(
    *,
    reads: Annotated[str, Opt(metavar="LOCKED_EXPORT.csv")],
    arms: Annotated[str, Opt(metavar="ALLOCATION.csv")],
    manifest: Annotated[str | None, Opt(metavar="FILE.json")] = None,
    control: Annotated[str | None, Opt(metavar="ARM")] = None,
    visit_from: Annotated[str | None, Opt(flag="--from", metavar="VISIT")] = None,
    visit_to: Annotated[str | None, Opt(flag="--to", metavar="VISIT")] = None,
    out: Annotated[str, Opt(metavar=_report_metavar)],
) -> int:
    """change and progression per arm from a locked export (no database)

    Args:
        arms: patient,arm[,factor...]: any further columns are stratification factors
        manifest: default: the .manifest.json beside the export
        control: the control arm the others are compared with (default: an arm called placebo
            or control, else the first by name; the report says which)
        visit_from: default: the first visit
        visit_to: default: the last visit
    """
    from scorer.core.readscsv import ReadsCsvError, parse_reads_csv
    from scorer.reports.document import write
    from scorer.reports.endpoints import (
        EndpointError,
        check_export,
        endpoint_document,
        load_manifest,
        read_allocation,
        read_strata,
    )

    path = _report_path(out)
    if path is None:
        return EXIT_ERROR
    reads_path = Path(reads)
    manifest_path = (
        Path(manifest) if manifest else reads_path.with_name(reads_path.name + ".manifest.json")
    )
    try:
        data = reads_path.read_bytes()
        loaded = load_manifest(manifest_path.read_bytes())
        check_export(data, loaded)
        allocation = Path(arms).read_bytes()
        doc = endpoint_document(
            parse_reads_csv(data),
            loaded,
            read_allocation(allocation),
            strata=read_strata(allocation),
            control=control,
            visit_from=visit_from,
            visit_to=visit_to,
        )
        write(doc, path)
    except FileNotFoundError as exc:
        err(f"cannot read {exc.filename}: no such file")
        return EXIT_ERROR
    except OSError as exc:
        err(f"{exc.filename or ''}: {exc.strerror or exc}")
        return EXIT_ERROR
    except (EndpointError, ReadsCsvError) as exc:
        err(str(exc))
        return EXIT_ERROR
    print(f"wrote {path}")
    return EXIT_OK
