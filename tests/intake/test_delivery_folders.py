"""Each database delivers its cases' films into a folder of its own (issue 25, F5).

Films were delivered to ``<data dir>/films/<case code>`` whatever the database: two databases
used on one workstation (a training copy beside the trial's, or ``SCORER_DB`` pointing
elsewhere) shared case-code-keyed folders, and one's pruning could remove the other's films.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scorer.gui.sample_case import build_sample_workspace
from scorer.workspace import Workspace


def test_two_databases_on_one_workstation_deliver_into_folders_of_their_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("SCORER_DATA_DIR", str(data))
    folders = []
    for name in ("trial", "training"):
        sample = build_sample_workspace(tmp_path / name, patients=1, visits=2, pixel_mm=1.0)
        ws, rita = sample.workspace, sample.session
        try:
            (case,) = ws.worklists.worklist(rita, sample.trial)
            paths = [
                Path(f.path) for fs in ws.images.case_images(rita, case.code).values() for f in fs
            ]
            assert paths and all(p.is_file() for p in paths)
            (case_folder,) = {p.parent for p in paths}
            assert case_folder.name == case.code
            folders.append(case_folder.parent)
            assert ws.images.films_dir == case_folder.parent
        finally:
            ws.close()
    trial, training = folders
    assert trial != training
    assert trial.parent == training.parent == data / "films"
    # The same database opened again delivers into the same folder (its films are found).
    again = Workspace.open(db=str(tmp_path / "trial" / "demo.db"))
    try:
        assert again.images.films_dir == trial
    finally:
        again.close()
