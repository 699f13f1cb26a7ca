"""The trial's reads in three queries (``repository.core_reads_of_trial``, what the reads
export and the agreement report read) are exactly the reads ``to_core_read`` makes one by one:
same reads, same order, same scores in the same order, same visit dates, with real IDs or
codes; on the populated trial (in progress, complete, signed, adjudication, void reads and a
read with no scores), on a generated import and on the demo (visit dates from its films)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scorer.core.reads import Read as CoreRead
from scorer.services.lookups import csv_reads
from scorer.store import repository as repo
from scorer.workspace import Workspace
from tests.generated_reads import generated_csv
from tests.services.small_demo import small_demo
from tests.store.conftest import PopulatedCopy


def _one_by_one(db: Any, t: Any, real_ids: bool) -> list[CoreRead]:
    """The reads as they were read before: per read, its rows loaded one by one."""
    return [repo.to_core_read(db, r, real_ids=real_ids) for r in repo.reads_of_trial(db, t)]


def _same(ws: Workspace, trial: str) -> list[CoreRead]:
    """Assert the bulk and the one-by-one readings agree, both ways of naming patients;
    return the bulk reads (with codes)."""
    with ws.store.read() as db:
        t = repo.trial_by_code(db, trial)
        assert t is not None
        for real_ids in (True, False):
            bulk = repo.core_reads_of_trial(db, t, real_ids)
            old = _one_by_one(db, t, real_ids)
            assert bulk == old
            # Equal mappings may differ in order: the bulk reading's order is the primary
            # key's, which is also what SQLite's one-by-one query met (PostgreSQL's met its
            # heap's order, which no query asked for).
            assert all(list(r.scores) == sorted(r.scores) for r in bulk)
            if db.get_bind().dialect.name == "sqlite":
                assert [list(r.scores) for r in bulk] == [list(r.scores) for r in old]
            assert csv_reads(db, t, real_ids) == [r for r in old if r.scores]
        return repo.core_reads_of_trial(db, t, False)


def test_the_populated_trial_reads_the_same(populated_copy: PopulatedCopy) -> None:
    c = populated_copy
    reader = c.session("reader1")
    # A read opened and not scored yet: among the trial's reads, not among the CSV's.
    empty = c.ws.reading.start_read(reader, c.trial, c.patient(2), "W0")
    # A void read (set behind the facade: no operation makes one from a reader's read).
    c.sql_write("UPDATE reads SET status = 'void' WHERE code = ?", (c.read("reader2", "signed"),))
    # Some reads of another trial, which must not be read.
    coord = c.session("coord1")
    c.ws.trials.create_trial(coord, "T2", "Other trial", visits=(("W0", 0.0), ("W24", 24.0)))
    c.ws.exchange.import_reads(coord, "T2", generated_csv("T2", 4, seed=3))
    reads = _same(c.ws, c.trial)
    by_id = {r.read_id: r for r in reads}
    assert by_id[empty].scores == {}
    assert by_id[c.read("reader2", "signed")].status == "void"
    assert {r.read_type for r in reads} == {"primary", "adjudication"}
    assert {r.status for r in reads} >= {"in_progress", "signed", "void"}
    assert {r.trial for r in reads} == {c.trial}


def test_an_imported_trial_reads_the_same(populated_copy: PopulatedCopy) -> None:
    c = populated_copy
    coord = c.session("coord1")
    c.ws.trials.create_trial(coord, "T3", "Imported", visits=(("W0", 0.0), ("W24", 24.0)))
    c.ws.exchange.import_reads(coord, "T3", generated_csv("T3", 24, seed=5))
    reads = _same(c.ws, "T3")
    assert len(reads) == 24 and all(r.visit_date is not None for r in reads)
    assert any(not s.assessable for r in reads for s in r.scores.values())


def test_the_demo_reads_the_same(tmp_path: Path) -> None:
    for demo in small_demo(tmp_path):
        reads = _same(demo["ws"], "DEMO-RA")
        assert reads and any(r.visit_date is not None for r in reads)
