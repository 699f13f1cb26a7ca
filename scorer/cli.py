"""The command line: ``scorer COMMAND ...`` over the same code the workstation uses."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from scorer import __version__

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


def _write_atomic(path: Path, text: str) -> None:
    """Write a file whole or not at all."""
    path = path.resolve()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _err(msg: str) -> None:
    print(f"scorer: error: {msg}", file=sys.stderr)


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
        )
        options = AnalysisOptions(
            method=args.method,
            visit_from=args.visit_from,
            visit_to=args.visit_to,
            sdc_level=args.sdc_level,
            rules=rules,
            thresholds=tuple(parse_threshold(t) for t in args.threshold)
            if args.threshold
            else AnalysisOptions().thresholds,
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
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
        "--operated",
        choices=("missing", "max"),
        default="missing",
        help="operated areas count as missing or take the maximum grade",
    )
    a.add_argument(
        "--threshold",
        action="append",
        metavar="T",
        help="progression threshold: sdc95, sdc80, 0, 0.5, a number; repeatable",
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
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
