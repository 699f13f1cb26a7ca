"""Tamper detection: whoever holds the database (but not the audit key) cannot change the
audit trail, the event log or a signed read without ``scorer audit verify`` saying so.

The attacker opens the database with the plain driver (the SQLite file with the standard
library; the PostgreSQL database as the server's owner account), drops the append-only triggers
as anyone holding it can, and then edits, deletes, inserts, reorders, cuts or rewrites rows.
Each table holds one chain per trial and the centre's (revision 0012): the attacks are aimed at
the trial's chain, where the scores are, and most also at the centre's. Each must fail
``Workspace.verify()`` with an error naming the chain (``audit_events/1``: trial 1's;
``audit_events``: the centre's) and its first bad row, and make ``scorer audit verify`` exit
non-zero naming it too. Every test runs on both databases.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from scorer.cli import main
from scorer.core.reads import AreaScore
from scorer.store.audit import (
    GENESIS,
    Verification,
    audit_content,
    chain_name,
    compute_mac,
    load_key,
)
from scorer.workspace import ScorerError, Workspace
from tests.behind import APPEND_ONLY, Behind, behind
from tests.store.conftest import PopulatedCopy

# ------------------------------------------------------------------ helpers


@contextmanager
def attacker(db: PopulatedCopy, drop_triggers: bool = True) -> Iterator[Behind]:
    """The database opened with the plain driver (autocommit), the append-only triggers
    dropped as anyone holding the database could."""
    with behind(db.db) as con:
        if drop_triggers:
            # UPDATE and DELETE on each append-only table: two triggers each on SQLite, one
            # on PostgreSQL.
            assert con.drop_append_only_triggers() == (6 if con.dialect == "sqlite" else 3)
        yield con


@contextmanager
def plain(db: PopulatedCopy) -> Iterator[Behind]:
    """The database opened with the plain driver, triggers in place."""
    with attacker(db, drop_triggers=False) as con:
        yield con


def verify(db: PopulatedCopy) -> Verification:
    ws = Workspace.open(db=db.db)
    try:
        return ws.verify()
    finally:
        ws.close()


def cli_verify(db: PopulatedCopy, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["audit", "verify", "--db", db.db, "--maintenance"])  # the server host's
    out, err = capsys.readouterr()
    return rc, out, err


def assert_caught(db: PopulatedCopy, capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    """Verification fails, its first error contains every needle, and the CLI exits 1 with
    that error in its output."""
    result = verify(db)
    assert not result.ok, f"tampering not detected: {result}"
    first = result.errors[0]
    for needle in needles:
        assert needle in first, f"{needle!r} not in {first!r}"
    rc, out, _ = cli_verify(db, capsys)
    assert rc == 1, out
    assert f"FAILED: {first}" in out
    assert "audit trail does NOT verify" in out
    return first


def chain_of(db: PopulatedCopy, which: str) -> int:
    """The chain an attack is aimed at: the populated trial's (its ID: where the scores are)
    or the centre's (0: accounts, log-ins, and the rows written before revision 0012)."""
    if which == "centre":
        return 0
    ((trial_id,),) = db.sql("SELECT id FROM trials WHERE code = ?", (db.trial,))
    return int(trial_id)


def count(con: Behind, table: str, chain: int | None = None) -> int:
    """The rows of ``table``: of one chain, or of every chain together."""
    if chain is None:
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    return int(con.execute(f"SELECT count(*) FROM {table} WHERE chain = ?", (chain,)).fetchone()[0])


# A row by its chain and place in it: its link; a row written before revision 0012 (the
# centre's first) has none, and its place is its seq.
AT = "chain = ? AND coalesce(link, seq) = ?"


def row(con: Behind, table: str, chain: int, place: int) -> dict[str, Any]:
    cur = con.execute(f"SELECT * FROM {table} WHERE {AT}", (chain, place))
    names = [d[0] for d in cur.description]
    values = cur.fetchone()
    assert values is not None, f"{chain_name(table, chain)} has no row {place}"
    return dict(zip(names, values, strict=True))


def put(con: Behind, table: str, values: dict[str, Any]) -> None:
    cols = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    con.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", tuple(values.values()))


