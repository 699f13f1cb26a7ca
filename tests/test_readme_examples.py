"""The README's own examples work: every `scorer` line of its shell code blocks is run, in
order, and must exit as the README says (0, unless its comment says "exits N").

Conventions in README.md (HTML comments, invisible on the rendered page, on the lines just
before a code block's opening fence):

- ``<!-- not-run: REASON -->``: the block's lines are not run (a synopsis with placeholders, a
  PACS, a service that runs until stopped, a window); ``test_not_run_lines_have_reasons`` lists
  them with their reasons.
- ``<!-- run-on: demo: A=B C=D ... -->``: the block runs on the demo database (built once with
  `scorer demo --no-gui`), each word A replaced by B, as the README's text around it says.

Every other block runs against the database of the last `scorer init` before it (a fresh one per
`scorer init`). Only the plumbing is the test's: the database (``SCORER_DB``; a ``--db`` path
is moved into the working folder), passwords on standard input (``--password-stdin``), the
first log-in's password change of a new account (the workstation asks for it), the adjudicator's
reading after `adjudication assign` (done in `scorer gui` by a person), the audit key copied
before `scorer restore` (as the README says), and the files an example names: a ``toml`` block
whose first line is ``# NAME.toml`` is written as NAME.toml; ``old-reads.csv`` is spec §10's
worked example, ``protocol.toml`` the README's protocol, ``films/`` one demo patient's films
with their ``manifest.csv``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import secrets
import shlex
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SHELL = {"", "sh", "bash", "shell", "console"}
SCORER = re.compile(r"^(?:\.venv/bin/)?scorer(?:\s|$)")
CALLS_SCORER = re.compile(r"(?:^|[\s;&|(])(?:\.venv/bin/)?scorer\s")
MARK = re.compile(r"^<!--\s*(not-run|run-on)\s*:\s*(.*?)\s*-->$")
EXITS = re.compile(r"#.*\bexits? (?:with )?(?:status )?(\d+)")


@dataclass
class Block:
    line: int  # of the opening fence, 1-based
    lang: str
    lines: list[tuple[int, str]]
    not_run: str | None = None
    run_on: str | None = None


@dataclass
class Command:
    line: int
    text: str
    argv: list[str]
    expect: int


def readme_blocks(text: str) -> list[Block]:
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = re.match(r"^(```+|~~~+)\s*(\S*)", lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m.group(1), m.group(2).lower()
        block = Block(i + 1, lang, [])
        j = i - 1
        while j >= 0 and (not lines[j].strip() or lines[j].strip().startswith("<!--")):
            mark = MARK.match(lines[j].strip())
            if mark and mark.group(1) == "not-run":
                block.not_run = mark.group(2)
            elif mark:
                block.run_on = mark.group(2)
            j -= 1
        i += 1
        while i < len(lines) and not lines[i].startswith(fence):
            block.lines.append((i + 1, lines[i]))
            i += 1
        blocks.append(block)
        i += 1
    return blocks


def commands(block: Block) -> list[Command]:
    """The block's `scorer` lines, continuation lines joined, comments dropped."""
    out: list[Command] = []
    pending: tuple[int, str] | None = None
    for number, raw in block.lines:
        if pending is not None:
            number, raw = pending[0], pending[1] + " " + raw.strip()
            pending = None
        if raw.rstrip().endswith("\\"):
            pending = (number, raw.rstrip()[:-1])
            continue
        text = raw.strip()
        if not SCORER.match(text):
            assert not CALLS_SCORER.search(text.split("#")[0]), (
                f"README.md line {number}: a line that calls scorer must start with it "
                f"(or its block be marked <!-- not-run: reason -->): {text}"
            )
            continue
        argv = shlex.split(text, comments=True)[1:]
        m = EXITS.search(text)
        out.append(Command(number, text, argv, int(m.group(1)) if m else 0))
    return out


def shell_blocks() -> list[Block]:
    return [b for b in readme_blocks(README.read_text(encoding="utf-8")) if b.lang in SHELL]


def test_not_run_lines_have_reasons() -> None:
    """Lists every `scorer` line the README does not have run, with the reason it gives."""
    listed: list[str] = []
    for b in shell_blocks():
        if b.not_run is None:
            continue
        assert b.not_run, f"README.md line {b.line}: <!-- not-run: --> needs a reason"
        for number, raw in b.lines:
            if CALLS_SCORER.search(" " + raw):
                listed.append(f"README.md:{number}: {raw.strip()}\n    not run: {b.not_run}")
    print("\n".join(["", "README lines not run:", *listed]))
    assert listed  # the list itself is the point: it is printed with -s
    assert all(b.run_on is None or b.run_on.startswith("demo:") for b in shell_blocks())


