"""Two imports of the same files into one trial at once (two coordinators, or a receiver and a
coordinator): each file becomes one image, and the import that commits second reports the file
a duplicate. Found by an outsider: both imports had examined the trial before either committed,
and both imported the file."""

from __future__ import annotations

import threading
from pathlib import Path

from scorer.workspace import Workspace
from tests.intake.conftest import COORD_PW, Desk


def test_an_import_that_commits_after_another_took_its_files_reports_duplicates(
    desk: Desk, tmp_path: Path
) -> None:
    from scorer.gui.sample_case import write_sample_films

    films = tmp_path / "films"
    write_sample_films(films, seed=5, visits=2)
    total = len(list(films.glob("*.dcm")))
    examined = threading.Event()
    go_on = threading.Event()
    calls = 0

    def held_after_examining(_i: int, _n: int, _name: str) -> None:
        # Progress is reported once per file as it is examined, then as each is committed:
        # the first commit waits until the other import has taken every file.
        nonlocal calls
        calls += 1
        if calls == total + 1:
            examined.set()
            assert go_on.wait(120)

    first = Workspace.open(db=str(desk.db))
    first_session = first.accounts.login("cora", COORD_PW)
    outcome: dict[str, object] = {}

    def first_import() -> None:
        try:
            outcome["report"] = first.images.import_images(
                first_session, "T1", [films], None, held_after_examining, workers=1
            )
        except BaseException as exc:  # reported below, in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=first_import)
    thread.start()
    try:
        assert examined.wait(120), "the first import never got past examining"
        second = desk.ws.images.import_images(desk.s, "T1", [films], workers=1)
        assert second.count("imported") == total
    finally:
        go_on.set()
        thread.join(120)
    assert "error" not in outcome, outcome.get("error")
    report = outcome["report"]
    files = report.files  # type: ignore[attr-defined]
    outcomes = [(f.status, f.reason) for f in files]
    # No file became a second image. (Under a heavy load a file of the held import may also
    # be refused, its worker having waited past the time limit while the import was held.)
    assert "imported" not in {status for status, _ in outcomes}, outcomes
    meanwhile = [f for f in files if f.status == "duplicate" and "meanwhile" in f.reason]
    assert meanwhile, outcomes
    taken = {f.image for f in second.files}
    assert {f.image for f in meanwhile} <= taken
    assert {i.code for i in desk.ws.images.list_images(desk.s, "T1")} == taken
    assert desk.ws.verify().ok
    first.close()
