"""The command line: ``scorer COMMAND ...`` over the same code the workstation uses."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from scorer import __version__
from scorer.core.printable import printable

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


def _write_atomic(path: Path, text: str) -> None:
    """Write a file whole or not at all, owner-only (0600)."""
    from scorer.core.private_files import write_file

    write_file(path.resolve(), text)


#: Characters never echoed raw to a terminal: control characters but the line feed, and the
#: bidi overrides and isolates (a message quoting hostile input must not rewrite the screen).
_UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
#: Longest message line printed; the rest is cut (a 100,000-character value echoed back).
_MAX_LINE = 1000


def _visible(msg: str) -> str:
    def escape(m: re.Match[str]) -> str:
        o = ord(m.group())
        return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"

    lines = _UNSAFE.sub(escape, msg).split("\n")
    return "\n".join(x if len(x) <= _MAX_LINE else x[: _MAX_LINE - 1] + "…" for x in lines)


def _err(msg: str) -> None:
    print(f"scorer: error: {_visible(msg)}", file=sys.stderr)


def cmd_analyze(args: argparse.Namespace) -> int:
    from scorer.core.methods import MethodError, builtin_methods
    from scorer.core.progression import parse_threshold
    from scorer.core.readscsv import ReadsCsvError, parse_reads_csv
    from scorer.core.totals import MissingDataRules
    from scorer.reports.analysis import AnalysisError, AnalysisOptions, analyze
    from scorer.reports.analysis_text import format_analysis

    path = Path(args.reads)
    try:
        data = path.read_bytes()
    except OSError as exc:
        _err(f"cannot read {path}: {exc.strerror or exc}")
        return EXIT_ERROR
    try:
        methods = dict(builtin_methods())
        reads = parse_reads_csv(data, methods)
    except ReadsCsvError as exc:
        _err(f"{path} is not a valid reads CSV:")
        print(str(exc), file=sys.stderr)
        return EXIT_ERROR
    except MethodError as exc:
        _err(str(exc))
        return EXIT_ERROR
    try:
        rules = MissingDataRules(
            areas=args.missing_areas,
            max_unused_share=args.max_unused / 100.0,
            operated=args.operated,
            visits=args.missing_visits,
        )
        # Change thresholds given replace the defaults; rapid ones given replace rapid>=5.
        given = [parse_threshold(t) for t in args.threshold or ()]
        thresholds = tuple(t for t in given if not t.annualised) or AnalysisOptions().thresholds
        thresholds += tuple(t for t in given if t.annualised)
        options = AnalysisOptions(
            method=args.method,
            visit_from=args.visit_from,
            visit_to=args.visit_to,
            sdc_level=args.sdc_level,
            rules=rules,
            thresholds=thresholds,
            kappa=not args.no_kappa,
        )
        result = analyze(reads, methods, options)
    except (AnalysisError, ValueError) as exc:
        _err(str(exc))
        return EXIT_ERROR
    text = (
        json.dumps(result, indent=2, sort_keys=False) + "\n"
        if args.format == "json"
        else format_analysis(result)
    )
    if args.out:
        try:
            _write_atomic(Path(args.out), text)
        except OSError as exc:
            _err(f"cannot write {args.out}: {exc.strerror or exc}")
            return EXIT_ERROR
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_methods(args: argparse.Namespace) -> int:
    from scorer.core.methods import MethodError, builtin_methods, load_methods

    try:
        methods = load_methods([Path(p) for p in args.files]) if args.files else builtin_methods()
    except MethodError as exc:
        _err(str(exc))
        return EXIT_ERROR
    for m in methods.values():
        derived = f", derived from {m.derived_from}" if m.derived_from else ""
        print(f"{m.id}: {m.name} — {len(m.areas)} areas, range 0–{m.max_total:g}{derived}")
        print(f"    {m.citation}")
    return EXIT_OK


def cmd_example(args: argparse.Namespace) -> int:
    from scorer.core.example import worked_example_reads
    from scorer.core.readscsv import format_reads_csv

    text = format_reads_csv(worked_example_reads())
    if args.out:
        _write_atomic(Path(args.out), text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


# ------------------------------------------------------------------ store commands


class _Passwords:
    """Passwords from a prompt, or one per line from standard input (never from argv)."""

    def __init__(self, from_stdin: bool) -> None:
        self.from_stdin = from_stdin
        self._lines: list[str] | None = None

    def get(self, prompt: str, confirm: bool = False) -> str:
        if self.from_stdin:
            if self._lines is None:
                self._lines = sys.stdin.read().splitlines()
            if not self._lines:
                raise _CliError("--password-stdin: standard input has no more password lines")
            return self._lines.pop(0)
        import getpass

        if not sys.stdin.isatty():
            raise _CliError("no terminal to ask for the password on: pipe it with --password-stdin")
        try:
            first = getpass.getpass(prompt)
            if confirm and getpass.getpass("again: ") != first:
                raise _CliError("the two passwords differ")
        except (EOFError, KeyboardInterrupt):
            raise _CliError("no password given") from None
        return first

    def new(self, prompt: str) -> str:
        """A new password, asked twice (with --password-stdin: the next two lines)."""
        first = self.get(prompt)
        if self.get("again: ") != first:
            raise _CliError("the two new passwords differ")
        return first


class _CliError(Exception):
    """A problem to report on standard error with exit status 1."""


def _open_ws(args: argparse.Namespace) -> Any:
    from scorer.workspace import Workspace

    return Workspace.open(db=args.db)


def _login(args: argparse.Namespace, ws: Any, pw: _Passwords, change: bool = False) -> Any:
    """Log in; then change the password when asked to (``change``) or when the account must
    (its first log-in, or after a reset): the new password twice, before the command runs."""
    user = args.user or os.environ.get("SCORER_USER")
    if not user:
        raise _CliError("say who you are: --user NAME (or SCORER_USER)")
    old = pw.get(f"password for {user}: ")
    s = ws.login(user, old)
    if not (change or s.must_change_password):
        return s
    try:
        if s.must_change_password and not change:
            print(f"{user} must choose a new password before anything else.", file=sys.stderr)
        try:
            new = pw.new(f"new password for {user}: ")
        except _CliError as exc:
            if not s.must_change_password:
                raise
            raise _CliError(
                f"you must change your password before anything else ({exc}): give the new "
                "password twice (with --password-stdin, on the two lines after the current one)"
            ) from exc
        ws.change_password(s, old, new)
    except BaseException:
        ws.logout(s)
        raise
    if not change:
        print(f"changed the password of {user}", file=sys.stderr)
    return s


def _run_store(args: argparse.Namespace, body: Any, change_password: bool = False) -> int:
    """Open the workspace, log in (changing the password first when the account must, or when
    ``change_password``), run ``body(ws, session, passwords)``, log out."""
    from scorer.workspace import ScorerError

    pw = _Passwords(getattr(args, "password_stdin", False))
    try:
        ws = _open_ws(args)
    except ScorerError as exc:
        _err(str(exc))
        return EXIT_ERROR
    try:
        s = _login(args, ws, pw, change=change_password)
        try:
            rc: int = body(ws, s, pw)
            return rc
        finally:
            ws.logout(s)
    except (ScorerError, _CliError) as exc:
        _err(str(exc))
        return EXIT_ERROR
    finally:
        ws.close()


def cmd_init(args: argparse.Namespace) -> int:
    from scorer.store.location import resolve
    from scorer.workspace import ScorerError, Workspace

    pw = _Passwords(args.password_stdin)
    try:
        loc = resolve(args.db)
        password = pw.get(f"new password for {args.admin}: ", confirm=True)
        ws = Workspace.initialize(args.admin, args.name or args.admin, password, location=loc)
    except (ScorerError, _CliError, ValueError) as exc:
        _err(str(exc))
        return EXIT_ERROR
    ws.close()
    print(f"created the scorer database at {loc.shown}")
    print(f"  audit key: {loc.key_path} (keep a copy apart from the database)")
    print(f"  receipts:  {loc.receipts_path}")
    print(f"  administrator: {args.admin}")
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    from scorer.workspace import ScorerError, Workspace

    try:
        before, after = Workspace.migrate(args.db)
    except ScorerError as exc:
        _err(str(exc))
        return EXIT_ERROR
    print(f"schema: {before} -> {after}")
    from scorer.store.location import resolve

    if before != after and not resolve(args.db).is_sqlite:
        print("new tables: run scorer grant ROLE again for the workstations' role")
    return EXIT_OK


def cmd_grant(args: argparse.Namespace) -> int:
    from scorer.workspace import ScorerError, Workspace

    try:
        statements = Workspace.grant_workstation(args.role, args.db)
    except ScorerError as exc:
        _err(str(exc))
        return EXIT_ERROR
    for sql in statements:
        print(sql)
    print(
        f"{args.role} may now run workstations: trial data read and written, the audit trail, "
        "event log and signatures append-only. Run this again after scorer migrate."
    )
    return EXIT_OK


def cmd_user(args: argparse.Namespace) -> int:
    def body(ws: Any, s: Any, pw: _Passwords) -> int:
        if args.user_cmd == "add":
            password = pw.get(f"first password for {args.username}: ", confirm=True)
            ws.add_user(s, args.username, args.name, args.role, password)
            print(
                f"added {args.role} {args.username}; they must change the password at first log-in"
            )
        elif args.user_cmd == "list":
            users = ws.list_users(s)
            if args.format == "json":
                print(json.dumps(users, indent=2))
            else:
                for u in users:
                    flags = [f for f in ("disabled", "locked", "must_change_password") if u[f]]
                    print(
                        f"{u['username']:<16} {u['role']:<12} {u['full_name']}"
                        + (f"  [{', '.join(flags)}]" if flags else "")
                    )
        elif args.user_cmd == "disable":
            ws.disable_user(s, args.username, args.reason)
            print(f"disabled {args.username}")
        elif args.user_cmd == "reset-password":
            password = pw.get(f"temporary password for {args.username}: ", confirm=True)
            ws.reset_password(s, args.username, password, args.reason)
            print(f"reset the password of {args.username}; they must change it at next log-in")
        elif args.user_cmd == "passwd":
            print(f"{s.username}: password changed")
        return EXIT_OK

    return _run_store(args, body, change_password=args.user_cmd == "passwd")


def cmd_trial(args: argparse.Namespace) -> int:
    from scorer.core import protocol as protocol_mod

    def body(ws: Any, s: Any, pw: _Passwords) -> int:
        if args.trial_cmd == "create":
            if args.protocol:
                try:
                    proto = protocol_mod.load(Path(args.protocol))
                except protocol_mod.ProtocolError as exc:
                    raise _CliError(str(exc)) from exc
                code = args.code or proto.code
                ws.create_trial(s, code, protocol=proto)
            else:
                if not args.code:
                    raise _CliError("give a trial code, or --protocol FILE")
                visits = [(v, None) for v in (args.visits.split(",") if args.visits else [])]
                ws.create_trial(
                    s,
                    args.code,
                    args.name or args.code,
                    methods=args.method or ["svh"],
                    design=args.design,
                    visits=visits,
                )
                code = args.code
            print(f"created trial {code}")
        elif args.trial_cmd == "list":
            trials = ws.list_trials(s)
            if args.format == "json":
                print(json.dumps(trials, indent=2))
            else:
                for t in trials:
                    print(
                        f"{t['code']:<16} {t['design']:<15} {','.join(t['methods']):<12} "
                        f"{t['name']}" + ("  [locked]" if t["locked"] else "")
                    )
        elif args.trial_cmd == "show":
            settings = ws.trial_settings(s, args.code)
            if args.format == "json":
                print(json.dumps(settings, indent=2))
            else:
                for k, v in settings.items():
                    print(f"{k:<24} {json.dumps(v)}")
        elif args.trial_cmd == "set":
            value: Any = args.value
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(args.value)
            ws.set_trial_setting(s, args.code, args.setting, value, args.reason)
            print(f"{args.code}: {args.setting} set")
        elif args.trial_cmd == "assign":
            patients = args.patients.split(",") if args.patients else None
            ws.assign_reader(s, args.code, args.reader, patients)
            scope = f"{len(patients)} patient(s)" if patients else "all patients"
            print(f"assigned {args.reader} to {args.code} ({scope})")
        elif args.trial_cmd == "campaign":
            visits = [(v, None) for v in args.visits.split(",")]
            n = ws.add_campaign(s, args.code, args.name, visits)
            print(f"{args.code}: campaign {n} ({args.name}) opened")
        elif args.trial_cmd == "lock":
            password = pw.get(f"password of {s.username} to sign the lock (meaning approved): ")
            digest = ws.lock_trial(s, args.code, password, username=s.username)
            print(f"{args.code}: reading locked (signed by {s.full_name}); reads SHA-256 {digest}")
        elif args.trial_cmd == "unlock":
            password = pw.get(f"password of {s.username} to sign the unlock: ")
            second = pw.get(f"password of {args.second} (second signature): ")
            ws.unlock_trial(s, args.code, args.reason, password, args.second, second)
            print(f"{args.code}: reading unlocked by {s.username} and {args.second}")
        return EXIT_OK

    return _run_store(args, body)


def cmd_worklist(args: argparse.Namespace) -> int:
    def body(ws: Any, s: Any, pw: _Passwords) -> int:
        if args.worklist_cmd == "generate":
            readers = [args.reader] if args.reader else None
            made = ws.generate_worklists(s, args.trial, readers, args.campaign)
            for reader, n in sorted(made.items()):
                print(f"{reader}: {n} case(s)")
            if not made:
                print("every assigned reader has a worklist already")
        elif args.worklist_cmd == "show":
            rows = ws.worklist(s, args.trial, args.reader, args.campaign)
            if args.format == "json":
                print(json.dumps(rows, indent=2))
            else:
                for r in rows:
                    extra = ""
                    if "patient" in r:
                        extra = (
                            f"  {r['reader']:<10} patient {r['patient']} "
                            f"{'/'.join(r['visits'])} {r['read_type']}"
                        )
                    elif "reader" in r:
                        extra = f"  {r['reader']}"
                    print(f"{r['progress']:>10}  {r['code']}  {r['status']:<12}{extra}")
        elif args.worklist_cmd == "verify":
            problems = ws.verify_worklists(s, args.trial)
            for p in problems:
                print(f"DIFFERS: {p}")
            if problems:
                return EXIT_ERROR
            print("every worklist regenerates exactly from its stored seed")
        return EXIT_OK

    return _run_store(args, body)


def cmd_reads(args: argparse.Namespace) -> int:
    def body(ws: Any, s: Any, pw: _Passwords) -> int:
        path = Path(args.file)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise _CliError(f"cannot read {path}: {exc.strerror or exc}") from exc
        added = ws.import_reads(s, args.trial, data, source=str(path))
        print(f"imported {added} read(s) into {args.trial}")
        return EXIT_OK

    return _run_store(args, body)


def cmd_export(args: argparse.Namespace) -> int:
    def body(ws: Any, s: Any, pw: _Passwords) -> int:
        out = Path(args.out)
        try:
            if args.export_cmd == "reads":
                text, manifest = ws.export_reads_with_manifest(s, args.trial, blinded=args.blinded)
                _write_atomic(out, text)
                side = out.with_name(out.name + ".manifest.json")
                _write_atomic(side, json.dumps(manifest, indent=2) + "\n")
                state = "locked" if manifest["locked"] else "NOT locked (the reading is open)"
                print(f"wrote {out} and {side.name}: trial {args.trial}, {state}")
            elif args.export_cmd == "totals":
                _write_atomic(out, ws.export_totals(s, args.trial))
                print(f"wrote {out}")
            elif args.export_cmd == "audit":
                _write_atomic(out, ws.export_audit(s))
                print(f"wrote {out}")
            else:
                sums = ws.transfer_package(s, args.trial, out)
                print(f"wrote {out}: {len(sums)} files and MANIFEST.sha256")
        except OSError as exc:
            raise _CliError(f"cannot write {args.out}: {exc.strerror or exc}") from exc
        return EXIT_OK

    return _run_store(args, body)


def cmd_backup(args: argparse.Namespace) -> int:
    def body(ws: Any, s: Any, pw: _Passwords) -> int:
        info = ws.backup(s, Path(args.out))
        rows = sum(info["rows"].values())
        head = info["heads"]["audit_events"]
        print(f"wrote {args.out}: {rows} rows, audit head {head['rows']} rows {head['mac'][:16]}…")
        print(f"  the audit key is not in the backup; it stays at {info['key']['path']}")
        return EXIT_OK

    return _run_store(args, body)


def cmd_restore(args: argparse.Namespace) -> int:
    from scorer.workspace import ScorerError, Workspace

    try:
        info = Workspace.restore(Path(args.file), args.db)
    except ScorerError as exc:
        _err(str(exc))
        return EXIT_ERROR
    head = info["heads"]["audit_events"]
    print(
        f"restored {sum(info['rows'].values())} rows (audit head {head['rows']} rows, "
        f"{head['mac'][:16]}…), checked against the backup; the audit trail verifies"
    )
    if info.get("images_missing"):
        print(
            f"warning: {info['images_missing']} of {info['images']} images are not in the "
            f"readers' store at {info['readers_store']} (backups hold no images): point "
            "readers_store and originals_store in the config (or SCORER_READERS_STORE and "
            "SCORER_ORIGINALS_STORE) at the image stores the database was using",
            file=sys.stderr,
        )
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from scorer.reports.document import FORMATS, write

    out = Path(args.out)
    if out.suffix.lower().lstrip(".") not in FORMATS:
        _err(f"{out.name}: write the report as .{', .'.join(FORMATS)}")
        return EXIT_ERROR
    if args.report_cmd == "endpoints":
        return _report_endpoints(args, out)

    def body(ws: Any, s: Any, pw: _Passwords) -> int:
        doc = ws.agreement_report(s, args.trial)
        try:
            write(doc, out)
        except OSError as exc:
            raise _CliError(f"cannot write {out}: {exc.strerror or exc}") from exc
        print(f"wrote {out}")
        return EXIT_OK

    return _run_store(args, body)


def _report_endpoints(args: argparse.Namespace, out: Path) -> int:
    """The endpoint table from a locked export and the allocation file (no database)."""
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

    reads_path = Path(args.reads)
    manifest_path = (
        Path(args.manifest)
        if args.manifest
        else reads_path.with_name(reads_path.name + ".manifest.json")
    )
    try:
        data = reads_path.read_bytes()
        manifest = load_manifest(manifest_path.read_bytes())
        check_export(data, manifest)
        allocation = Path(args.arms).read_bytes()
        arms, strata = read_allocation(allocation), read_strata(allocation)
        reads = parse_reads_csv(data)
        doc = endpoint_document(
            reads,
            manifest,
            arms,
            strata=strata,
            control=args.control,
            visit_from=args.visit_from,
            visit_to=args.visit_to,
        )
        write(doc, out)
    except FileNotFoundError as exc:
        _err(f"cannot read {exc.filename}: no such file")
        return EXIT_ERROR
    except OSError as exc:
        _err(f"{exc.filename or ''}: {exc.strerror or exc}")
        return EXIT_ERROR
    except (EndpointError, ReadsCsvError) as exc:
        _err(str(exc))
        return EXIT_ERROR
    print(f"wrote {out}")
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    from scorer.imaging.manifest import ManifestError, parse_manifest

    manifest = None
    if args.manifest:
        try:
            manifest = parse_manifest(Path(args.manifest).read_text(encoding="utf-8"))
        except (OSError, ManifestError, UnicodeDecodeError) as exc:
            _err(f"manifest {args.manifest}: {exc}")
            return EXIT_ERROR

    def progress(done: int, total: int, name: str) -> None:
        if args.quiet or not total:
            return
        width = 30
        filled = int(width * done / total)
        shown = _visible(name[-40:]).replace("\n", " ") if name else ""
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {shown:<40}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def body(ws: Any, s: Any, pw: _Passwords) -> int:
        report = ws.import_images(
            s,
            args.trial,
            [Path(p) for p in args.paths],
            manifest,
            progress,
            workers=args.workers,
            timeout_s=args.timeout,
            max_mb=args.max_mb,
            manifest_names=[Path(args.manifest).name] if args.manifest else [],
        )
        res = report.to_dict()
        if args.format == "json":
            print(json.dumps(res, indent=2))
        else:
            if res["partial_removed"] or res["orphans_removed"]:
                print(
                    f"removed what an interrupted import left: {res['partial_removed']} partial "
                    f"file(s), {res['orphans_removed']} readers' copy(ies) without an image"
                )
            for f in res["files"]:
                detail = f.get("reason") or "; ".join(f.get("flags", []))
                if f.get("qc") == "pending":
                    detail = f"QC pending: {detail}"
                img = f" -> {f['image']}" if f.get("image") else ""
                # A file name or a quoted header value is untrusted: escaped (one line each).
                print(
                    f"{f['status']:<9} {printable(f['file'])}{img}"
                    + (f"  ({printable(detail)})" if detail else "")
                )
            print(
                f"imported {res['imported']}, duplicates {res['duplicates']}, refused "
                f"{res['refused']}, flagged for the coordinator {res['flagged']}"
                + (f", skipped {res['skipped']}" if res["skipped"] else "")
            )
        if res["refused"]:
            _err(f"{res['refused']} of {len(res['files'])} file(s) refused, each with its reason")
            return EXIT_ERROR
        return EXIT_OK

    return _run_store(args, body)


def cmd_receive(args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from scorer.network.common import NetworkError
    from scorer.network.receiver import Receiver

    handler = logging.StreamHandler(sys.stderr)

    class PrintableFormatter(logging.Formatter):
        """Log lines with untrusted text (AE titles, UIDs, reasons) escaped, one line each."""

        def format(self, record: logging.LogRecord) -> str:
            return printable(super().format(record))

    handler.setFormatter(PrintableFormatter("%(asctime)s %(levelname)s %(message)s"))
    net_log = logging.getLogger("scorer.network")
    net_log.addHandler(handler)
    net_log.setLevel(logging.INFO)

    def body(ws: Any, s: Any, pw: _Passwords) -> int:
        try:
            receiver = Receiver(
                ws,
                s,
                args.trial,
                aet=args.aet,
                port=args.port,
                host=args.host,
                allow=args.allow,
                max_mb=args.max_mb,
                workers=args.workers,
            )
            receiver.start()
        except NetworkError as exc:
            _err(str(exc))
            return EXIT_ERROR
        stop = threading.Event()

        def on_signal(signum: int, frame: Any) -> None:
            stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        print(
            f"receiving for trial {args.trial} as {receiver.aet} on {args.host}:{receiver.port}; "
            f"allowed: {', '.join(receiver.allowed)}. Stop with Ctrl-C or SIGTERM.",
            flush=True,
        )
        try:
            receiver.wait(stop)
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
        counts = {
            k: sum(1 for a in receiver.arrivals if a.status == k)
            for k in ("imported", "duplicate", "refused")
        }
        print(
            f"stopped: imported {counts['imported']}, duplicates {counts['duplicate']}, "
            f"refused {counts['refused']}",
            flush=True,
        )
        return EXIT_OK

    return _run_store(args, body)


def cmd_pull(args: argparse.Namespace) -> int:
    from scorer.network.common import NetworkError, Peer
    from scorer.network.pull import pull

    def progress(done: int, total: int | None, what: str) -> None:
        if args.quiet:
            return
        of = f"/{total}" if total is not None else ""
        sys.stderr.write(f"\r{done}{of} instance(s) retrieved ({what})        ")
        sys.stderr.flush()

    def body(ws: Any, s: Any, pw: _Passwords) -> int:
        try:
            report = pull(
                ws,
                s,
                args.trial,
                Peer.parse(args.source),
                args.patient,
                args.study,
                aet=args.aet,
                move_to=args.move_to,
                progress=progress,
                timeout_s=args.timeout,
            )
        except NetworkError as exc:
            if not args.quiet:
                sys.stderr.write("\n")
            _err(str(exc))
            return EXIT_ERROR
        if not args.quiet:
            sys.stderr.write("\n")
        res = report.to_dict()
        if args.format == "json":
            print(json.dumps(res, indent=2))
        else:
            for st in res["studies"]:
                print(
                    printable(
                        f"study {st['study_instance_uid']} {st['date']} {st['description']}"
                    ).rstrip()
                )
            for a in res["instances"]:
                detail = a["reason"] or "; ".join(a["flags"])
                img = f" -> {a['image']}" if a["image"] else ""
                print(
                    f"{a['status']:<9} {printable(a['sop_instance_uid'])}{img}"
                    + (f"  ({printable(detail)})" if detail else "")
                )
            if args.move_to:
                m = res["moved"]
                print(
                    f"moved to {args.move_to}: completed {m.get('completed', 0)}, failed "
                    f"{m.get('failed', 0)}, warnings {m.get('warning', 0)}"
                )
            else:
                print(
                    f"imported {res['imported']}, duplicates {res['duplicates']}, refused "
                    f"{res['refused']}"
                )
            for f in res["failures"]:
                print(f"failed: {printable(f)}")
        if res["refused"] or res["failures"]:
            _err(
                f"{len(res['refused']) if isinstance(res['refused'], list) else res['refused']} "
                f"instance(s) refused, {len(res['failures'])} failure(s)"
            )
            return EXIT_ERROR
        return EXIT_OK

    return _run_store(args, body)


def cmd_image(args: argparse.Namespace) -> int:
    def body(ws: Any, s: Any, pw: _Passwords) -> int:
        if args.image_cmd == "export-png":
            path = ws.export_image_png(s, args.image, Path(args.out), args.window, args.max_size)
            print(f"wrote {path}")
        elif args.image_cmd == "list":
            images = ws.images(s, args.trial)
            if args.flagged:
                images = [i for i in images if i["flags"]]
            if args.format == "json":
                print(json.dumps(images, indent=2))
            for i in images if args.format == "text" else []:
                flags = "; ".join(i["flags"])
                qc = i["qc"] + (f" ({i['qc_reason']})" if i["qc_reason"] else "")
                print(
                    f"{i['code']}  {i['patient'] or '?':<12} {i['visit'] or '?':<6} "
                    f"{','.join(i['regions']) or '?':<6} QC {qc:<8} {flags}".rstrip()
                )
        elif args.image_cmd == "qc":
            out = ws.image_qc(s, args.image, args.state, args.reason or "")
            print(
                f"{args.image}: QC {out['qc']}"
                + (f" ({out['qc_reason']})" if out["qc_reason"] else "")
            )
            if out["cases"]:
                print("  cases that showed it (their readers saw it; follow them up):")
                for c in out["cases"]:
                    print(f"    {c['case']}  {c['reader']}")
        elif args.image_cmd == "reassign":
            regions = args.regions.split(",") if args.regions else None
            new = ws.reassign_image(
                s, args.image, args.reason, patient=args.patient, visit=args.visit, regions=regions
            )
            print(
                f"{args.image}: patient {new['patient']}, visit {new['visit']}, "
                f"regions {','.join(new['regions'])}"
            )
        elif args.image_cmd == "mask":
            rects = [_rectangle(r) for r in args.rect]
            out = ws.mask_image(s, args.image, rects, args.reason)
            print(f"{args.image}: {len(rects)} rectangle(s) masked on the readers' copy")
            print(f"  readers' copy SHA-256 {out['reader_sha256']} (the original is untouched)")
        elif args.image_cmd == "reissue":

            def progress(done: int, total: int, _image: str) -> None:
                if not args.quiet and total:
                    sys.stderr.write(f"\rwriting readers' copies: {done}/{total}")
                    if done >= total:
                        sys.stderr.write("\n")
                    sys.stderr.flush()

            out = ws.reissue_readers_copies(s, args.trial, progress, workers=args.workers)
            print(
                f"{out['trial']}: {out['images']} readers' copy(ies) written again from the "
                f"originals ({out['masked']} with their masks painted again); the old ones removed"
            )
        elif args.image_cmd == "region-missing":
            out = ws.mark_region_missing(
                s, args.trial, args.patient, args.visit, args.region, args.reason
            )
            print(
                f"{args.region} of {args.patient} at {args.visit}: not assessable for all readers"
            )
            print(f"  {out['reads_changed']} read(s) marked")
            if out["signed_reads_left"]:
                left = ", ".join(out["signed_reads_left"])
                print(f"  signed reads left as they are (their readers reopen them): {left}")
        return EXIT_OK

    return _run_store(args, body)


def _rectangle(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise _CliError(f"a rectangle is X,Y,WIDTH,HEIGHT in pixels, not {text!r}") from None
    return x, y, w, h


def cmd_progress(args: argparse.Namespace) -> int:
    def body(ws: Any, s: Any, pw: _Passwords) -> int:
        p = ws.progress(s, args.trial)
        if args.format == "json":
            print(json.dumps(p, indent=2))
            return EXIT_OK
        print(
            f"{'reader':<12} {'cases':>5} {'signed':>6} {'in prog.':>8} {'not st.':>7} "
            f"{'re-reads':>9} {'calib.':>7} {'median s/case':>13}"
        )
        for r in p["readers"]:
            med = r["median_seconds_per_case"]
            print(
                f"{r['reader']:<12} {r['cases']:>5} {r['signed']:>6} {r['in progress']:>8} "
                f"{r['not started']:>7} {r['rereads_signed']:>4}/{r['rereads']:<4} "
                f"{r['calibration_signed']:>3}/{r['calibration']:<3} "
                f"{med if med is not None else '-':>13}"
            )
        return EXIT_OK

    return _run_store(args, body)


def cmd_flags(args: argparse.Namespace) -> int:
    def body(ws: Any, s: Any, pw: _Passwords) -> int:
        if args.flags_cmd == "list":
            flags = ws.flags(s, args.trial, open_only=not args.all)
            if args.format == "json":
                print(json.dumps(flags, indent=2))
            for f in flags if args.format == "text" else []:
                state = "closed" if f["closed"] else "open"
                print(f"#{f['flag']} {state:<6} case {f['case']} {f['reader']}: {f['message']}")
                if f["answer"]:
                    print(f"      answer: {f['answer']}")
        else:
            ws.answer_flag(s, args.trial, args.flag, args.answer)
            print(f"flag {args.flag} answered and closed")
        return EXIT_OK

    return _run_store(args, body)


def cmd_calibration(args: argparse.Namespace) -> int:
    def body(ws: Any, s: Any, pw: _Passwords) -> int:
        if args.cal_cmd == "set":
            ws.set_trial_setting(
                s, args.trial, "calibration_reference", args.reference, args.reason
            )
            ws.set_trial_setting(
                s, args.trial, "calibration_patients", args.patients.split(","), args.reason
            )
            print(f"calibration set: {args.patients} (reference reads: {args.reference})")
        elif args.cal_cmd == "worklists":
            made = ws.calibration_worklists(s, args.trial)
            for reader, n in sorted(made.items()):
                print(f"{reader}: {n} calibration case(s)")
            if not made:
                print("every assigned reader has a calibration worklist already")
        elif args.cal_cmd == "show":
            report = ws.calibration_report(s, args.trial)
            if args.format == "json":
                print(json.dumps(report, indent=2))
                return EXIT_OK
            print(f"reference: {report['reference']} ({report['reference_reads']} reads)")
            for r in report["readers"]:
                icc = r["icc"]
                icc_text = f"{icc['value']} (n={r['icc_n']})" if icc else f"- (n={r['icc_n']})"
                state = "released" if r["released"] else "in calibration"
                print(
                    f"{r['reader']:<12} {r['signed']}/{r['cases']} signed  "
                    f"ICC(A,1) {icc_text}  {state}"
                )
                for feature, f in r["features"].items():
                    print(
                        f"    {feature}: {f['pct_exact']}% exact, {f['pct_within_one']}% within "
                        f"one grade (n={f['n']} areas)"
                    )
        else:
            ws.release_reader(s, args.trial, args.reader, args.reason)
            print(f"{args.reader} released to the trial's cases")
        return EXIT_OK

    return _run_store(args, body)


def cmd_adjudication(args: argparse.Namespace) -> int:
    def body(ws: Any, s: Any, pw: _Passwords) -> int:
        if args.adj_cmd == "freeze-sdc":
            value = ws.freeze_sdc(s, args.trial, args.reason)
            print(f"SDC frozen at {value:g}")
        elif args.adj_cmd == "update":
            out = ws.update_adjudication(s, args.trial)
            print(
                f"{out['checked']} patient(s) checked, {out['queued']} newly discrepant, "
                f"{out['done']} adjudication(s) completed"
            )
        elif args.adj_cmd == "assign":
            n = ws.assign_adjudications(s, args.trial, args.adjudicator)
            print(f"{n} patient(s) assigned to {args.adjudicator}")
        else:
            report = ws.adjudications(s, args.trial)
            if args.format == "json":
                print(json.dumps(report, indent=2))
                return EXIT_OK
            limit = (
                f"difference {report['difference']}"
                if report["trigger"] == "difference"
                else f"frozen SDC {report['frozen_sdc']}"
            )
            print(f"trigger: {limit}; final rule: {report['final_rule']}")
            for a in report["patients"]:
                who = a.get("patient", "-")
                res = a["result"]
                final = (
                    f" final change {res['final_change']:g} from {', '.join(res['reads'])}"
                    if res
                    else ""
                )
                print(f"{who:<12} {a['status']:<9} {'; '.join(a['reasons'])}{final}")
        return EXIT_OK

    return _run_store(args, body)


def cmd_demo(args: argparse.Namespace) -> int:
    from scorer.demo import SAMPLE_SEED, generate_samples, run_demo

    if args.samples_only:
        out = Path(args.samples_dir or "sample_images")
        print(f"Rendering the sample radiographs (seed {args.seed or SAMPLE_SEED}) into {out}")
        generate_samples(out, seed=args.seed or SAMPLE_SEED)
        return EXIT_OK
    try:
        result = run_demo(
            args.db, reset=args.reset, samples=Path(args.samples_dir) if args.samples_dir else None
        )
    except Exception as exc:
        _err(f"the demo could not be set up: {exc}")
        return EXIT_ERROR
    if result.created:
        print(
            f"\nDemo accounts (printed once; also in {result.accounts_file}, readable by you only):"
        )
        for user, password in result.passwords.items():
            print(f"  {user:<10} {password}")
    else:
        print(f"Accounts and passwords: {result.accounts_file}")
    db = f" --db {result.db}"
    scorer = _scorer_command()
    print(f"""
