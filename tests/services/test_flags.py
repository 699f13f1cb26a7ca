"""Flags a coordinator can act on (issue 30): a reader's flag keeps the visit in focus and the
films on screen; the coordinator sees the patient, the true visit and its date and the images;
the reader sees the answer on that case; open and answered counts per reader."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from scorer.demo import TRIAL
from scorer.store import repository as repo
from scorer.store.schema import Patient
from scorer.workspace import InvalidInput, NotFound, PermissionDenied
from tests.services.small_demo import small_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    yield from small_demo(tmp_path_factory.mktemp("flags"))


def _login(demo: dict[str, Any], user: str) -> Any:
    return demo["ws"].accounts.login(user, demo["pw"][user])


def _truth_of_case(demo: dict[str, Any], case: str) -> tuple[str, list[str]]:
    """The case's patient code and visit labels, read behind the services."""
    with demo["ws"].store.read() as db:
        c = repo.case_by_code(db, case)
        p = db.get(Patient, c.patient_id)
        return p.code, json.loads(c.visits)


def test_the_coordinator_sees_patient_true_visit_date_and_images(demo: dict[str, Any]) -> None:
    ws = demo["ws"]
    reader, coord = _login(demo, "reader1"), _login(demo, "coord")
    case = ws.worklists.worklist(reader, TRIAL)[0].code
    ws.reading.open_case(reader, case)
    films = ws.images.case_images(reader, case)
    letter = sorted(films)[-1]
    shown = [f.image for f in films[letter]]
    number = ws.reading.raise_flag(
        reader, case, "this visit looks like another patient", visit=letter, films=shown
    )
    patient, labels = _truth_of_case(demo, case)
    true_visit = labels["ABC".index(letter)]
    flag = next(f for f in ws.coordination.flags(coord, TRIAL) if f.flag == number)
    assert (flag.case, flag.reader, flag.letter) == (case, "reader1", letter)
    assert (flag.patient, flag.visit) == (patient, true_visit)
    images = {i.code: i for i in ws.images.list_images(coord, TRIAL)}
    assert flag.images and all(code in images for code in flag.images)
    assert all(images[code].visit == true_visit for code in flag.images)
    assert flag.visit_date == min(images[code].acquisition_date for code in flag.images)
    # The reader's own view: the letter, nothing that unblinds.
    mine = next(f for f in ws.coordination.flags(reader, TRIAL) if f.flag == number)
    assert mine.letter == letter
    assert (mine.patient, mine.visit, mine.visit_date, mine.images) == (None, None, None, ())
    # The audit row names the letter and the films' names in the case only.
    with ws.store.read() as db:
        new = [a.new for a in repo.audit_rows(db) if a.action == "flag.raise"][-1]
    assert json.loads(new) == {
        "flag": number,
        "message": "this visit looks like another patient",
        "letter": letter,
        "films": shown,
    }
    assert patient not in new and true_visit not in new
    assert ws.verify().ok


def test_the_answer_reaches_the_reader_on_that_case_and_counts_move(
    demo: dict[str, Any],
) -> None:
    ws = demo["ws"]
    reader, coord = _login(demo, "reader2"), _login(demo, "coord")
    first, second = (c.code for c in ws.worklists.worklist(reader, TRIAL)[:2])
    ws.reading.open_case(reader, first)
    before = {c.reader: c for c in ws.coordination.flag_counts(coord, TRIAL)}
    n1 = ws.reading.raise_flag(reader, first, "films look swapped", visit="A")
    n2 = ws.reading.raise_flag(reader, first, "whole case: wrong hand?")
    counts = {c.reader: c for c in ws.coordination.flag_counts(coord, TRIAL)}
    was = before.get("reader2")
    assert counts["reader2"].open == (was.open if was else 0) + 2
    ws.coordination.answer_flag(coord, TRIAL, n1, "Checked: same patient, scanned twice")
    on_case = ws.coordination.case_flags(reader, first)
    assert [(f.flag, f.closed, f.answer) for f in on_case] == [
        (n1, True, "Checked: same patient, scanned twice"),
        (n2, False, ""),
    ]
    assert on_case[0].answered_at is not None and on_case[1].letter == ""
    assert ws.coordination.case_flags(reader, second) == []
    after = {c.reader: c for c in ws.coordination.flag_counts(coord, TRIAL)}
    assert (after["reader2"].open, after["reader2"].answered) == (
        counts["reader2"].open - 1,
        counts["reader2"].answered + 1,
    )
    # Another reader's case is not there for this one (the same answer as no case at all).
    other = ws.worklists.worklist(_login(demo, "reader1"), TRIAL)[0].code
    with pytest.raises(NotFound):
        ws.coordination.case_flags(reader, other)
    with pytest.raises(PermissionDenied):
        ws.coordination.flag_counts(reader, TRIAL)


def test_a_wrong_letter_or_film_is_refused_and_nothing_is_written(demo: dict[str, Any]) -> None:
    ws = demo["ws"]
    reader, coord = _login(demo, "reader1"), _login(demo, "coord")
    case = ws.worklists.worklist(reader, TRIAL)[0].code
    ws.reading.open_case(reader, case)
    before = len(ws.coordination.flags(coord, TRIAL, open_only=False))
    for wrong in ("Z", "", "AB", "a"):  # "" and "AB" are in "AB", but no letter
        with pytest.raises(InvalidInput, match="this case has visits A, B"):
            ws.reading.raise_flag(reader, case, "x", visit=wrong)
    with pytest.raises(NotFound, match="no film 'nope' in this case"):
        ws.reading.raise_flag(reader, case, "x", visit="A", films=["nope"])
    assert len(ws.coordination.flags(coord, TRIAL, open_only=False)) == before
