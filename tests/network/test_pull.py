"""`scorer pull` against a real Orthanc PACS on loopback: C-FIND, then C-GET into the trial,
or C-MOVE to a running receiver; with progress, and clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from scorer.network.common import NetworkError, Peer
from scorer.network.pull import pull
from scorer.network.receiver import Receiver
from tests.intake.dicom_maker import make_dx, small_radiograph, write
from tests.network.conftest import COORD_PW, Desk, films
from tests.network.orthanc import Orthanc, start_orthanc

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def pacs(tmp_path: Path) -> Iterator[Orthanc]:
    yield from start_orthanc(tmp_path / "orthanc")


def load(pacs: Orthanc, tmp_path: Path) -> dict[str, list[Path]]:
    """Patient SYN-PACS-1: a baseline study (uncompressed, JPEG 2000, JPEG-LS films) and a
    follow-up study (one film); patient SYN-PACS-2: one film. All uploaded to the PACS."""
    one = films(tmp_path / "p1", patient="SYN-PACS-1", seed=11)
    baseline = [one["uncompressed"], one["j2k"], one["jpeg-ls"]]
    later_ds = make_dx(
        small_radiograph(96, 80, seed=12), patient_id="SYN-PACS-1", visit="W52",
        study_date="20250115",
    )  # fmt: skip
    later = [write(later_ds, tmp_path / "p1-later.dcm")]
    other = [
        write(
            make_dx(small_radiograph(96, 80, seed=13), patient_id="SYN-PACS-2"), tmp_path / "p2.dcm"
        )
    ]
    for p in baseline + later + other:
        pacs.upload(p)
    return {"baseline": baseline, "later": later, "other": other}


def run_pull(desk: Desk, *args: str) -> subprocess.CompletedProcess[str]:
    desk.ws.close()
    return subprocess.run(
        [sys.executable, "-m", "scorer", "pull", "--db", str(desk.db), "--user", "cora",
         "--password-stdin", "--trial", "T1", *args],
        input=COORD_PW + "\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=300,
    )  # fmt: skip


def sop(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def test_pull_by_c_get_imports_the_patients_studies(
    desk: Desk, pacs: Orthanc, tmp_path: Path
) -> None:
    sent = load(pacs, tmp_path)
    res = run_pull(desk, "--from", pacs.address, "--patient", "SYN-PACS-1", "--format", "json")
    assert res.returncode == 0, res.stdout + res.stderr
    out = json.loads(res.stdout)
    assert len(out["studies"]) == 2
    assert out["imported"] == 4 and out["refused"] == 0
    got = {i["sop_instance_uid"] for i in out["instances"]}
    assert got == {sop(p) for p in sent["baseline"] + sent["later"]}
    assert "4/4 instance(s) retrieved" in res.stderr or "/4 instance(s)" in res.stderr, res.stderr
    # In the trial, de-identified, with their visits; the other patient untouched.
    from scorer.workspace import Workspace

    ws = Workspace.open(db=str(desk.db))
    s = ws.accounts.login("cora", COORD_PW)
    images = ws.images.list_images(s, "T1")
    assert len(images) == 4
    assert sorted(i.visit for i in images) == ["W0", "W0", "W0", "W52"]
    assert len({i.patient for i in images}) == 1
    pulls = [e for e in ws.oversight.audit_trail(s) if e.action == "dicom.pull"]
    assert len(pulls) == 1 and json.loads(str(pulls[0].new))["imported"] == 4
    ws.close()
    # Pulling again brings nothing new: the same files are duplicates.
    again = run_pull(desk, "--from", pacs.address, "--patient", "SYN-PACS-1", "--format", "json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["duplicates"] == 4


def test_pull_one_study(desk: Desk, pacs: Orthanc, tmp_path: Path) -> None:
    sent = load(pacs, tmp_path)
    study = str(pydicom.dcmread(sent["later"][0]).StudyInstanceUID)
    report = pull(desk.ws, desk.s, "T1", Peer.parse(pacs.address), "SYN-PACS-1", study)
    assert [s["study_instance_uid"] for s in report.studies] == [study]
    assert [a.status for a in report.arrivals] == ["imported"]
    assert [a.sop_instance_uid for a in report.arrivals] == [sop(sent["later"][0])]


def test_pull_by_c_move_to_a_running_receiver(desk: Desk, pacs: Orthanc, tmp_path: Path) -> None:
    sent = load(pacs, tmp_path)
    receiver = Receiver(
        desk.ws, desk.s, "T1", aet="SCORER", port=pacs.receiver_port, host="127.0.0.1",
        allow=["ORTHANC"],
    )  # fmt: skip
    receiver.start()
    seen: list[tuple[int, int | None]] = []
    try:
        report = pull(
            desk.ws, desk.s, "T1", Peer.parse(pacs.address), "SYN-PACS-2",
            move_to="SCORER", progress=lambda d, t, _: seen.append((d, t)),
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not receiver.arrivals and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        receiver.stop()
    assert report.moved.get("completed") == 1 and not report.failures
    assert [a.sop_instance_uid for a in receiver.arrivals] == [sop(sent["other"][0])]
    assert [a.status for a in receiver.arrivals] == ["imported"]
    assert receiver.arrivals[0].calling_aet == "ORTHANC"
    assert seen and seen[-1][0] == 1


def test_an_unknown_destination_is_reported(desk: Desk, pacs: Orthanc, tmp_path: Path) -> None:
    load(pacs, tmp_path)
    report = pull(desk.ws, desk.s, "T1", Peer.parse(pacs.address), "SYN-PACS-2", move_to="NOBODY")
    assert report.failures and "NOBODY" in report.failures[0]


def test_clear_errors(desk: Desk, pacs: Orthanc, tmp_path: Path) -> None:
    load(pacs, tmp_path)
    with pytest.raises(NetworkError, match="has no patient NO-SUCH"):
        pull(desk.ws, desk.s, "T1", Peer.parse(pacs.address), "NO-SUCH")
    from tests.network.orthanc import free_port

    with pytest.raises(NetworkError, match="does it know our AE title STRANGER"):
        pull(desk.ws, desk.s, "T1", Peer.parse(pacs.address), "SYN-PACS-1", aet="STRANGER")
    with pytest.raises(NetworkError, match="did not answer"):
        pull(desk.ws, desk.s, "T1", Peer("ORTHANC", "127.0.0.1", free_port()), "SYN-PACS-1")
    res = run_pull(desk, "--from", "ORTHANC-127.0.0.1", "--patient", "SYN-PACS-1")
    assert res.returncode != 0 and "is not AET@HOST:PORT" in res.stderr
    assert generate_uid()  # (pydicom's UID maker stays importable beside pynetdicom)