What to try next (the database is {result.db}):
  the case list a reader sees:
    {scorer} worklist show --trial DEMO-RA --user reader3{db}
  export the reads and look at reader1 and reader2's agreement:
    {scorer} export reads --trial DEMO-RA --out reads.csv --user coord{db}
    {scorer} analyze reads.csv
  check the audit trail:
    {scorer} audit verify{db}
""")

    if not args.no_gui:
        problem = _window_problem()
        if problem is not None:
            # The demo is ready; only the window cannot open here.
            _err(problem)
            print(
                "The demo is set up. Once the window can open here, open it with "
                f"`{scorer} gui --db {result.db} --user reader3`."
            )
            return EXIT_ERROR
        print(
            "Opening the workstation: log in as reader3 to score the waiting cases, or as "
            "coord for the coordinator's desk."
        )
        return _open_workstation(result.db, username="reader3", trial="DEMO-RA")
    return EXIT_OK


def _scorer_command() -> str:
    """How to run scorer again from this shell: ``scorer`` when that is on PATH, else the
    path this scorer was started by (``.venv/bin/scorer``), or ``PYTHON -m scorer``."""
    import shlex
    import shutil

    on_path = shutil.which("scorer")
    started = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if started is not None and started.stem == "scorer" and started.suffix in ("", ".exe"):
        if on_path and Path(on_path).resolve() == started.resolve():
            return "scorer"
        return shlex.quote(str(started))
    if on_path:
        return "scorer"
    return f"{shlex.quote(sys.executable)} -m scorer"


def _window_problem() -> str | None:
    """Why the workstation's window cannot open here (no display; the system libraries Qt's
    platform plugin lacks, by name, with the command that installs them), or None."""
    try:
        from scorer.gui.qt_runtime import window_problem  # standard library only
    except ImportError as exc:
        return _qt_missing(exc)
    return window_problem()


def _qt_missing(exc: ImportError) -> str:
    return (
        f"the workstation needs Qt (PySide6) and its system libraries: {exc}. "
        "scripts/setup.sh, run as root, installs them."
    )


def _open_workstation(
    db: str | None, username: str = "", trial: str | None = None, password: str | None = None
) -> int:
    problem = _window_problem()
    if problem is not None:
        _err(problem)
        return EXIT_ERROR
    try:
        from scorer.gui.workstation import run_workstation
    except ImportError as exc:
        _err(_qt_missing(exc))
        return EXIT_ERROR
    try:
        return run_workstation(db, username=username, trial=trial, password=password)
    except Exception as exc:
        from scorer.workspace import ScorerError  # not before: the window comes up first

        if not isinstance(exc, ScorerError):
            raise
        _err(str(exc))
        return EXIT_ERROR


def cmd_gui(args: argparse.Namespace) -> int:
    password = None
    if args.password_stdin:
        if not args.user:
            _err("--password-stdin logs in as --user: name the user")
            return EXIT_USAGE
        try:
            password = _Passwords(True).get("password: ")
        except _CliError as exc:
            _err(str(exc))
            return EXIT_ERROR
    return _open_workstation(args.db, username=args.user or "", trial=args.trial, password=password)


def cmd_audit(args: argparse.Namespace) -> int:
    from scorer.workspace import ScorerError

    try:
        ws = _open_ws(args)
    except ScorerError as exc:
        _err(str(exc))
        return EXIT_ERROR
    try:
        result = ws.verify()
    finally:
        ws.close()
    if args.format == "json":
        print(
            json.dumps(
                {
                    "ok": result.ok,
                    "errors": result.errors,
                    "warnings": result.warnings,
                    "rows": result.rows,
                    "signatures": result.signatures,
                    "heads": {t: {"rows": h.seq, "mac": h.mac} for t, h in result.heads.items()},
                },
                indent=2,
            )
        )
    else:
        for t, h in result.heads.items():
            print(f"{t}: {h.seq} rows, head {h.mac[:16]}...")
        print(f"signatures checked: {result.signatures}")
        for w in result.warnings:
            print(f"warning: {w}")
        for e in result.errors:
            print(f"FAILED: {e}")
        print("audit trail verifies" if result.ok else "audit trail does NOT verify")
    return EXIT_OK if result.ok else EXIT_ERROR


_POLICY = (
    "Passwords: at least 10 characters, not the user ID or name, not in the bundled list of "
    "common passwords, not one of the account's last 5; never given on the command line."
)


#: argparse's "invalid choice: 'VALUE'" (Python 3.11 quotes with repr, 3.12+ with quotes).
_INVALID_CHOICE = re.compile(
    r"(argument [^:]*: )invalid choice: (?:'[^\n]*?'|\"[^\n]*?\")(?= \(choose from)"
)

#: An unrecognised argument named in the error: an option's plain ASCII name, nothing else.
_PLAIN_OPTION = re.compile(r"--[A-Za-z][A-Za-z-]{0,39}")


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error's value shown safely (escaped, cut short), and arguments
    it does not understand never printed back (one of them may be a password)."""

    def error(self, message: str) -> NoReturn:
        # argparse quotes the word it did not take ("invalid choice: 'Hunter2-x'"): a word in
        # a command's place may be a password typed at the wrong prompt, so it is not shown.
        message = _INVALID_CHOICE.sub(
            r"\1invalid choice (not printed, in case it is a password)", message
        )
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {_visible(message)}\n")

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        given = list(sys.argv[1:] if args is None else args)
        parsed, extra = self.parse_known_args(given, namespace)
        if extra:
            command = self._command_for(given)
            names = [
                a
                for a in extra
                if _PLAIN_OPTION.fullmatch(a) and _password_on_command_line([a]) is None
            ]
            others = len(extra) - len(names)
            said = ", ".join(names)
            if others:
                said += (" and " if names else "") + (
                    f"{others} {'other ' if names else ''}argument{'s' if others > 1 else ''} "
                    f"not understood by `{command.prog}` (not printed, in case one is a "
                    "password)"
                )
            command.error(f"unrecognized arguments: {said}; see `{command.prog} --help`")
        return parsed

    def _command_for(self, argv: Sequence[str]) -> argparse.ArgumentParser:
        """The (sub)command ``argv`` names, as deep as its words go."""
        parser: argparse.ArgumentParser = self
        for word in argv:
            subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
            if subs and word in subs[0].choices:
                parser = subs[0].choices[word]
        return parser


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="scorer",
        description="Radiographic scoring workstation for rheumatoid-arthritis trials.",
    )
    p.add_argument("--version", action="version", version=f"scorer {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    a = sub.add_parser(
        "analyze",
        help="reader agreement, SDC and progression from a reads CSV",
        description="A statistician's tool over any reads CSV (spec §9): totals, change, SDC, "
        "progression counts, ICCs, Bland-Altman and per-area weighted kappa.",
    )
    a.add_argument("reads", metavar="READS.csv")
    a.add_argument("--method", help="method to analyse (default: svh if present)")
    a.add_argument("--from", dest="visit_from", metavar="VISIT", help="earlier visit of the change")
    a.add_argument("--to", dest="visit_to", metavar="VISIT", help="later visit of the change")
    a.add_argument("--sdc-level", type=int, choices=(95, 80), default=95)
    a.add_argument("--format", choices=("text", "json"), default="text")
    a.add_argument(
        "--missing-areas",
        choices=("paired_proportional", "mean_imputation", "missing"),
        default="paired_proportional",
        help="missing-area rule (spec §6)",
    )
    a.add_argument(
        "--max-unused",
        type=float,
        default=25.0,
        metavar="PERCENT",
        help="share of a region's areas that may be unused before its total is "
        "missing (default 25)",
    )
    a.add_argument(
        "--missing-visits",
        choices=("missing", "locf", "linear"),
        default="missing",
        help="a reader's missing later visit: left missing, last observation carried "
        "forward, or linear extrapolation on actual dates",
    )
    a.add_argument(
        "--operated",
        choices=("missing", "max"),
        default="missing",
        help="operated areas count as missing or take the maximum grade",
    )
    a.add_argument(
        "--threshold",
        action="append",
        metavar="T",
        help="progression threshold, repeatable: sdc95, sdc80 or a number, optionally after "
        "> or >= (> when none is given), e.g. '>=sdc95', '>0.5'; rapid progression on "
        "annualised change states its comparison: 'rapid>=5' (the default) or 'rapid>5'",
    )
    a.add_argument("--no-kappa", action="store_true", help="skip the per-area kappa table")
    a.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")
    a.set_defaults(func=cmd_analyze)

    m = sub.add_parser("methods", help="list the scoring methods, or validate method files")
    m.add_argument("files", nargs="*", metavar="FILE.toml")
    m.set_defaults(func=cmd_methods)

    e = sub.add_parser("example", help="write the worked example (spec §10) as a reads CSV")
    e.add_argument("--out", metavar="FILE")
    e.set_defaults(func=cmd_example)

    def db_opts(sp: argparse.ArgumentParser, login: bool = True) -> None:
        sp.add_argument(
            "--db",
            metavar="URL",
            help="database URL or SQLite path (default: SCORER_DB, the site config, "
            "or the user data directory)",
        )
        if login:
            sp.add_argument("--user", metavar="NAME", help="your user ID (or SCORER_USER)")
            sp.add_argument(
                "--password-stdin",
                action="store_true",
                help="read passwords from standard input, one per line",
            )

    i = sub.add_parser("init", help="create the database and the first administrator")
    db_opts(i, login=False)
    i.add_argument("--admin", required=True, metavar="NAME", help="the administrator's user ID")
    i.add_argument("--name", metavar="FULL NAME", help="printed name for signatures")
    i.add_argument("--password-stdin", action="store_true")
    i.set_defaults(func=cmd_init)

    mg = sub.add_parser("migrate", help="upgrade the database schema (back it up first)")
    db_opts(mg, login=False)
    mg.set_defaults(func=cmd_migrate)

    gr = sub.add_parser(
        "grant",
        help="PostgreSQL: give the workstations' role its privileges (trail append-only)",
    )
    gr.add_argument("role", help="the PostgreSQL role the workstations log in as")
    db_opts(gr, login=False)
    gr.set_defaults(func=cmd_grant)

    u = sub.add_parser(
        "user", help="accounts: add, list, disable, reset-password (admin); passwd (your own)"
    )
    usub = u.add_subparsers(dest="user_cmd", required=True)
    ua = usub.add_parser(
        "add",
        help="add an account with a first password (admin)",
        description="Add an account. Its first password is asked twice (with --password-stdin: "
        "the admin's password, then the new account's, one per line). The new account must "
        "change it at its first log-in: in the window, or on its first command here, which "
        "asks for the first password, then the new one twice (with --password-stdin: three "
        "lines) before it runs; or with `scorer user passwd`.",
        epilog=_POLICY,
    )
    ua.add_argument("username")
    ua.add_argument("--name", required=True, metavar="FULL NAME")
    ua.add_argument(
        "--role",
        required=True,
        choices=("reader", "adjudicator", "coordinator", "monitor", "admin"),
    )
    ul = usub.add_parser("list")
    ul.add_argument("--format", choices=("text", "json"), default="text")
    ud = usub.add_parser("disable")
    ud.add_argument("username")
    ud.add_argument("--reason", required=True)
    ur = usub.add_parser("reset-password", epilog=_POLICY)
    ur.add_argument("username")
    ur.add_argument("--reason", required=True)
    up = usub.add_parser(
        "passwd",
        help="change your own password",
        description="Change your own password: the current one, then the new one twice (with "
        "--password-stdin: three lines). Also for an account that must change its password "
        "(a new account, or after reset-password).",
        epilog=_POLICY,
    )
    for sp in (ua, ul, ud, ur, up):
        db_opts(sp)
    u.set_defaults(func=cmd_user)

    t = sub.add_parser(
        "trial", help="trials: create, list, show, set, assign, campaign, lock, unlock"
    )
    tsub = t.add_subparsers(dest="trial_cmd", required=True)
    tc = tsub.add_parser("create", help="from a protocol file (TOML or JSON) or options")
    tc.add_argument("code", nargs="?")
    tc.add_argument("--protocol", metavar="FILE.toml|FILE.json")
    tc.add_argument("--name")
    tc.add_argument("--method", action="append", choices=("svh", "larsen1995"))
    tc.add_argument(
        "--design", default="paired_blinded", choices=("paired_blinded", "chronological", "single")
    )
    tc.add_argument("--visits", metavar="W0,W24,W52")
    tl = tsub.add_parser("list")
    tl.add_argument("--format", choices=("text", "json"), default="text")
    ts = tsub.add_parser("show", help="the trial's settings")
    ts.add_argument("code")
    ts.add_argument("--format", choices=("text", "json"), default="text")
    tset = tsub.add_parser("set", help="change one setting, with a reason (audited)")
    tset.add_argument("code")
    tset.add_argument("setting")
    tset.add_argument("value", help="a number, a word, or JSON")
    tset.add_argument("--reason", required=True)
    tas = tsub.add_parser("assign", help="assign a reader (all patients, or --patients)")
    tas.add_argument("code")
    tas.add_argument("reader")
    tas.add_argument("--patients", metavar="CODE,CODE", help="patient codes of a subset")
    tcp = tsub.add_parser("campaign", help="open a campaign for visits added later")
    tcp.add_argument("code")
    tcp.add_argument("name")
    tcp.add_argument("--visits", required=True, metavar="W104,W156")
    tlk = tsub.add_parser("lock", help="lock the reading (signed, meaning approved)")
    tlk.add_argument("code")
    tul = tsub.add_parser("unlock", help="unlock: a reason and a second person's signature")
    tul.add_argument("code")
    tul.add_argument("--reason", required=True)
    tul.add_argument("--second", required=True, metavar="USER", help="the second signer")
    for sp in (tc, tl, ts, tset, tas, tcp, tlk, tul):
        db_opts(sp)
    t.set_defaults(func=cmd_trial)

    w = sub.add_parser("worklist", help="worklists: generate, show, verify")
    wsub = w.add_subparsers(dest="worklist_cmd", required=True)
    wg = wsub.add_parser("generate", help="make worklists from fresh stored seeds")
    ws_ = wsub.add_parser("show", help="a worklist as you may see it")
    wv = wsub.add_parser("verify", help="regenerate every worklist from its seed and compare")
    for sp in (wg, ws_, wv):
        sp.add_argument("--trial", required=True)
        db_opts(sp)
    for sp in (wg, ws_):
        sp.add_argument("--reader")
        sp.add_argument("--campaign", type=int)
    ws_.add_argument("--format", choices=("text", "json"), default="text")
    w.set_defaults(func=cmd_worklist)

    r = sub.add_parser("reads", help="reads: import a reads CSV")
    rsub = r.add_subparsers(dest="reads_cmd", required=True)
    ri = rsub.add_parser("import")
    ri.add_argument("file", metavar="FILE.csv")
    ri.add_argument("--trial", required=True)
    db_opts(ri)
    r.set_defaults(func=cmd_reads)

    x = sub.add_parser("export", help="exports: reads, totals, audit trail, transfer package")
    xsub = x.add_subparsers(dest="export_cmd", required=True)
    xr = xsub.add_parser("reads", help="the reads CSV (spec §9) and its manifest beside it")
    xr.add_argument("--trial", required=True)
    xr.add_argument("--out", required=True, metavar="FILE.csv")
    xr.add_argument(
        "--blinded", action="store_true", help="patient codes instead of real identifiers"
    )
    xt = xsub.add_parser("totals", help="per-patient totals per visit and change")
    xt.add_argument("--trial", required=True)
    xt.add_argument("--out", required=True, metavar="FILE.csv")
    xa = xsub.add_parser("audit", help="the whole audit trail as CSV")
    xa.add_argument("--out", required=True, metavar="FILE.csv")
    xp = xsub.add_parser("package", help="the sponsor's zip of a locked trial, with checksums")
    xp.add_argument("--trial", required=True)
    xp.add_argument("--out", required=True, metavar="FILE.zip")
    for sp in (xr, xt, xa, xp):
        db_opts(sp)
    x.set_defaults(func=cmd_export)

    bk = sub.add_parser("backup", help="an online backup of the SQLite store, in one zip")
    bk.add_argument("--out", required=True, metavar="FILE.zip")
    db_opts(bk)
    bk.set_defaults(func=cmd_backup)
    rs = sub.add_parser("restore", help="restore a backup to a new database path, checked")
    rs.add_argument("file", metavar="FILE.zip")
    rs.add_argument("--db", metavar="PATH", help="where to restore (must not exist)")
    rs.set_defaults(func=cmd_restore)

    rp = sub.add_parser("report", help="reports: agreement (from the database), endpoints")
    rpsub = rp.add_subparsers(dest="report_cmd", required=True)
    rpa = rpsub.add_parser("agreement", help="reader agreement: ICC, SDC, Bland-Altman, kappa")
    rpa.add_argument("--trial", required=True)
    rpa.add_argument("--out", required=True, metavar="FILE.{html,pdf,json,xlsx}")
    db_opts(rpa)
    rpe = rpsub.add_parser(
        "endpoints", help="change and progression per arm from a locked export (no database)"
    )
    rpe.add_argument("--reads", required=True, metavar="LOCKED_EXPORT.csv")
    rpe.add_argument(
        "--arms",
        required=True,
        metavar="ALLOCATION.csv",
        help="patient,arm[,factor...]: any further columns are stratification factors",
    )
    rpe.add_argument(
        "--manifest", metavar="FILE.json", help="default: the .manifest.json beside the export"
    )
    rpe.add_argument(
        "--control",
        metavar="ARM",
        help="the control arm the others are compared with (default: an arm called placebo "
        "or control, else the first by name; the report says which)",
    )
    rpe.add_argument("--from", dest="visit_from", metavar="VISIT", help="default: the first visit")
    rpe.add_argument("--to", dest="visit_to", metavar="VISIT", help="default: the last visit")
    rpe.add_argument("--out", required=True, metavar="FILE.{html,pdf,json,xlsx}")
    rp.set_defaults(func=cmd_report)

    im = sub.add_parser("import", help="import DICOM (and PNG/JPEG/TIFF with a manifest)")
    im.add_argument("paths", nargs="+", metavar="PATH", help="files, folders or zip archives")
    im.add_argument("--trial", required=True)
    im.add_argument(
        "--manifest", metavar="FILE.csv", help="file,patient,visit,date,regions for each file"
    )
    im.add_argument("--format", choices=("text", "json"), default="text")
    im.add_argument("--workers", type=int, default=2, help="decode worker processes")
    im.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="time limit to decode one file",
    )
    im.add_argument(
        "--max-mb",
        type=float,
        default=1024.0,
        metavar="MB",
        help="refuse files larger than this, from their size, unread (1024 MB)",
    )
    im.add_argument("--quiet", action="store_true", help="no progress bar")
    db_opts(im)
    im.set_defaults(func=cmd_import)

    rv = sub.add_parser(
        "receive",
        help="receive radiographs over DICOM (C-STORE SCP) into a trial, until stopped",
    )
    rv.add_argument("--trial", required=True)
    rv.add_argument("--port", type=int, default=11112, help="TCP port to listen on (11112)")
    rv.add_argument("--aet", default="SCORER", help="this workstation's AE title (SCORER)")
    rv.add_argument(
        "--host", default="0.0.0.0", help="address to listen on (all; 127.0.0.1 for this host)"
    )
    rv.add_argument(
        "--allow",
        nargs="+",
        default=[],
        metavar="AET",
        help="calling AE titles allowed to send, besides the trial's dicom_senders",
    )
    rv.add_argument(
        "--max-mb", type=int, default=1024, help="refuse instances larger than this (1024 MB)"
    )
    rv.add_argument("--workers", type=int, default=1, help="decode worker processes")
    db_opts(rv)
    rv.set_defaults(func=cmd_receive)

    pl = sub.add_parser(
        "pull", help="query a PACS for a patient's studies and retrieve them into a trial"
    )
    pl.add_argument("--trial", required=True)
    pl.add_argument("--from", dest="source", required=True, metavar="AET@HOST:PORT")
    pl.add_argument("--patient", required=True, metavar="ID", help="the patient ID at the PACS")
    pl.add_argument("--study", metavar="UID", help="only this Study Instance UID")
    pl.add_argument("--aet", default="SCORER", help="this workstation's AE title (SCORER)")
    pl.add_argument(
        "--move-to",
        metavar="AET",
        help="C-MOVE to this receiver (scorer receive) instead of C-GET",
    )
    pl.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS")
    pl.add_argument("--format", choices=("text", "json"), default="text")
    pl.add_argument("--quiet", action="store_true", help="no progress")
    db_opts(pl)
    pl.set_defaults(func=cmd_pull)

    ig = sub.add_parser("image", help="images: export-png")
    igsub = ig.add_subparsers(dest="image_cmd", required=True)
    ie = igsub.add_parser("export-png", help="what a reader sees of an image, as a PNG")
    ie.add_argument("image", metavar="IMAGE_ID", help="the image code (from the import)")
    ie.add_argument("--out", required=True, metavar="FILE.png")
    ie.add_argument("--window", metavar="C,W", help="window centre,width instead of the default")
    ie.add_argument("--max-size", type=int, metavar="PX", help="scale down to this longer side")
    il = igsub.add_parser("list", help="the trial's images with their flags")
    il.add_argument("--trial", required=True)
    il.add_argument("--flagged", action="store_true", help="only images flagged at import")
    il.add_argument("--format", choices=("text", "json"), default="text")
    iq = igsub.add_parser(
        "qc", help="pass an image held for QC (it reaches its cases), or fail it (never)"
    )
    iq.add_argument("image", metavar="IMAGE_ID")
    iq.add_argument("state", choices=("passed", "failed"))
    iq.add_argument("--reason", help="why (required to fail an image)")
    ir = igsub.add_parser("reassign", help="move an image to another patient, visit or regions")
    ir.add_argument("image", metavar="IMAGE_ID")
    ir.add_argument("--patient", metavar="CODE")
    ir.add_argument("--visit", metavar="LABEL")
    ir.add_argument("--regions", metavar="LH,RH")
    ir.add_argument("--reason", required=True)
    imk = igsub.add_parser("mask", help="black out burned-in text on the readers' copy")
    imk.add_argument("image", metavar="IMAGE_ID")
    imk.add_argument("--rect", action="append", required=True, metavar="X,Y,W,H")
    imk.add_argument("--reason", required=True)
    irm = igsub.add_parser("region-missing", help="a region without image: not assessable")
    irm.add_argument("--trial", required=True)
    irm.add_argument("--patient", required=True, metavar="CODE")
    irm.add_argument("--visit", required=True, metavar="LABEL")
    irm.add_argument("--region", required=True, choices=("LH", "RH", "LF", "RF"))
    irm.add_argument("--reason", required=True)
    irs = igsub.add_parser(
        "reissue",
        help="write every readers' copy of a trial again from its original under the current "
        "rules (keep-list, UIDs drawn per image, masks painted again), audited",
    )
    irs.add_argument("--trial", required=True)
    irs.add_argument("--workers", type=int, default=2, help="decode worker processes")
    irs.add_argument("--quiet", action="store_true", help="no progress")
    for sp in (ie, il, iq, ir, imk, irm, irs):
        db_opts(sp)
    ig.set_defaults(func=cmd_image)

    pg = sub.add_parser("progress", help="the reading's progress per reader (coordinator)")
    pg.add_argument("--trial", required=True)
    pg.add_argument("--format", choices=("text", "json"), default="text")
    db_opts(pg)
    pg.set_defaults(func=cmd_progress)

    fl = sub.add_parser("flags", help="reader flags: list, answer (coordinator)")
    flsub = fl.add_subparsers(dest="flags_cmd", required=True)
    fll = flsub.add_parser("list")
    fll.add_argument("--all", action="store_true", help="closed flags too")
    fll.add_argument("--format", choices=("text", "json"), default="text")
    fla = flsub.add_parser("answer", help="answer a flag and close it")
    fla.add_argument("flag", type=int)
    fla.add_argument("--answer", required=True)
    for sp in (fll, fla):
        sp.add_argument("--trial", required=True)
        db_opts(sp)
    fl.set_defaults(func=cmd_flags)

    cal = sub.add_parser("calibration", help="calibration: set, worklists, show, release")
    calsub = cal.add_subparsers(dest="cal_cmd", required=True)
    cs = calsub.add_parser("set", help="the calibration patients and whose reads are reference")
    cs.add_argument("--patients", required=True, metavar="CODE,CODE")
    cs.add_argument("--reference", required=True, metavar="USER")
    cs.add_argument("--reason", required=True)
    cw = calsub.add_parser("worklists", help="calibration worklists for the assigned readers")
    csh = calsub.add_parser("show", help="each reader's agreement with the reference")
    csh.add_argument("--format", choices=("text", "json"), default="text")
    cr = calsub.add_parser("release", help="release a calibrated reader to the trial's cases")
    cr.add_argument("reader")
    cr.add_argument("--reason", required=True)
    for sp in (cs, cw, csh, cr):
        sp.add_argument("--trial", required=True)
        db_opts(sp)
    cal.set_defaults(func=cmd_calibration)

    adj = sub.add_parser("adjudication", help="adjudication: freeze-sdc, update, assign, show")
    adjsub = adj.add_subparsers(dest="adj_cmd", required=True)
    af = adjsub.add_parser("freeze-sdc", help="compute the SDC now and freeze it")
    af.add_argument("--reason", required=True)
    au_ = adjsub.add_parser("update", help="queue discrepant patients, finish adjudications")
    aa = adjsub.add_parser("assign", help="give the queued patients to an adjudicator")
    aa.add_argument("adjudicator")
    ash = adjsub.add_parser("show", help="the queue, the rule applied and the results")
    ash.add_argument("--format", choices=("text", "json"), default="text")
    for sp in (af, au_, aa, ash):
        sp.add_argument("--trial", required=True)
        db_opts(sp)
    adj.set_defaults(func=cmd_adjudication)

    dm = sub.add_parser("demo", help="set up (or reuse) the demo trial and open the workstation")
    dm.add_argument(
        "--db",
        metavar="URL",
        help="demo database (default: SCORER_DB, or a demo folder in the data directory)",
    )
    dm.add_argument("--no-gui", action="store_true", help="set everything up, open no window")
    dm.add_argument("--reset", action="store_true", help="start the demo database over")
    dm.add_argument(
        "--samples-only",
        action="store_true",
        help="only render the sample radiographs (into --samples-dir)",
    )
    dm.add_argument("--samples-dir", metavar="DIR", help="where the sample radiographs are")
    dm.add_argument("--seed", type=int, help="seed of the sample radiographs")
    dm.set_defaults(func=cmd_demo)

    g = sub.add_parser("gui", help="open the workstation (log in, worklist, scoring)")
    g.add_argument("--db", help="database (SQLite path or URL; default as for every command)")
    g.add_argument("--user", help="user ID to fill in at log-in")
    g.add_argument("--trial", help="trial to open (default: ask when you read in several)")
    g.add_argument(
        "--password-stdin",
        action="store_true",
        help="read --user's password from the first line of standard input and log in at once "
        "(for scripts and tests; never put a password on the command line)",
    )
    g.set_defaults(func=cmd_gui)

    au = sub.add_parser("audit", help="audit: verify the trail, receipts and signatures")
    ausub = au.add_subparsers(dest="audit_cmd", required=True)
    av = ausub.add_parser("verify")
    av.add_argument("--format", choices=("text", "json"), default="text")
    db_opts(av, login=False)
    au.set_defaults(func=cmd_audit)
    return p


