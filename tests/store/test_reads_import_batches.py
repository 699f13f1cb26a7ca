"""A long `scorer reads import` does not block readers (issue 27 item 4), on SQLite and on
PostgreSQL: the whole file is checked before anything is written; the reads then commit in
batches of whole reads, each audited; an import killed part-way is finished by running it
again, every read then there exactly once; and a reader saves throughout a large import
without a save refused."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from scorer.core.methods import get_method
from scorer.core.reads import AreaScore
from scorer.core.readscsv import format_reads_csv, parse_reads_csv
from scorer.services import exchange
from scorer.services.errors import InvalidInput
from scorer.services.exchange import same_read
from scorer.workspace import Workspace
from tests.generated_reads import generated_csv, generated_reads
from tests.store.conftest import PopulatedCopy
from tests.store.test_cli_store import Cli

REPO = Path(__file__).resolve().parents[2]
SVH = get_method("svh")


def _imported(c: PopulatedCopy) -> list[tuple[str, int]]:
    """Every imported read of the copy (read ID, its score rows), straight from the database."""
    return [
        (str(code), int(n))
        for code, n in c.sql(
            "SELECT r.code, COUNT(s.read_id) FROM reads r"
            " LEFT JOIN area_scores s ON s.read_id = r.id"
            " WHERE r.code LIKE ? GROUP BY r.code ORDER BY r.code",
            ("IMP-%",),
        )
    ]


def _batch_ids(c: PopulatedCopy) -> list[str]:
    """The read IDs every "reads.import.batch" audit row names, in order."""
    return [rid for row in c.audit("reads.import.batch") for rid in json.loads(row[5])["reads"]]


# ------------------------------------------------------------- the check comes first


@pytest.mark.parametrize("fault", ["trial", "method", "reader", "conflict"])
def test_a_fault_in_the_last_read_writes_nothing(
    populated_copy: PopulatedCopy, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    c = populated_copy
    monkeypatch.setattr(exchange, "READS_BATCH_MAX", 3)  # ten batches, were it written
    reads = generated_reads(c.trial, 30, seed=1)
    last = reads[-1]
    if fault == "trial":
        reads[-1] = replace(last, trial="OTHER")
        message = f"read {last.read_id} belongs to trial 'OTHER', not 'T1'"
    elif fault == "method":
        larsen = get_method("larsen1995")
        scores = {d.area: AreaScore.scored(0) for d in larsen.areas}
        reads[-1] = replace(last, method="larsen1995", scores=scores)
        message = "trial T1 is not scored with larsen1995"
    elif fault == "reader":
        reads[-1] = replace(last, reader="Old Reader")
        message = f"read {last.read_id}: the reader 'Old Reader' cannot be an account"
    else:
        # The read ID of a read already in the database, with other content.
        reads[-1] = replace(last, read_id=c.read("reader1", "signed"))
        message = f"read {c.read('reader1', 'signed')} exists with other content"
    before = c.dump()
    with pytest.raises(InvalidInput) as caught:
        c.ws.exchange.import_reads(c.session("coord1"), c.trial, format_reads_csv(reads))
    assert message in str(caught.value)
    assert c.dump() == before


# ------------------------------------------------------------- batches, and a re-run

CHILD = r"""
import sys
from scorer.services import exchange
from scorer.workspace import Workspace
db, path, password = sys.argv[1], sys.argv[2], sys.argv[3]
exchange.READS_BATCH_MAX, exchange.READS_BATCH_S = 10, 60.0
ws = Workspace.open(db=db)
s = ws.accounts.login("coord1", password)
def progress(done, total, _):
    print("batch", done, total, flush=True)