# --- running them ---------------------------------------------------------------------------


def _password() -> str:
    return "Readme-" + secrets.token_urlsafe(12)


@dataclass
class State:
    work: Path
    db: Path | None = None
    passwords: dict[str, dict[str, str]] = field(default_factory=dict)  # db -> user -> password
    first_login: dict[str, set[str]] = field(default_factory=dict)  # db -> must change
    demo: Path | None = None
    fresh: int = 0

    def book(self, db: Path) -> dict[str, str]:
        return self.passwords.setdefault(str(db), {})


def _option(argv: list[str], name: str) -> str | None:
    for k, a in enumerate(argv):
        if a == name and k + 1 < len(argv):
            return argv[k + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


def _scorer(state: State, db: Path, argv: list[str], stdin: Sequence[str] = ()) -> Done:
    """`scorer ARGV` in the working folder with the database in SCORER_DB: the console
    script's own entry point, in this process (a new interpreter per line cost a minute)."""
    from scorer.cli import main

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as env:
        for name in [k for k in os.environ if k.startswith("SCORER_")]:
            env.delenv(name)
        env.setenv("SCORER_DB", str(db))
        env.setenv("SCORER_CONFIG", str(state.work / "no-site-config.toml"))
        env.setenv("SCORER_DATA_DIR", str(state.work / "data"))
        env.chdir(state.work)
        env.setattr("sys.stdin", io.StringIO("".join(p + "\n" for p in stdin)))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(argv)
            except SystemExit as exc:  # argparse
                rc = exc.code if isinstance(exc.code, int) else 1
    return Done(rc, out.getvalue(), err.getvalue())


def _first_login(state: State, db: Path, user: str) -> None:
    """What the workstation asks a new account at its first log-in: a password of its own."""
    from scorer.workspace import Workspace

    book = state.book(db)
    ws = Workspace.open(db=str(db))
    try:
        s = ws.accounts.login(user, book[user])
        new = _password()
        ws.accounts.change_password(s, book[user], new)
        ws.accounts.logout(s)
    finally:
        ws.close()
    book[user] = new
    state.first_login[str(db)].discard(user)


def _adjudicator_reads(db: Path, user: str, password: str, trial: str) -> None:
    """The adjudicator scores and signs their cases (a person does it in `scorer gui`)."""
    from scorer.core.methods import get_method
    from scorer.core.reads import AreaScore
    from scorer.workspace import Workspace

    zero = {
        d.area: AreaScore.from_sides([0, 0]) if d.sides else AreaScore(score=0)
        for d in get_method("svh").areas
    }
    ws = Workspace.open(db=str(db))
    try:
        s = ws.accounts.login(user, password)
        for row in ws.worklists.worklist(s, trial):
            if row.status == "signed":
                continue
            for code in ws.reading.open_case(s, row.code).reads.values():
                ws.reading.set_scores(s, code, zero)
                ws.reading.sign_read(s, code, password, username=None if s.signed_once else user)
        ws.accounts.logout(s)
    finally:
        ws.close()


def _fixtures(state: State, argv: list[str]) -> None:
    """The files an example names, made when it first names them."""
    work = state.work
    if argv[:2] == ["reads", "import"] and not (work / argv[2]).exists():
        rows = list(csv.DictReader((ROOT / "examples" / "worked-example.csv").open()))
        with (work / argv[2]).open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            for r in rows:
                writer.writerow({**r, "trial": _option(argv, "--trial")})
    protocol = _option(argv, "--protocol")
    if protocol and not (work / protocol).exists():  # the README's protocol, for this trial
        text = (work / "ra-bari-01.toml").read_text(encoding="utf-8")
        code = argv[2] if len(argv) > 2 and not argv[2].startswith("-") else None
        if code:
            text = re.sub(r'(?m)^code = ".*"$', f'code = "{code}"', text)
        (work / protocol).write_text(text, encoding="utf-8")
    manifest = _option(argv, "--manifest")
    if argv[0] == "import" and manifest and not (work / manifest).exists():
        films = (work / manifest).parent
        samples = ROOT / "sample_images"
        shutil.copytree(samples / "DEMO-101", films / "DEMO-101")
        lines = (samples / "manifest.csv").read_text(encoding="utf-8").splitlines(keepends=True)
        (work / manifest).write_text(
            lines[0] + "".join(ln for ln in lines[1:] if ln.startswith("DEMO-101/")),
            encoding="utf-8",
        )


def _build_demo(state: State) -> Path:
    if state.demo is None:
        db = state.work / "demo.sqlite"
        done = _scorer(state, db, ["demo", "--no-gui", "--db", str(db)])
        assert done.returncode == 0, done.stdout + done.stderr
        book = state.book(db)
        for ln in (state.work / "demo-accounts.txt").read_text(encoding="utf-8").splitlines():
            if ln.strip() and not ln.startswith("#"):
                user, _role, password = ln.split()
                book[user] = password
        state.first_login[str(db)] = set()
        state.demo = db
    return state.demo


def _run(state: State, cmd: Command, db: Path) -> Done:
    argv = list(cmd.argv)
    book = state.book(db)
    stdin: list[str] = []
    if argv[0] == "init":
        state.fresh += 1
        db = state.work / f"scorer-{state.fresh}.sqlite"
        state.db = db
        book = state.book(db)
        state.first_login[str(db)] = set()
        admin = _option(argv, "--admin") or ""
        book[admin] = _password()
        stdin = [book[admin], book[admin]]  # a new password is asked twice
    given = _option(argv, "--db")
    if given is not None:
        where = state.work / Path(given).name
        argv[argv.index(given)] = str(where)
        if argv[0] == "restore":  # the README: the key is copied there first
            shutil.copy(db.with_suffix(".audit-key"), where.with_suffix(".audit-key"))
            os.chmod(where.with_suffix(".audit-key"), 0o600)
    user = _option(argv, "--user")
    if user:
        if argv[:2] == ["user", "passwd"]:
            state.first_login.get(str(db), set()).discard(user)  # this is the change
        elif user in state.first_login.get(str(db), set()):
            _first_login(state, db, user)
        stdin = [book[user]]
        if argv[:2] == ["user", "add"]:
            book[argv[2]] = _password()
            state.first_login[str(db)].add(argv[2])
            stdin += [book[argv[2]], book[argv[2]]]
        elif argv[:2] == ["user", "passwd"]:
            new = _password()
            stdin += [new, new]
            book[user] = new
        else:
            stdin += [book[user]] * 3  # a signature asks for the password again
    if stdin and "--password-stdin" not in argv:
        argv.append("--password-stdin")
    _fixtures(state, argv)
    done = _scorer(state, db, argv, stdin)
    if done.returncode == 0 and argv[:2] == ["adjudication", "assign"] and user:
        values = {k + 1 for k, a in enumerate(argv) if a in ("--trial", "--user")}
        adjudicator = next(
            a for k, a in enumerate(argv) if k > 1 and k not in values and not a.startswith("-")
        )
        trial = _option(argv, "--trial") or ""
        _adjudicator_reads(db, adjudicator, book[adjudicator], trial)
    return done


@pytest.mark.slow
def test_the_readme_examples_run_as_it_says(tmp_path: Path) -> None:
    state = State(tmp_path)
    ran: list[str] = []
    for b in shell_blocks():
        if b.not_run is not None:
            continue
        cmds = commands(b)
        if not cmds:
            continue
        db = state.db
        subst: dict[str, str] = {}
        if b.run_on is not None:
            started = time.monotonic()
            db = _build_demo(state)
            ran.append(f"(the demo built in {time.monotonic() - started:.1f} s)")
            subst = dict(w.split("=", 1) for w in b.run_on.split(":", 1)[1].split())
        for cmd in cmds:
            if subst:
                cmd = Command(cmd.line, cmd.text, [subst.get(a, a) for a in cmd.argv], cmd.expect)
            assert db is not None or cmd.argv[0] == "init", (
                f"README.md line {cmd.line}: no database yet (no `scorer init` before it): "
                f"{cmd.text}"
            )
            started = time.monotonic()
            done = _run(state, cmd, db or tmp_path / "none.sqlite")
            if cmd.argv[0] == "init":
                db = state.db
            assert done.returncode == cmd.expect, (
                f"README.md line {cmd.line}: {cmd.text}\nexited {done.returncode}, the README "
                f"says {cmd.expect}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
            )
            ran.append(f"README.md:{cmd.line} ({time.monotonic() - started:.1f} s): {cmd.text}")
    print("\n".join(["", "README lines run:", *ran]))
    assert len(ran) >= 20, ran


def _toml_fixtures(work: Path) -> None:
    for b in readme_blocks(README.read_text(encoding="utf-8")):
        if b.lang == "toml" and b.lines and re.match(r"^# [\w.-]+\.toml$", b.lines[0][1]):
            name = b.lines[0][1][2:].strip()
            (work / name).write_text("\n".join(t for _, t in b.lines) + "\n", encoding="utf-8")


@pytest.fixture(autouse=True)
def _readme_toml_files(tmp_path: Path) -> None:
    _toml_fixtures(tmp_path)