def make_room(con: Behind, table: str, chain: int, place: int) -> None:
    """Move the rows after ``place`` in ``chain`` one place up, and every row (of any chain)
    after its seq one seq up, as an attacker inserting a row there must: the primary key and
    the UNIQUE (chain, link) index refuse two rows in one place. Each move goes through
    negative numbers, as the index is checked row by row."""
    seq = row(con, table, chain, place)["seq"]
    con.execute(f"UPDATE {table} SET link = -link WHERE chain = ? AND link > ?", (chain, place))
    con.execute(f"UPDATE {table} SET link = 1 - link WHERE chain = ? AND link < 0", (chain,))
    con.execute(f"UPDATE {table} SET seq = -seq WHERE seq > ?", (seq,))
    con.execute(f"UPDATE {table} SET seq = 1 - seq WHERE seq < 0")


def signature_of(con: Behind, read_code: str) -> int:
    r = con.execute(
        "SELECT id FROM signatures WHERE entity = 'read' AND entity_id = ? AND kind = 'sign' "
        "ORDER BY id DESC",
        (read_code,),
    ).fetchone()
    assert r is not None, f"read {read_code} has no signature"
    return int(r[0])


@pytest.fixture
def db(populated_copy: PopulatedCopy) -> PopulatedCopy:
    """A test's own copy of the populated database (users, a trial, partial, complete and
    signed reads), with its audit key and receipts."""
    return populated_copy


#: Attacks tried on both kinds of chain: the trial's and the centre's.
CHAINS = pytest.mark.parametrize("which", ["trial", "centre"])


# ------------------------------------------------------------------ the untouched database


def test_untouched_database_verifies(db: PopulatedCopy, capsys: pytest.CaptureFixture[str]) -> None:
    result = verify(db)
    assert result.ok, result.errors
    assert result.errors == [] and result.warnings == []
    trial = chain_of(db, "trial")
    heads: dict[str, tuple[int, str]] = {}
    with plain(db) as con:
        n_audit, n_events = count(con, "audit_events"), count(con, "events")
        n_signatures = count(con, "signatures")
        for table in ("audit_events", "events"):
            for (chain,) in con.rows(f"SELECT DISTINCT chain FROM {table}"):
                last = con.execute(
                    f"SELECT mac FROM {table} WHERE chain = ? ORDER BY seq DESC", (chain,)
                ).fetchone()[0]
                heads[chain_name(table, chain)] = (count(con, table, chain), last)
    assert n_audit > 50 and n_events > 5 and n_signatures >= 3
    # The scores are in the trial's chain, the log-ins in the centre's.
    assert heads[chain_name("audit_events", trial)][0] > 50
    assert heads["audit_events"][0] > 5 and heads["events"][0] > 5
    assert result.rows == {"audit_events": n_audit, "events": n_events}
    assert {name: (h.seq, h.mac) for name, h in result.heads.items()} == heads
    assert result.signatures == n_signatures
    rc, out, err = cli_verify(db, capsys)
    assert rc == 0, out + err
    for name, (n, _) in heads.items():
        assert f"{name}: {n} rows" in out
    assert "audit trail verifies" in out and "FAILED" not in out and "warning" not in out


def test_append_only_tables_refuse_update_and_delete(db: PopulatedCopy) -> None:
    """With the triggers in place the database itself refuses changes to the trail."""
    statements = {
        "audit_events": ("SET username = 'mallory'", "seq = 2"),
        "signatures": ("SET entity_id = 'XXXX'", "id = 1"),
        "events": ("SET detail = '{}'", "seq = 1"),
    }
    with plain(db) as con:
        before = {t: con.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in APPEND_ONLY}
        for table, (change, where) in statements.items():
            update = f"UPDATE {table} {change} WHERE {where}"
            delete = f"DELETE FROM {table} WHERE {where}"
            for sql in (update, delete):
                with pytest.raises(con.Error, match=f"{table} is append-only"):
                    con.execute(sql)
            # Also inside an explicit transaction, and for every row at once.
            con.execute("BEGIN")
            with pytest.raises(con.Error, match="append-only"):
                con.execute(f"DELETE FROM {table}")
            con.execute("ROLLBACK")
        after = {t: con.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in APPEND_ONLY}
    assert after == before
    assert all(before[t] for t in APPEND_ONLY)
    assert verify(db).ok


