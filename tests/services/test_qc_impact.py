"""What failing an image does, shown before it is failed (issue 30): ``images.qc_impact`` lists
every case that shows the image with its reader, progress and signed reads of the image's
visit, and changes nothing; ``images.image_file`` gives the readers' copy the desk's viewer
opens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from scorer.gui.desk_sample import build_desk_sample
from scorer.imaging.radiograph import radiograph_from_bytes
from scorer.store import repository as repo
from scorer.workspace import NotFound


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, str]]:
    base = tmp_path_factory.mktemp("qc_impact")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SCORER_DATA_DIR", str(base / "data"))
        ws, coord, trial = build_desk_sample(base / "trial")
        yield ws, coord, trial
        ws.close()


def _case_reads(ws: Any, case: str) -> list[tuple[str, str, str]]:
    """(read code, visit label, status) of a case's reads, read behind the services."""
    with ws.store.read() as db:
        c = repo.case_by_code(db, case)
        return [
            (r.code, repo.visit_by_id(db, r.visit_id).label, r.status)
            for r in repo.reads_of_case(db, c)
        ]


def test_the_impact_lists_open_and_signed_cases_and_changes_nothing(
    desk: tuple[Any, Any, str],
) -> None:
    ws, coord, trial = desk
    rosa_case = ws.worklists.worklist(coord, trial, "rosa")[0]
    image = next(
        i
        for i in ws.images.list_images(coord, trial)
        if i.patient == rosa_case.patient and i.visit == rosa_case.visits[0]
    )
    before = ws.verify().ok, ws.images.list_images(coord, trial)
    impact = ws.images.qc_impact(coord, image.code)
    assert impact.image == image.code and impact.qc == "passed"
    by_reader = {c.reader: c for c in impact.cases}
    # rita and ravi signed every case; rosa has her first case in progress.
    assert {"rita", "ravi", "rosa"} <= set(by_reader)
    assert by_reader["rosa"].case == rosa_case.code
    assert by_reader["rosa"].status == "in progress" and by_reader["rosa"].signed_reads == ()
    signed = by_reader["ravi"]
    assert signed.status == "signed"
    reads = _case_reads(ws, signed.case)
    assert signed.signed_reads == tuple(
        code for code, label, status in reads if label == image.visit and status == "signed"
    )
    assert len(signed.signed_reads) == 1
    assert set(impact.signed_reads) >= set(signed.signed_reads)
    assert (ws.verify().ok, ws.images.list_images(coord, trial)) == before
    # The impact names the cases that failing then reports.
    decision = ws.images.image_qc(coord, image.code, "failed", "wrong patient's hand")
    assert {c.case for c in decision.cases} == {c.case for c in impact.cases}
    assert ws.images.qc_impact(coord, image.code).cases == ()  # a failed image reaches none


def test_the_viewer_gets_the_readers_copy_and_unknown_codes_are_named(
    desk: tuple[Any, Any, str],
) -> None:
    ws, coord, trial = desk
    image = ws.images.list_images(coord, trial)[0]
    film = radiograph_from_bytes(ws.images.image_file(coord, image.code))
    assert film.shape == (image.rows, image.columns)
    with pytest.raises(NotFound, match="no image 'NOSUCH'"):
        ws.images.image_file(coord, "NOSUCH")
    with pytest.raises(NotFound, match="no image 'NOSUCH'"):
        ws.images.qc_impact(coord, "NOSUCH")
