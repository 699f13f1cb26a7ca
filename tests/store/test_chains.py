"""One audit chain per trial and the centre's (revision 0012), on SQLite and PostgreSQL: a
reader's work goes into the trial's chain, log-ins into the centre's; on PostgreSQL a trial's
work does not wait for another trial's, and does wait for the same trial's; two transactions of
different trials changing the same row replay in the order they committed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scorer.store.audit import read_receipts
from scorer.store.database import ChainError
from scorer.store.schema import User
from scorer.workspace import ScorerError, Workspace
from tests.behind import behind
from tests.pg import PgServer, pg_server  # noqa: F401  (the fixture)

PW = "Chain-of-trials-2024"


def _user(ws: Workspace, admin: Any, name: str, role: str) -> Any:
    ws.accounts.add_user(admin, name, name.title(), role, PW[::-1])
    s = ws.accounts.login(name, PW[::-1])
    ws.accounts.change_password(s, PW[::-1], PW)
    return ws.accounts.login(name, PW)


def two_trials(db: str) -> tuple[Workspace, dict[str, tuple[Any, str, int]]]:
    """Trials A1 and A2, a reader in each with one open read: trial -> (session, read, id)."""
    ws = Workspace.initialize("ada", "Ada Admin", PW, db=db)
    admin = ws.accounts.login("ada", PW)
    coord = _user(ws, admin, "cora", "coordinator")
    out: dict[str, tuple[Any, str, int]] = {}
    for n, trial in enumerate(("A1", "A2")):
        ws.trials.create_trial(coord, trial, visits=[("W0", 0.0), ("W24", 24.0)])
        patient = ws.trials.add_patient(coord, trial, f"P-{n}")
        reader = _user(ws, admin, f"reader{n}", "reader")
        ws.worklists.assign_reader(coord, trial, reader.username, [patient])
        ws.worklists.generate_worklists(coord, trial, readers=[reader.username])
        read = ws.reading.start_read(reader, trial, patient, "W0")
        with ws.store.read() as db_:
            from scorer.store import repository as repo

            t = repo.trial_by_code(db_, trial)
            assert t is not None
            out[trial] = (reader, read, t.id)
    return ws, out


@pytest.fixture(params=["sqlite", "postgresql"])
def centre(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Workspace, dict[str, tuple[Any, str, int]], str]]:
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SCORER_CONFIG", str(tmp_path / "no-config.toml"))
    if request.param == "sqlite":
        db = str(tmp_path / "chains.sqlite")
    else:
        server: PgServer = request.getfixturevalue("pg_server")
        db = server.new_database()
    ws, trials = two_trials(db)
    try:
        yield ws, trials, db
    finally:
        ws.close()


def test_each_trials_work_goes_into_its_chain_and_log_ins_into_the_centres(
    centre: tuple[Workspace, dict[str, tuple[Any, str, int]], str],
) -> None:
    ws, trials, db = centre
    for reader, read, _tid in trials.values():
        ws.reading.set_note(reader, read, f"note of {reader.username}")
    result = ws.verify()
    assert result.ok, result.errors + [str(d) for d in result.differences]
    ids = {trial: tid for trial, (_r, _c, tid) in trials.items()}
    assert {f"audit_events/{t}" for t in ids.values()} <= set(result.heads)
    with behind(db, readonly=True) as con:
        notes = con.rows("SELECT chain, trial_id FROM audit_events WHERE action = 'read.note'")
        logins = con.rows("SELECT DISTINCT chain FROM events WHERE kind = 'login'")
        places = con.rows("SELECT chain, link FROM audit_events WHERE chain > 0 ORDER BY seq")
    assert sorted(notes) == sorted((t, t) for t in ids.values())
    assert logins == [(0,)]
    for tid in ids.values():
        mine = [link for c, link in places if c == tid]
        assert mine == list(range(1, len(mine) + 1))  # each chain's places in seq order
    receipts, problems = read_receipts(ws.store.location.receipts_path)
    assert not problems
    for tid in ids.values():
        last = receipts[f"audit_events/{tid}"][-1]
        assert last == (
            result.heads[f"audit_events/{tid}"].seq,
            result.heads[f"audit_events/{tid}"].mac,
        )


def test_a_row_moved_into_another_trials_chain_is_named(
    centre: tuple[Workspace, dict[str, tuple[Any, str, int]], str],
) -> None:
    ws, trials, db = centre
    (_r1, _c1, a), (_r2, _c2, b) = trials.values()
    with behind(db) as con:
        con.drop_append_only_triggers()
        # Appended to the other chain: the next place there (a place taken twice is refused
        # by the database itself).
        (top,) = con.rows(f"SELECT max(link) FROM audit_events WHERE chain = {b}")[0]
        con.execute(
            f"UPDATE audit_events SET chain = {b}, link = {top + 1} WHERE seq = "
            f"(SELECT max(seq) FROM audit_events WHERE chain = {a})"
        )
    result = ws.verify()
    assert not result.ok
    assert any(f"audit_events/{b}:" in e or f"audit_events/{a}:" in e for e in result.errors)


def test_a_scoped_transaction_may_not_write_without_binding_its_trial(
    centre: tuple[Workspace, dict[str, tuple[Any, str, int]], str],
) -> None:
    ws, _trials, _db = centre
    with (
        pytest.raises(ChainError, match="without binding"),
        ws.store.write("ada", scoped=True) as tx,
    ):
        tx.audit("test", "trial", "x")


@pytest.mark.parametrize("same_trial", [False, True])
def test_a_trials_work_waits_only_for_the_same_trials(
    pg_server: PgServer,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    same_trial: bool,
) -> None:
    """A transaction of trial A1 is held open; a note in trial A2 is saved meanwhile, a note
    in A1 waits until A1's transaction ends."""
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SCORER_CONFIG", str(tmp_path / "no-config.toml"))
    ws, trials = two_trials(pg_server.new_database())
    try:
        held, release = threading.Event(), threading.Event()

        def hold() -> None:
            with ws.store.write("cora", scoped=True) as tx:
                tx.bind(trials["A1"][2])
                held.set()
                release.wait(30)

        holder = threading.Thread(target=hold)
        holder.start()
        assert held.wait(30)
        reader, read, _ = trials["A1" if same_trial else "A2"]
        done: list[float] = []
        saver = threading.Thread(
            target=lambda: done.append(ws.reading.set_note(reader, read, "meanwhile"))
        )
        saver.start()
        saver.join(3)
        if same_trial:
            assert not done, "a note of the same trial was saved while its lock was held"
        else:
            assert done, "a note of another trial waited for the held trial"
        release.set()
        holder.join(30)
        saver.join(30)
        assert done
        result = ws.verify()
        assert result.ok, result.errors
    finally:
        ws.close()