ws.exchange.import_reads(s, "T1", open(path, "rb").read(), source=path, progress=progress)
print("finished", flush=True)
"""


def test_an_import_killed_part_way_is_finished_by_running_it_again(
    populated_copy: PopulatedCopy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c = populated_copy
    n = 200
    reads = generated_reads(c.trial, n, seed=2)
    big = tmp_path / "big.csv"
    big.write_text(format_reads_csv(reads), encoding="utf-8")
    # A coordinator's workstation imports in batches of 10 reads and is killed after its
    # third batch has committed, part-way through a later one.
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, c.db, str(big), c.password("coord1")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert child.stdout is not None
    lines: list[str] = []
    try:
        while len(lines) < 3:
            line = child.stdout.readline()
            assert line.startswith("batch"), (line, child.communicate()[1])
            lines.append(line)
    finally:
        child.kill()
        child.communicate()
    assert lines[:3] == [f"batch {k} {n}\n" for k in (10, 20, 30)]
    first = _imported(c)
    # Whole batches of whole reads committed, each audited with its read IDs; no final row.
    assert 30 <= len(first) < n and len(first) % 10 == 0
    assert all(rows == len(SVH.areas) for _, rows in first)
    assert sorted(_batch_ids(c)) == [code for code, _ in first]
    assert c.audit("reads.import") == []

    # Run again (the command line, in batches of 10): the rest is imported, the rest skipped.
    monkeypatch.setattr(exchange, "READS_BATCH_MAX", 10)
    monkeypatch.setattr(exchange, "READS_BATCH_S", 60.0)
    cli = Cli(c.db, capsys, monkeypatch)
    argv = ("reads", "import", str(big), "--trial", c.trial, "--user", "coord1")
    rc, out, err = cli(*argv, "--password-stdin", stdin=c.password("coord1") + "\n")
    assert rc == 0, err
    rest = n - len(first)
    assert f"imported {rest} read(s) into T1; {len(first)} already there" in out
    assert f"(in {rest // 10} batch(es))" in out
    assert f"\r{n}/{n} read(s) imported or already there\n" in err  # the progress line

    # Every read exactly once, with the file's content; every batch audited; the final row.
    every = _imported(c)
    assert [code for code, _ in every] == sorted(r.read_id for r in reads)
    assert all(rows == len(SVH.areas) for _, rows in every)
    assert Counter(_batch_ids(c)) == Counter(r.read_id for r in reads)
    (final,) = c.audit("reads.import")
    assert json.loads(final[5]) | {"sha256": ""} == {
        "reads": rest,
        "rows": n * len(SVH.areas),
        "sha256": "",
        "source": "big.csv",
        "batches": rest // 10,
        "already": len(first),
    }
    exported = parse_reads_csv(c.ws.exchange.export_reads(c.session("coord1"), c.trial))
    by_id = {r.read_id: r for r in exported}
    assert all(same_read(by_id[r.read_id], r) for r in reads)
    # A third run finds everything there and adds nothing.
    again = c.ws.exchange.import_reads(c.session("coord1"), c.trial, big.read_bytes())
    assert (again.added, again.already, again.batches) == (0, n, 0)
    assert c.ws.verify().ok


# ------------------------------------------------------------- a reader saving meanwhile


def test_a_reader_saves_throughout_a_large_import(populated_copy: PopulatedCopy) -> None:
    c = populated_copy
    n = 1200
    coord = c.session("coord1")
    visits = [("W0", 0.0), ("W24", 24.0)]
    c.ws.trials.create_trial(coord, "BIG", methods=["larsen1995"], visits=visits)
    data = generated_csv("BIG", n, seed=3, method="larsen1995")
    code = c.read("reader1", "partial")
    areas = [d for d in SVH.areas if not d.sides]
    waits: list[float] = []
    refused: list[BaseException] = []
    importing = threading.Event()
    finished = threading.Event()

    def reader() -> None:
        # A second workstation: its own connections, the reader's session.
        ws = Workspace.open(db=c.db, clock=c.clock)
        try:
            s = c.session("reader1")
            i = 0
            while not finished.is_set():
                d = areas[i % len(areas)]
                started = time.perf_counter()
                try:
                    ws.reading.set_scores(s, code, {d.area: AreaScore.scored(i % (d.max + 1))})
                except BaseException as exc:  # a refused save is the failure
                    refused.append(exc)
                    return
                if importing.is_set():
                    waits.append(time.perf_counter() - started)
                i += 1
                time.sleep(0.02)
        finally:
            ws.close()

    saver = threading.Thread(target=reader)
    saver.start()
    try:
        importing.set()
        started = time.perf_counter()
        done = c.ws.exchange.import_reads(coord, "BIG", data)
        took = time.perf_counter() - started
    finally:
        finished.set()
        saver.join()
    assert refused == []
    assert (done.added, done.already) == (n, 0) and done.batches > 1
    assert len(waits) >= 20, (len(waits), took)
    # No save waited for the import (a single transaction held the lock for its whole
    # time, here many seconds, past the 10 s a save waits before it is refused).
    assert max(waits) < 2.5, sorted(waits)[-5:]
    count = "SELECT COUNT(*) FROM reads r JOIN trials t ON t.id = r.trial_id WHERE t.code = ?"
    assert c.sql(count, ("BIG",)) == [(n,)]
