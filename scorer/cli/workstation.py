"""The commands that open the workstation's window: demo (after setting the demo up) and gui.

Qt is imported only here, inside the commands, after checking that the window can open; the
rest of the command line runs without it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

from scorer.cli.options import (
    CliError,
    Passwords,
    Station,
    refuse_server_database,
    server_url,
)
from scorer.cli.output import EXIT_ERROR, EXIT_OK, EXIT_USAGE, err
from scorer.cli.registry import Opt, command


@command("demo")
def demo(
    *,
    db: Annotated[str | None, Opt(metavar="URL")] = None,
    no_gui: bool = False,
    reset: bool = False,
    samples_only: bool = False,
    samples_dir: Annotated[str | None, Opt(metavar="DIR")] = None,
    seed: int | None = None,
    maintenance: bool = False,
    server: bool = False,
) -> int:
    """set up (or reuse) the demo trial and open the workstation

    Args:
        db: demo database (default: SCORER_DB, or a demo folder in the data directory)
        no_gui: set everything up, open no window
        reset: start the demo database over
        samples_only: only render the sample radiographs (into --samples-dir)
        samples_dir: where the sample radiographs are
        seed: seed of the sample radiographs
        maintenance: allow a PostgreSQL --db (SQLite is the demo's; a reading centre's
            workstations go through its server)
        server: run the demo as a reading centre does: its database behind a scorer server
            on this machine (127.0.0.1), the workstation connected to that server only
    """
    import os

    from scorer.demo import SAMPLE_SEED, generate_samples, run_demo

    if samples_only:
        out = Path(samples_dir or "sample_images")
        print(f"Rendering the sample radiographs (seed {seed or SAMPLE_SEED}) into {out}")
        generate_samples(out, seed=seed or SAMPLE_SEED)
        return EXIT_OK
    # The demo's own SQLite file by default; with --server this machine is the server's host.
    if not server and (db or os.environ.get("SCORER_DB")):
        try:
            refuse_server_database(db, maintenance)
        except CliError as exc:
            err(str(exc))
            return EXIT_ERROR
    try:
        result = run_demo(db, reset=reset, samples=Path(samples_dir) if samples_dir else None)
    except Exception as exc:
        err(f"the demo could not be set up: {exc}")
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
    scorer = scorer_command()
    if server:
        from scorer.cli.demo_server import serve_demo

        # What to try next is said once the server runs: through it, not around it.
        if not no_gui and (problem := _window_problem()) is not None:
            err(problem)
            return EXIT_ERROR
        folder = result.accounts_file.parent
        return serve_demo(result.db, folder, scorer, None if no_gui else open_over_server)
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

    if not no_gui:
        problem = _window_problem()
        if problem is not None:
            # The demo is ready; only the window cannot open here.
            err(problem)
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


def scorer_command() -> str:
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
    db: str | None,
    username: str = "",
    trial: str | None = None,
    password: str | None = None,
    station: Station | None = None,
) -> int:
    problem = _window_problem()
    if problem is not None:
        err(problem)
        return EXIT_ERROR
    try:
        from scorer.gui.workstation import run_workstation
    except ImportError as exc:
        err(_qt_missing(exc))
        return EXIT_ERROR
    connect = None
    try:
        server = server_url(station) if station is not None else None
    except CliError as exc:
        err(str(exc))
        return EXIT_USAGE
    if server:
        from scorer.client.remote import RemoteWorkspace

        assert station is not None
        cafile, fingerprint = station.cacert, station.fingerprint

        def connect() -> object:
            return RemoteWorkspace.open(server, cafile=cafile, fingerprint=fingerprint)

    elif station is not None:
        try:
            refuse_server_database(db, station.maintenance)
        except CliError as exc:
            err(str(exc))
            return EXIT_ERROR
    try:
        return run_workstation(
            db, username=username, trial=trial, password=password, connect=connect
        )
    except Exception as exc:
        from scorer.workspace import ScorerError  # not before: the window comes up first

        if not isinstance(exc, ScorerError):
            raise
        err(str(exc))
        return EXIT_ERROR


def open_over_server(url: str, cafile: str) -> int:
    """The workstation on the server at ``url`` (its certificate in ``cafile``)."""
    station = Station(server=url, cacert=cafile)
    print("Opening the workstation on the server: log in as reader3, or as coord.")
    return _open_workstation(None, username="reader3", trial="DEMO-RA", station=station)


@command("gui")
def gui(
    *,
    station: Station,
    user: str | None = None,
    trial: str | None = None,
    password_stdin: bool = False,
) -> int:
    """open the workstation (log in, worklist, scoring), on its database or on the reading
    centre's server (--server https://HOST:PORT)

    Args:
        user: user ID to fill in at log-in
        trial: trial to open (default: ask when you read in several)
        password_stdin: read --user's password from the first line of standard input and log
            in at once (for scripts and tests; never put a password on the command line)
    """
    password = None
    if password_stdin:
        if not user:
            err("--password-stdin logs in as --user: name the user")
            return EXIT_USAGE
        try:
            password = Passwords(True).get("password: ")
        except CliError as exc:
            err(str(exc))
            return EXIT_ERROR
    return _open_workstation(
        station.db, username=user or "", trial=trial, password=password, station=station
    )