# ------------------------------------------------------------------ the audit chains


@pytest.mark.parametrize(
    ("which", "column", "value"),
    [
        ("trial", "new", '{"area":"LH MCP1 ERO","score":0}'),
        ("trial", "username", "mallory"),
        ("trial", "old", ""),
        ("trial", "at", "2025-01-01T00:00:00.000000Z"),
        ("trial", "reason", "nothing to see"),
        ("trial", "trial_id", 999),
        ("trial", "session", "0" * 32),
        ("trial", "mac", "0" * 64),
        ("centre", "username", "mallory"),
        ("centre", "trial_id", 999),  # a centre row claimed for a trial
        ("centre", "mac", "0" * 64),
    ],
)
def test_an_edited_audit_row_is_caught(
    db: PopulatedCopy, capsys: pytest.CaptureFixture[str], which: str, column: str, value: object
) -> None:
    chain = chain_of(db, which)
    with attacker(db) as con:
        k = count(con, "audit_events", chain) // 2
        while row(con, "audit_events", chain, k)[column] == value:  # a row the edit changes
            k += 1
        con.execute(f"UPDATE audit_events SET {column} = ? WHERE {AT}", (value, chain, k))
    assert_caught(db, capsys, f"{chain_name('audit_events', chain)}: row {k} does not verify")


@CHAINS
def test_a_deleted_middle_audit_row_is_caught(
    db: PopulatedCopy, capsys: pytest.CaptureFixture[str], which: str
) -> None:
    chain = chain_of(db, which)
    with attacker(db) as con:
        k = count(con, "audit_events", chain) // 2
        con.execute(f"DELETE FROM audit_events WHERE {AT}", (chain, k))
    name = chain_name("audit_events", chain)
    assert_caught(db, capsys, f"{name}: row {k} is missing or out of order")


@CHAINS
def test_a_deleted_middle_row_with_the_rest_renumbered_is_caught(
    db: PopulatedCopy, capsys: pytest.CaptureFixture[str], which: str
) -> None:
    """Closing both gaps (the chain's place k+1 becomes k, ..., and the seq after the deleted
    row's moves down too) does not help: row k's MAC covers its place and its seq."""
    chain = chain_of(db, which)
    with attacker(db) as con:
        k = count(con, "audit_events", chain) // 2
        seq = row(con, "audit_events", chain, k)["seq"]
        con.execute(f"DELETE FROM audit_events WHERE {AT}", (chain, k))
        con.execute("UPDATE audit_events SET link = -link WHERE chain = ? AND link > ?", (chain, k))
        con.execute(
            "UPDATE audit_events SET link = -link - 1 WHERE chain = ? AND link < 0", (chain,)
        )
        con.execute("UPDATE audit_events SET seq = -seq WHERE seq > ?", (seq,))
        con.execute("UPDATE audit_events SET seq = -seq - 1 WHERE seq < 0")
        assert row(con, "audit_events", chain, k)["seq"] == seq  # no gap left anywhere
    assert_caught(db, capsys, f"{chain_name('audit_events', chain)}: row {k} does not verify")


@CHAINS
@pytest.mark.parametrize("where", ["middle", "end"])
def test_a_forged_audit_row_is_caught(
    db: PopulatedCopy, capsys: pytest.CaptureFixture[str], which: str, where: str
) -> None:
    chain = chain_of(db, which)
    with attacker(db) as con:
        n = count(con, "audit_events", chain)
        k = n // 2 if where == "middle" else n
        forged = {**row(con, "audit_events", chain, k), "link": k + 1}
        forged.update(
            action="user.password_reset",
            entity="user",
            entity_id="reader1",
            reason="forged",
            mac=secrets.token_hex(32),  # a made-up MAC: the key is not in the file
        )
        if where == "middle":
            # The index refuses a second row in one place of a chain, whatever its seq ...
            free = con.execute("SELECT max(seq) + 1 FROM audit_events").fetchone()[0]
            with pytest.raises(con.Error, match="chain"):
                put(con, "audit_events", {**forged, "seq": free})
        # ... so the attacker makes room: the later rows move up by one.
        make_room(con, "audit_events", chain, k)
        forged["seq"] = row(con, "audit_events", chain, k)["seq"] + 1
        put(con, "audit_events", forged)
        assert count(con, "audit_events", chain) == n + 1
    assert_caught(db, capsys, f"{chain_name('audit_events', chain)}: row {k + 1} does not verify")