def test_two_trials_changing_one_row_replay_in_commit_order(
    pg_server: PgServer,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Trial A1's transaction changes a user's name and is held open; trial A2's changes the
    same name after it (it waits for the row), and commits last: the replay must end with A2's
    value, whatever order the two took their chain places in."""
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SCORER_CONFIG", str(tmp_path / "no-config.toml"))
    ws, trials = two_trials(pg_server.new_database())
    try:
        with ws.store.read() as db:
            uid = db.query(User).filter_by(username="cora").one().id
        first_changed, release = threading.Event(), threading.Event()

        def change(trial: str, name: str, hold: bool) -> None:
            with ws.store.write("cora", scoped=True) as tx:
                tx.bind(trials[trial][2])
                user = tx.session.get(User, uid)
                assert user is not None
                user.full_name = name
                tx.session.flush()  # the row is locked from here
                tx.audit("test.rename", "user", uid, trial_id=trials[trial][2])
                if hold:
                    first_changed.set()
                    release.wait(30)

        first = threading.Thread(target=change, args=("A1", "Cora First", True))
        first.start()
        assert first_changed.wait(30)
        second = threading.Thread(target=change, args=("A2", "Cora Second", False))
        second.start()
        time.sleep(1)  # the second is waiting for the row
        release.set()
        first.join(30)
        second.join(30)
        with ws.store.read() as db:
            assert db.get(User, uid).full_name == "Cora Second"  # type: ignore[union-attr]
        result = ws.verify()
        assert result.ok, result.errors + [str(d) for d in result.differences]
    finally:
        ws.close()


def _cut_last_row(db: str, chain: int, rows: int = 1) -> None:
    with behind(db) as con:
        con.drop_append_only_triggers()
        (top,) = con.rows(f"SELECT max(link) FROM audit_events WHERE chain = {chain}")[0]
        con.execute(f"DELETE FROM audit_events WHERE chain = {chain} AND link > {top - rows}")


def test_a_cut_tail_written_again_is_still_named_by_its_receipt(
    centre: tuple[Workspace, dict[str, tuple[Any, str, int]], str],
) -> None:
    """The receipts keep the cut row's MAC: the row written at its place since differs."""
    ws, trials, db = centre
    reader, read, a = trials["A1"]
    ws.reading.set_note(reader, read, "to be cut")
    _cut_last_row(db, a, rows=2)  # the note's commit: its audit row and its data row
    first = ws.verify()
    assert not first.ok and f"audit_events/{a}: the receipts record" in first.errors[0]
    ws.reading.set_note(reader, read, "written again")  # the cut place is taken again
    result = ws.verify()
    assert not result.ok
    assert any(
        e.startswith(f"audit_events/{a}: row") and "differs from one of its 2 receipts" in e
        for e in result.errors
    ), result.errors


def test_every_broken_chain_is_named_and_a_trial_chain_without_receipts_is_warned_about(
    centre: tuple[Workspace, dict[str, tuple[Any, str, int]], str],
) -> None:
    ws, trials, db = centre
    (_r1, _c1, a), (_r2, _c2, b) = trials.values()
    path = ws.store.location.receipts_path
    kept = [
        line for line in path.read_text().splitlines() if not line.startswith(f"audit_events/{b} ")
    ]
    path.write_text("\n".join(kept) + "\n")
    quiet = ws.verify()
    assert quiet.ok, quiet.errors
    assert any(w.startswith(f"audit_events/{b}: no receipt yet") for w in quiet.warnings)
    with behind(db) as con:
        con.drop_append_only_triggers()
        for chain in (a, b):
            con.execute(
                "UPDATE audit_events SET reason = 'edited' WHERE seq = (SELECT min(seq) FROM "
                f"audit_events WHERE chain = {chain})"
            )
    result = ws.verify()
    named = {e.split(":", 1)[0] for e in result.errors}
    assert {f"audit_events/{a}", f"audit_events/{b}"} <= named, result.errors


def test_a_backup_of_a_cut_trail_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backup drops receipts past its snapshot's heads (later commits'): over a cut tail
    that would launder the cut, so the backup is refused, naming the chain."""
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SCORER_CONFIG", str(tmp_path / "no-config.toml"))
    db = str(tmp_path / "cut.sqlite")
    ws, trials = two_trials(db)
    try:
        reader, read, a = trials["A1"]
        ws.reading.set_note(reader, read, "to be cut")
        _cut_last_row(db, a)
        admin = ws.accounts.login("ada", PW)
        with pytest.raises(ScorerError, match=f"audit_events/{a}: the receipts record"):
            ws.database.backup(admin, tmp_path / "b.zip")
        assert not (tmp_path / "b.zip").exists()
    finally:
        ws.close()


def _append_many(path: str, writer: int, n: int) -> None:
    from scorer.store.audit import Head, append_receipts

    for i in range(1, n + 1):
        append_receipts(Path(path), [Head(f"audit_events/{writer}", i, "ab" * 32)], "t")


@pytest.mark.posix
def test_receipts_appended_by_several_processes_at_once_are_never_torn(tmp_path: Path) -> None:
    """Several processes (workstations, server instances) append at once: no receipt line is
    cut or ended early (the torn-line check once saw another's append half done)."""
    import multiprocessing

    path = tmp_path / "receipts"
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_append_many, args=(str(path), w, 1500)) for w in (1, 2, 3)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(120)
        assert w.exitcode == 0
    receipts, problems = read_receipts(path)
    assert problems == []
    for w in (1, 2, 3):
        assert [n for n, _m in receipts[f"audit_events/{w}"]] == list(range(1, 1501))