#: Dashes a name may be typed with (a word processor turns "--" into an en or em dash).
_DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
#: An option name that says a secret follows (or is glued to it): "pw" as a word.
_SECRET_NAME = re.compile(r"pass|pwd|secret|token|(?<![a-z])pw(?![a-z])")
#: Words an option naming a secret may be printed with: anything else might be the secret.
_NAME_WORDS = frozenset(
    {
        *("new", "old", "initial", "admin", "user", "current", "confirm", "first", "again"),
        *("db", "database", "api", "access", "auth", "root", "password", "passwd", "pass"),
        *("pw", "pwd", "secret", "token"),
    }
)


def _password_on_command_line(argv: Sequence[str]) -> str | None:
    """How to name an option that looks like a password (or another secret) given on the
    command line, if any: "--new-password", "—password" (any dashes), "--secret=...", "-pX".
    Its value is never shown, nor a name that might hold it ("--passwordHunter2")."""
    for arg in argv:
        if arg == "--":
            break
        name = arg.split("=", 1)[0]
        if name == "--password-stdin" and "=" not in arg:
            continue
        if not name or name[0] not in _DASHES or any(c.isspace() for c in name):
            continue
        bare = name.lstrip(_DASHES).lower()
        single = name.startswith("-") and not name.startswith("--") and bare.startswith("p")
        if not (single or _SECRET_NAME.search(bare)):
            continue
        words = bare.split("-")
        shown = (
            name.isascii()
            and name.startswith("--")
            and len(words) <= 4
            and all(w in _NAME_WORDS for w in words)
        ) or name in ("-p", "—password", "–password")
        return name if shown else "a password option"
    return None