@CHAINS
def test_two_swapped_audit_rows_are_caught(
    db: PopulatedCopy, capsys: pytest.CaptureFixture[str], which: str
) -> None:
    chain = chain_of(db, which)
    with attacker(db) as con:
        n = count(con, "audit_events", chain)
        a, b = n // 3, 2 * n // 3
        ra, rb = row(con, "audit_events", chain, a), row(con, "audit_events", chain, b)
        cols = [c for c in ra if c not in ("seq", "chain", "link")]  # the rows' places stay
        sets = ", ".join(f"{c} = ?" for c in cols)
        update = f"UPDATE audit_events SET {sets} WHERE {AT}"
        con.execute(update, (*[rb[c] for c in cols], chain, a))
        con.execute(update, (*[ra[c] for c in cols], chain, b))
    assert_caught(db, capsys, f"{chain_name('audit_events', chain)}: row {a} does not verify")


@CHAINS
def test_a_cut_tail_is_caught_by_the_receipts(
    db: PopulatedCopy, capsys: pytest.CaptureFixture[str], which: str
) -> None:
    chain = chain_of(db, which)
    cut = 3
    with attacker(db) as con:
        n = count(con, "audit_events", chain)
        con.execute("DELETE FROM audit_events WHERE chain = ? AND link > ?", (chain, n - cut))
    # What is left is a perfectly valid chain: only the receipts know it was longer.
    assert_caught(
        db,
        capsys,
        f"{chain_name('audit_events', chain)}: the receipts record {n} rows but the database "
        f"has {n - cut}",
        f"rows {n - cut + 1} to {n} were removed",
    )


@pytest.mark.parametrize("what", ["trial-chain", "table"])
def test_an_emptied_audit_table_is_caught(
    db: PopulatedCopy, capsys: pytest.CaptureFixture[str], what: str
) -> None:
    """A trial's chain removed whole, or the whole table emptied (the centre's chain, named
    first, is reported)."""
    chain = chain_of(db, "trial" if what == "trial-chain" else "centre")
    with attacker(db) as con:
        n = count(con, "audit_events", chain)
        if what == "table":
            con.execute("DELETE FROM audit_events")
        else:
            con.execute("DELETE FROM audit_events WHERE chain = ?", (chain,))
    name = chain_name("audit_events", chain)
    assert_caught(
        db, capsys, f"{name}: the receipts record {n} rows", f"rows 1 to {n} were removed"
    )


# The columns an audit row's MAC covers, in the order it covers them (scorer.store.audit):
# since revision 0012 its chain and place too.
AUDIT_COLUMNS = (
    "seq, at, username, action, entity, entity_id, old, new, reason, trial_id, session, chain, link"
)


def _rewrite_chain(con: Behind, key: bytes, chain: int, start: int = 1) -> dict[int, str]:
    """Recompute the MACs of one audit chain from place ``start`` on with ``key``, as the
    store computes them; returns the new MACs by place."""
    rows = con.execute(
        f"SELECT mac, {AUDIT_COLUMNS} FROM audit_events WHERE chain = ? ORDER BY seq", (chain,)
    ).fetchall()
    prev = GENESIS
    macs: dict[int, str] = {}
    for mac, *content in rows:
        seq, link = content[0], content[-1]
        place = seq if link is None else link
        if place >= start:
            mac = compute_mac(key, prev, audit_content(content))
            con.execute("UPDATE audit_events SET mac = ? WHERE seq = ?", (mac, seq))
            macs[place] = mac
        prev = mac
    return macs


