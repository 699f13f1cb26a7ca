"""Commands over a reads CSV and the scoring methods, without a database: analyze, methods,
example."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

from scorer.cli.output import EXIT_ERROR, EXIT_OK, OutputFormat, err, write_atomic
from scorer.cli.registry import Opt, command
from scorer.core.totals import AreaRule, OperatedRule, VisitRule


def _sdc_levels() -> tuple[int, ...]:
    """The SDC levels the statistics know (95, 80)."""
    from scorer.stats.agreement import SDC_Z

    return tuple(SDC_Z)


@command("analyze")
def analyze(
    reads: Annotated[str, Opt(metavar="READS.csv")],
    *,
    method: str | None = None,
    visit_from: Annotated[str | None, Opt(flag="--from", metavar="VISIT")] = None,
    visit_to: Annotated[str | None, Opt(flag="--to", metavar="VISIT")] = None,
    sdc_level: Annotated[int, Opt(choices=_sdc_levels)] = 95,
    format: OutputFormat = "text",
    missing_areas: AreaRule = "paired_proportional",
    max_unused: Annotated[float, Opt(metavar="PERCENT")] = 25.0,
    missing_visits: VisitRule = "missing",
    operated: OperatedRule = "missing",
    threshold: Annotated[list[str] | None, Opt(metavar="T")] = None,
    no_kappa: bool = False,
    out: Annotated[str | None, Opt(metavar="FILE")] = None,
) -> int:
    """reader agreement, SDC and progression from a reads CSV

    A statistician's tool over any reads CSV (spec §9): totals, change, SDC, progression
    counts, ICCs, Bland-Altman and per-area weighted kappa.

    Args:
        method: method to analyse (default: svh if present)
        visit_from: earlier visit of the change
        visit_to: later visit of the change
        missing_areas: missing-area rule (spec §6)
        max_unused: share of a region's areas that may be unused before its total is missing
            (default 25)
        missing_visits: a reader's missing later visit: left missing, last observation carried
            forward, or linear extrapolation on actual dates
        operated: operated areas count as missing or take the maximum grade
        threshold: progression threshold, repeatable: sdc95, sdc80 or a number, optionally
            after > or >= (> when none is given), e.g. '>=sdc95', '>0.5'; rapid progression on
            annualised change states its comparison: 'rapid>=5' (the default) or 'rapid>5'
        no_kappa: skip the per-area kappa table
        out: write to FILE instead of standard output
    """
    from scorer.core.methods import builtin_methods
    from scorer.core.progression import parse_threshold
    from scorer.core.totals import MissingDataRules
    from scorer.reports.analysis import AnalysisError, AnalysisOptions
    from scorer.reports.analysis import analyze as run_analysis
    from scorer.reports.analysis_text import format_analysis
    from scorer.stats.icc import start_loading

    _reuse_freed_memory()
    start_loading()  # scipy's F distribution loads while the file is read (a fifth of a second)
    parsed = _read_reads(Path(reads))
    if parsed is None:
        return EXIT_ERROR
    methods = dict(builtin_methods())
    try:
        rules = MissingDataRules(
            areas=missing_areas,
            max_unused_share=max_unused / 100.0,
            operated=operated,
            visits=missing_visits,
        )
        # Change thresholds given replace the defaults; rapid ones given replace rapid>=5.
        given = [parse_threshold(t) for t in threshold or ()]
        thresholds = tuple(t for t in given if not t.annualised) or AnalysisOptions().thresholds
        thresholds += tuple(t for t in given if t.annualised)
        options = AnalysisOptions(
            method=method,
            visit_from=visit_from,
            visit_to=visit_to,
            sdc_level=sdc_level,
            rules=rules,
            thresholds=thresholds,
            kappa=not no_kappa,
        )
        result = run_analysis(parsed, methods, options)
    except (AnalysisError, ValueError) as exc:
        err(str(exc))
        return EXIT_ERROR
    text = (
        json.dumps(result, indent=2, sort_keys=False) + "\n"
        if format == "json"
        else format_analysis(result)
    )
    if out:
        try:
            write_atomic(Path(out), text)
        except OSError as exc:
            err(f"cannot write {out}: {exc.strerror or exc}")
            return EXIT_ERROR
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _reuse_freed_memory() -> None:
    """Have glibc keep the memory this short-lived process frees, for its next allocation.

    Reading a trial's file makes the same few megabytes of numpy temporaries block after
    block; by default glibc hands each back to the system and the next is page-faulted in
    afresh (70,000 faults, a tenth of a second on the 1,000-patient file). Elsewhere than
    glibc (macOS, Windows, musl) this does nothing.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError, TypeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    mallopt(m_mmap_threshold, 32 << 20)  # glibc's largest: blocks above it are mapped apart
    mallopt(m_trim_threshold, 1 << 30)


def _read_reads(path: Path) -> Any | None:
    """The reads of a reads CSV, or None (said why) when it cannot be read or is not valid."""
    from scorer.core.methods import MethodError, builtin_methods
    from scorer.core.readscsv import ReadsCsvError
    from scorer.reports.reads_columns import read_reads

    try:
        data = path.read_bytes()
    except OSError as exc:
        err(f"cannot read {path}: {exc.strerror or exc}")
        return None
    try:
        return read_reads(data, dict(builtin_methods()))
    except ReadsCsvError as exc:
        err(f"{path} is not a valid reads CSV:")
        print(str(exc), file=sys.stderr)
        return None
    except MethodError as exc:
        err(str(exc))
        return None


@command("methods")
def methods(files: Annotated[list[str] | None, Opt(metavar="FILE.toml")] = None) -> int:
    """list the scoring methods, or validate method files"""
    from scorer.core.methods import MethodError, builtin_methods, load_methods

    try:
        found = load_methods([Path(p) for p in files]) if files else builtin_methods()
    except MethodError as exc:
        err(str(exc))
        return EXIT_ERROR
    for m in found.values():
        derived = f", derived from {m.derived_from}" if m.derived_from else ""
        print(f"{m.id}: {m.name} — {len(m.areas)} areas, range 0–{m.max_total:g}{derived}")
        print(f"    {m.citation}")
    return EXIT_OK


@command("example")
def example(*, out: Annotated[str | None, Opt(metavar="FILE")] = None) -> int:
    """write the worked example (spec §10) as a reads CSV"""
    from scorer.core.example import worked_example_reads
    from scorer.core.readscsv import format_reads_csv

    text = format_reads_csv(worked_example_reads())
    if out:
        write_atomic(Path(out), text)
    else:
        sys.stdout.write(text)
    return EXIT_OK