def _unreadable_argument(argv: Sequence[str]) -> str | None:
    """Why an argument cannot be taken, or None: bytes that are not UTF-8 (they reach Python
    as lone surrogates), or a NUL (no file name or value holds one)."""
    for i, arg in enumerate(argv):
        name = argv[i - 1] if i and argv[i - 1].startswith("-") else f"argument {i + 1}"
        for c in arg:
            if "\udc80" <= c <= "\udcff":
                return (
                    f"{name}: byte 0x{ord(c) - 0xDC00:02x} is not UTF-8 text; scorer's "
                    "arguments are UTF-8"
                )
            if "\ud800" <= c <= "\udfff" or c == "\x00":
                return f"{name}: U+{ord(c):04X} cannot be in an argument"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Exit codes: 0 done, 1 input or data refused, 2 usage error."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    refused = _password_on_command_line(args_in)
    if refused is not None:
        # Refuse before argparse, whose errors would print the value back.
        _err(
            f"{refused}: passwords are never taken on the command line: use the prompt "
            "or --password-stdin"
        )
        return EXIT_USAGE
    parser = build_parser()
    problem = _unreadable_argument(sys.argv[1:] if argv is None else list(argv))
    if problem:
        parser.print_usage(sys.stderr)
        _err(problem)
        return EXIT_USAGE
    args = parser.parse_args(args_in)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        result: int = args.func(args)
    except OSError as exc:  # a file or folder that cannot be used: a name too long, a folder
        what = f"{exc.filename}: " if exc.filename else ""
        _err(f"{what}{exc.strerror or exc}")
        return EXIT_ERROR
    return result


if __name__ == "__main__":
    raise SystemExit(main())