def _rewrite_receipts(receipts: Path, name: str, macs: dict[int, str]) -> None:
    lines = []
    for line in receipts.read_text(encoding="ascii").splitlines():
        t, place, mac, at = line.split()
        if t == name and int(place) in macs:
            mac = macs[int(place)]
        lines.append(f"{t} {place} {mac} {at}\n")
    receipts.write_text("".join(lines), encoding="ascii")


@CHAINS
@pytest.mark.parametrize("receipts_too", [False, True], ids=["receipts-kept", "receipts-forged"])
def test_a_chain_rewritten_without_the_key_is_caught(
    db: PopulatedCopy, capsys: pytest.CaptureFixture[str], which: str, receipts_too: bool
) -> None:
    """The attacker changes a row and recomputes every MAC of its chain with a key of their
    own: the chain is consistent, and even receipts rewritten to match do not help."""
    chain = chain_of(db, which)
    name = chain_name("audit_events", chain)
    with attacker(db) as con:
        k = count(con, "audit_events", chain) // 2
        con.execute(f"UPDATE audit_events SET reason = 'rewritten' WHERE {AT}", (chain, k))
        macs = _rewrite_chain(con, secrets.token_bytes(32), chain)
    if receipts_too:
        _rewrite_receipts(db.receipts_path, name, macs)
    assert_caught(db, capsys, f"{name}: row 1 does not verify")


@CHAINS
def test_a_chain_rewritten_with_a_stolen_key_is_caught_by_the_receipts(
    db: PopulatedCopy, capsys: pytest.CaptureFixture[str], which: str
) -> None:
    """Even with the key, rewriting history is caught where the receipts recorded a head."""
    key = load_key(db.key_path)
    chain = chain_of(db, which)
    name = chain_name("audit_events", chain)
    receipted = sorted(
        int(line.split()[1])
        for line in db.receipts_path.read_text(encoding="ascii").splitlines()
        if line.startswith(f"{name} ")
    )
    with attacker(db) as con:
        k = count(con, "audit_events", chain) // 2
        con.execute(f"UPDATE audit_events SET reason = 'rewritten' WHERE {AT}", (chain, k))
        _rewrite_chain(con, key, chain, start=k)
    first = min(s for s in receipted if s >= k)
    assert_caught(db, capsys, f"{name}: row {first} differs from its receipt")


# ------------------------------------------------------------------ the event log


def event_chain(db: PopulatedCopy, which: str) -> int:
    """The event chain an attack is aimed at: the centre's (log-ins), or the trial's, given
    rows first by opening reader1's cases (each opening is an event of the trial)."""
    chain = chain_of(db, which)
    if chain:
        s = db.session("reader1")
        for case in db.cases("reader1"):
            db.ws.reading.open_case(s, case)
        assert verify(db).ok
    return chain


@CHAINS
@pytest.mark.parametrize("column", ["detail", "username", "kind"])
def test_an_edited_event_row_is_caught(
    db: PopulatedCopy, capsys: pytest.CaptureFixture[str], which: str, column: str
) -> None:
    chain = event_chain(db, which)
    with attacker(db) as con:
        k = count(con, "events", chain) // 2
        con.execute(f"UPDATE events SET {column} = 'x' || {column} WHERE {AT}", (chain, k))
    assert_caught(db, capsys, f"{chain_name('events', chain)}: row {k} does not verify")


@CHAINS
def test_a_deleted_event_row_is_caught(
    db: PopulatedCopy, capsys: pytest.CaptureFixture[str], which: str
) -> None:
    chain = event_chain(db, which)
    with attacker(db) as con:
        k = count(con, "events", chain) // 2
        con.execute(f"DELETE FROM events WHERE {AT}", (chain, k))
    assert_caught(db, capsys, f"{chain_name('events', chain)}: row {k} is missing or out of order")


@CHAINS
def test_a_cut_event_tail_is_caught_by_the_receipts(
    db: PopulatedCopy, capsys: pytest.CaptureFixture[str], which: str
) -> None:
    chain = event_chain(db, which)
    with attacker(db) as con:
        n = count(con, "events", chain)
        con.execute(f"DELETE FROM events WHERE {AT}", (chain, n))
    assert_caught(
        db,
        capsys,
        f"{chain_name('events', chain)}: the receipts record {n} rows",
        f"rows {n} to {n} were",
    )


# ------------------------------------------------------------------ signatures


def test_a_signature_moved_onto_another_read_is_caught(
    db: PopulatedCopy, populated_copy: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    signed = populated_copy.read("reader1", "signed")
    other = populated_copy.read("reader1", "complete")
    with attacker(db) as con:
        sig = signature_of(con, signed)
        con.execute("UPDATE signatures SET entity_id = ? WHERE id = ?", (other, sig))
        # ... and make the other read look signed, the original one not.
        con.execute("UPDATE reads SET status = 'signed' WHERE code = ?", (other,))
        con.execute("UPDATE reads SET status = 'in_progress' WHERE code = ?", (signed,))
    assert_caught(db, capsys, f"signature {sig} does not match the audit trail")


@pytest.mark.parametrize("attack", ["delete", "void", "status", "read-deleted"])
def test_a_signed_read_unsigned_behind_the_facade_is_caught(
    db: PopulatedCopy, populated_copy: Any, capsys: pytest.CaptureFixture[str], attack: str
) -> None:
    """Making a signed read look unsigned (to change it without trace) is caught: the audit
    trail knows the signature and that it was never voided."""
    code = populated_copy.read("reader1", "signed")
    with attacker(db) as con:
        sig = signature_of(con, code)
        read_id = con.execute("SELECT id FROM reads WHERE code = ?", (code,)).fetchone()[0]
        if attack == "delete":
            con.execute("DELETE FROM signatures WHERE id = ?", (sig,))
        elif attack == "void":
            con.execute("UPDATE signatures SET kind = 'void' WHERE id = ?", (sig,))
        if attack == "read-deleted":
            con.execute("DELETE FROM area_scores WHERE read_id = ?", (read_id,))
            con.execute("DELETE FROM reads WHERE id = ?", (read_id,))
        else:
            con.execute("UPDATE reads SET status = 'in_progress' WHERE id = ?", (read_id,))
            con.execute(
                "UPDATE area_scores SET score = 0, sides = NULL WHERE read_id = ? AND "
                "score IS NOT NULL",
                (read_id,),
            )
    expected = {
        "delete": f"signature {sig} of read {code} is in the audit trail but not in the "
        "signatures table",
        "void": f"signature {sig} does not match the audit trail",
        "status": f"read {code} is not marked signed, but signature {sig} signs it",
        "read-deleted": f"read {code} is not marked signed, but signature {sig} signs it",
    }[attack]
    assert_caught(db, capsys, expected)


@pytest.mark.parametrize("change", ["score", "delete", "reason"])
def test_a_signed_read_changed_behind_the_facade_is_caught(
    db: PopulatedCopy, populated_copy: Any, capsys: pytest.CaptureFixture[str], change: str
) -> None:
    """area_scores has no triggers (scores change all the time), but a signed read's content
    is bound to its signature."""
    code = populated_copy.read("reader1", "signed")
    with plain(db) as con:
        sig = signature_of(con, code)
        read_id = con.execute("SELECT id FROM reads WHERE code = ?", (code,)).fetchone()[0]
        region, joint, feature, score = con.execute(
            "SELECT region, joint, feature, score FROM area_scores WHERE read_id = ? AND "
            "score IS NOT NULL AND sides IS NULL ORDER BY position LIMIT 1",
            (read_id,),
        ).fetchone()
        where = "WHERE read_id = ? AND region = ? AND joint = ? AND feature = ?"
        key = (read_id, region, joint, feature)
        if change == "score":
            con.execute(f"UPDATE area_scores SET score = ? {where}", (1 - min(score, 1), *key))
        elif change == "delete":
            con.execute(f"DELETE FROM area_scores {where}", key)
        else:
            con.execute(f"UPDATE area_scores SET score = NULL, reason = 'operated' {where}", key)
    assert_caught(db, capsys, f"read {code} has changed since signature {sig} was given")


def test_a_signed_read_changed_through_the_facade_still_verifies(
    db: PopulatedCopy, populated_copy: Any
) -> None:
    """The legitimate way (a reason, the signature voided, signed again) keeps verifying."""
    c = populated_copy
    code = c.read("reader1", "signed")
    s = c.session("reader1")
    area = next(iter(c.complete_scores()))
    old = c.ws.reading.get_read(s, code).scores[area].score
    c.ws.reading.set_score(
        s, code, area, AreaScore.scored(1 - min(old, 1)), change_reason="second look"
    )
    assert verify(db).ok
    c.ws.reading.sign_read(s, code, c.password("reader1"), username="reader1")
    result = verify(db)
    assert result.ok, result.errors
    with plain(db) as con:
        kinds = [
            k
            for (k,) in con.execute(
                "SELECT kind FROM signatures WHERE entity_id = ? ORDER BY id", (code,)
            )
        ]
    assert kinds == ["sign", "void", "sign"]


# ------------------------------------------------------------------ receipts and the key


def test_receipts_one_step_behind_verify_with_a_warning(
    db: PopulatedCopy, populated_copy: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A crash between a commit and its receipt: the commit stands, the receipts lag one step;
    that verifies, with a warning."""
    c = populated_copy
    receipts = db.receipts_path
    size = receipts.stat().st_size
    code = c.read("reader1", "partial")
    area = list(c.complete_scores())[10]
    chain = chain_of(db, "trial")
    name = chain_name("audit_events", chain)
    with plain(db) as con:
        before = count(con, "audit_events", chain)
    c.ws.reading.set_score(c.session("reader1"), code, area, AreaScore.scored(1))
    text = receipts.read_text(encoding="ascii")
    added = text[size:].splitlines()
    assert [line.split()[0] for line in added] == [name]  # the trial's chain only
    with open(receipts, "r+b") as fh:  # the receipt line never made it to the disk
        fh.truncate(size)
    with plain(db) as con:
        n = count(con, "audit_events", chain)
    assert int(added[0].split()[1]) == n
    result = verify(db)
    assert result.ok, result.errors
    assert result.warnings == [
        f"{name}: the last receipt is behind the head ({before} of {n} rows), as after a "
        "crash between a commit and its receipt"
    ]
    rc, out, _ = cli_verify(db, capsys)
    assert rc == 0, out
    assert f"warning: {name}: the last receipt is behind the head" in out
    assert "audit trail verifies" in out


@pytest.mark.parametrize("keep", [3, 8, 30, 74, 80])
@pytest.mark.parametrize("then_commit", [False, True], ids=["last", "continued"])
def test_a_torn_receipt_line_verifies_with_a_warning(
    db: PopulatedCopy,
    populated_copy: Any,
    capsys: pytest.CaptureFixture[str],
    keep: int,
    then_commit: bool,
) -> None:
    """A crash in the middle of writing a receipt line leaves a torn line (in the table name,
    the row number, the MAC or the time), possibly continued by the next commit's receipt on
    the same line: harmless, never taken for a rewritten chain."""
    receipts = db.receipts_path
    lines = receipts.read_text(encoding="ascii").splitlines(keepends=True)
    assert len(lines[-1]) > keep
    receipts.write_text("".join(lines[:-1]) + lines[-1][:keep], encoding="ascii")
    if then_commit:
        c = populated_copy
        area = list(c.complete_scores())[10]
        c.ws.reading.set_score(
            c.session("reader1"), c.read("reader1", "partial"), area, AreaScore(1)
        )
    result = verify(db)
    assert result.ok, result.errors
    mac_whole = keep >= len(" ".join(lines[-1].split()[:3]))
    torn = ("unreadable", " is torn ")
    if not mac_whole:
        assert any(t in w for w in result.warnings for t in torn), result.warnings
    assert all(any(t in w for t in torn) or "behind the head" in w for w in result.warnings)
    rc, out, _ = cli_verify(db, capsys)
    assert rc == 0, out


def test_a_missing_receipts_file_is_reported(db: PopulatedCopy) -> None:
    """Without receipts a cut tail cannot be seen: verification says so."""
    db.receipts_path.unlink()
    result = verify(db)
    assert result.ok
    assert any("a cut tail cannot be detected" in w for w in result.warnings)


def test_a_missing_key_file_gives_a_clear_error(
    db: PopulatedCopy, capsys: pytest.CaptureFixture[str]
) -> None:
    key = db.key_path
    key.unlink()
    with pytest.raises(ScorerError, match="audit key file .* is missing") as info:
        Workspace.open(db=db.db)
    assert str(key) in str(info.value)
    rc, out, err = cli_verify(db, capsys)
    assert rc == 1
    assert "audit key file" in err and "missing" in err and str(key) in err
    assert "verifies" not in out


@pytest.mark.posix
def test_a_key_readable_by_others_is_refused(
    db: PopulatedCopy, capsys: pytest.CaptureFixture[str]
) -> None:
    key = db.key_path
    key.chmod(0o644)
    rc, _, err = cli_verify(db, capsys)
    assert rc == 1 and "readable by other accounts" in err


def test_another_databases_key_is_caught(
    db: PopulatedCopy, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key swapped for another one (say, a new database's): nothing verifies."""
    key = db.key_path
    key.write_text(secrets.token_hex(32) + "\n", encoding="ascii")
    assert_caught(db, capsys, "audit_events: row 1 does not verify")  # the centre's, first


def test_the_error_message_is_also_in_the_json_report(
    db: PopulatedCopy, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = chain_of(db, "trial")
    with attacker(db) as con:
        k = count(con, "audit_events", chain) - 5
        con.execute(f"UPDATE audit_events SET username = 'mallory' WHERE {AT}", (chain, k))
    capsys.readouterr()
    rc = main(["audit", "verify", "--db", db.db, "--format", "json", "--maintenance"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 1
    assert report["ok"] is False
    name = chain_name("audit_events", chain)
    assert report["errors"][0].startswith(f"{name}: row {k} does not verify")


def test_receipts_cut_far_behind_are_not_called_a_crash(
    db: PopulatedCopy, populated_copy: Any
) -> None:
    """Receipts of three commits gone: still only a warning (the receipts guard the tail;
    cutting them alone hides nothing), but one that counts the commits without a receipt and
    does not blame a crash (outsider's finding)."""
    c = populated_copy
    size = db.receipts_path.stat().st_size
    code = c.read("reader1", "partial")
    for i, area in enumerate(list(c.complete_scores())[10:13]):
        c.clock.advance(seconds=1)
        c.ws.reading.set_score(c.session("reader1"), code, area, AreaScore.scored(i % 2))
    with open(db.receipts_path, "r+b") as fh:
        fh.truncate(size)
    result = verify(db)
    assert result.ok, result.errors
    name = chain_name("audit_events", chain_of(db, "trial"))
    behind_ = [w for w in result.warnings if w.startswith(f"{name}: the last receipt")]
    assert len(behind_) == 1 and "3 commits without a receipt" in behind_[0], result.warnings
    assert "as after a crash" not in behind_[0]


def test_a_receipt_line_torn_by_a_killed_writer_is_ended_by_the_next(
    db: PopulatedCopy, populated_copy: Any
) -> None:
    """A process killed while appending its receipt leaves a line without its end: the next
    commit starts its receipt on a line of its own, and verification calls the torn line torn,
    not unreadable (CI saw the next receipt glued to a torn one)."""
    c = populated_copy
    whole = db.receipts_path.read_text(encoding="ascii").splitlines(keepends=True)
    with open(db.receipts_path, "ab") as fh:
        fh.write(whole[-1][:30].encode("ascii"))  # a line cut inside its MAC, no newline
    code = c.read("reader1", "partial")
    area = list(c.complete_scores())[10]
    c.ws.reading.set_score(c.session("reader1"), code, area, AreaScore.scored(1))
    lines = db.receipts_path.read_text(encoding="ascii").splitlines()
    assert lines[len(whole)] == whole[-1][:30]
    assert lines[len(whole) + 1].startswith(f"{chain_name('audit_events', chain_of(db, 'trial'))} ")
    result = verify(db)
    assert result.ok, result.errors
    assert [w for w in result.warnings if "receipts line" in w] == [
        f"receipts line {len(whole) + 1} is torn (a process stopped while writing it): "
        f"{whole[-1][:30]!r}"
    ]
