"""`scorer receive`: dcmtk's storescu and echoscu, real DICOM clients, send to the receiver.

Films in five transfer syntaxes arrive de-identified and ready to read; an unknown calling AE
title is refused; a malformed or oversized instance gets a failure status and nothing else is
affected; the command runs until SIGTERM and stops with nothing half-imported.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.uid import generate_uid

from scorer.imaging.pixels import stored_values
from scorer.network.common import NetworkError, Peer
from scorer.network.receiver import Receiver
from scorer.store import repository as repo
from tests.intake.dicom_maker import make_dx, small_radiograph, write
from tests.network.conftest import COORD_PW, Desk, dcmtk, films

REPO = Path(__file__).resolve().parents[2]


#: storescu's option proposing each film's transfer syntax (and the uncompressed ones), as a
#: modality set up to send that syntax would.
PROPOSE = {
    "uncompressed": "-x=",
    "jpeg-lossless": "-xs",
    "jpeg-ls": "-xt",
    "j2k": "-xv",
    "rle": "-xr",
}


def storescu(
    port: int,
    files: list[Path],
    calling: str = "MODALITY1",
    called: str = "SCORER",
    propose: str = "-x=",
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            dcmtk("storescu"),
            propose,
            "--no-halt",  # go on after a failed store, as a modality sending a series would
            "-v",  # each store response's status
            "-aet",
            calling,
            "-aec",
            called,
            "127.0.0.1",
            str(port),
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def trail(desk: Desk, action: str, at_least: int = 1) -> list[dict[str, Any]]:
    """The audit rows of ``action``, waiting a little for ``at_least`` of them: the receiver
    audits an association when it ends, which may be just after the sender has exited."""
    deadline = time.monotonic() + 15
    while True:
        rows = [
            {**asdict(e), "new": json.loads(str(e.new)) if e.new else {}}
            for e in desk.ws.oversight.audit_trail(desk.s)
            if e.action == action
        ]
        if len(rows) >= at_least or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


@pytest.fixture
def receiver(desk: Desk) -> Iterator[Receiver]:
    r = Receiver(desk.ws, desk.s, "T1", aet="SCORER", port=0, host="127.0.0.1", allow=["MODALITY1"])
    r.start()
    yield r
    r.stop()


def test_films_in_five_transfer_syntaxes_arrive_deidentified_and_ready(
    desk: Desk, receiver: Receiver, tmp_path: Path
) -> None:
    sent = films(tmp_path / "films")
    originals = {name: pydicom.dcmread(p) for name, p in sent.items()}
    for name, path in sent.items():
        res = storescu(receiver.port, [path], propose=PROPOSE[name])
        assert res.returncode == 0, (name, res.stdout + res.stderr)
    by_uid = {a.sop_instance_uid: a for a in receiver.arrivals}
    assert len(by_uid) == 5
    assert {a.status for a in by_uid.values()} == {"imported"}, [a.reason for a in by_uid.values()]
    assert {a.calling_aet for a in by_uid.values()} == {"MODALITY1"}
    images = {i.code: i for i in desk.ws.images.list_images(desk.s, "T1")}
    assert set(images) == {a.image for a in by_uid.values()}
    with desk.ws.store.read() as db:
        trial = repo.trial_by_code(db, "T1")
        assert trial is not None
        reader_paths = {img.code: img.reader_path for img in repo.images_of(db, trial)}
    loc = desk.ws.store.location
    for name, original in originals.items():
        a = by_uid[original.SOPInstanceUID]
        assert a.image is not None
        assert images[a.image].patient and images[a.image].visit == "W0"
        copy = pydicom.dcmread(loc.image_file(reader_paths[a.image]))
        text = repr(copy) + repr(copy.file_meta)
        for identifier in (
            "SYN-NET-1",
            "Doe^Jane",
            original.SOPInstanceUID,
            original.StudyInstanceUID,
        ):
            assert identifier not in text, (name, identifier)
        # Ready to read: the readers' copy decodes to the very pixels that were sent.
        assert (stored_values(copy) == original.pixel_array).all(), name
    assoc = trail(desk, "dicom.association", at_least=5)
    assert len(assoc) == 5  # one association per film, as storescu was run
    for e in assoc:
        new = e["new"]
        assert (new["calling_aet"], new["result"]) == ("MODALITY1", "released")
        assert (new["received"], new["imported"]) == (1, 1)
        assert str(new["peer"]).startswith("127.0.0.1:")
    imports = trail(desk, "images.import")
    assert len(imports) == 5 and all(
        e["new"]["origin"]["dicom_from"] == "MODALITY1" for e in imports
    )


def test_an_unknown_calling_ae_title_is_refused(
    desk: Desk, receiver: Receiver, tmp_path: Path
) -> None:
    sent = films(tmp_path / "films")
    res = storescu(receiver.port, [sent["uncompressed"]], calling="INTRUDER")
    assert res.returncode != 0
    assert "reject" in (res.stdout + res.stderr).lower()
    assert receiver.arrivals == type(receiver.arrivals)(maxlen=receiver.arrivals.maxlen)
    assert desk.ws.images.list_images(desk.s, "T1") == []
    refused = trail(desk, "dicom.association")
    assert [e["new"]["result"] for e in refused] == ["refused"]
    assert refused[0]["new"]["calling_aet"] == "INTRUDER"
    assert "not allowed" in refused[0]["new"]["reason"]
    # The allowed sender still gets in, and C-ECHO answers.
    echo = subprocess.run(
        [dcmtk("echoscu"), "-aet", "MODALITY1", "-aec", "SCORER", "127.0.0.1", str(receiver.port)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert echo.returncode == 0, echo.stderr
    assert storescu(receiver.port, [sent["uncompressed"]]).returncode == 0
    assert len(desk.ws.images.list_images(desk.s, "T1")) == 1


def test_the_trials_own_senders_are_allowed(desk: Desk, tmp_path: Path) -> None:
    with pytest.raises(NetworkError, match="no sender is allowed"):
        Receiver(desk.ws, desk.s, "T1", port=0, host="127.0.0.1")
    desk.ws.trials.set_trial_setting(
        desk.s, "T1", "dicom_senders", "PACS1, XR-ROOM-2", "sites named"
    )
    r = Receiver(desk.ws, desk.s, "T1", port=0, host="127.0.0.1")
    assert r.allowed == ("PACS1", "XR-ROOM-2")
    r.start()
    try:
        sent = films(tmp_path / "films")
        assert storescu(r.port, [sent["rle"]], "XR-ROOM-2", propose="-xr").returncode == 0
        assert storescu(r.port, [sent["rle"]], "MODALITY1", propose="-xr").returncode != 0
    finally:
        r.stop()
    assert [a.status for a in r.arrivals] == ["imported"]
    with pytest.raises(Exception, match="AE title"):
        desk.ws.trials.set_trial_setting(
            desk.s, "T1", "dicom_senders", "FAR-TOO-LONG-AE-TITLE", "x"
        )


def test_a_malformed_or_oversized_instance_fails_alone(desk: Desk, tmp_path: Path) -> None:
    r = Receiver(desk.ws, desk.s, "T1", port=0, host="127.0.0.1", allow=["MODALITY1"], max_mb=1)
    r.start()
    try:
        sent = films(tmp_path / "films")
        broken = pydicom.dcmread(sent["j2k"])
        broken.SOPInstanceUID = generate_uid()
        broken.file_meta.MediaStorageSOPInstanceUID = broken.SOPInstanceUID
        frames = pydicom.encaps.generate_frames(broken.PixelData, number_of_frames=1)
        frame = next(frames)
        broken.PixelData = pydicom.encaps.encapsulate([frame[:40] + b"\x00" * 200])
        bad = tmp_path / "broken.dcm"
        broken.save_as(bad, enforce_file_format=True)
        big = write(
            make_dx(small_radiograph(1200, 1000, seed=5), patient_id="SYN-NET-1"),
            tmp_path / "big.dcm",
        )
        res = storescu(r.port, [sent["uncompressed"], bad, big, sent["j2k"]], propose="-xv")
    finally:
        r.stop()
    out = res.stdout + res.stderr
    statuses = {a.sop_instance_uid: a for a in r.arrivals}
    assert statuses[pydicom.dcmread(sent["uncompressed"]).SOPInstanceUID].status == "imported"
    assert statuses[pydicom.dcmread(sent["j2k"]).SOPInstanceUID].status == "imported"
    assert statuses[broken.SOPInstanceUID].status == "refused"
    assert statuses[pydicom.dcmread(big).SOPInstanceUID].status == "refused"
    assert "over the limit of 1 MB" in statuses[pydicom.dcmread(big).SOPInstanceUID].reason
    # What the sender was told, store by store.
    responses = [line for line in out.splitlines() if "Received Store Response" in line]
    assert [r.split("(", 1)[1] for r in responses] == [
        "Success)",
        "Error: CannotUnderstand)",
        "Refused: OutOfResources)",
        "Success)",
    ], out
    assert len(desk.ws.images.list_images(desk.s, "T1")) == 2
    assoc = trail(desk, "dicom.association")[-1]["new"]
    assert (assoc["imported"], assoc["refused"], assoc["received"]) == (2, 2, 4)


def test_peer_addresses_are_checked() -> None:
    assert Peer.parse("ORTHANC@127.0.0.1:4242") == Peer("ORTHANC", "127.0.0.1", 4242)
    assert Peer.parse("PACS@[::1]:104").host == "::1"
    for bad in ("ORTHANC", "ORTHANC@host", "@h:1", "A@h:port", "A@h:70000", "A\\B@h:1"):
        with pytest.raises(NetworkError):
            Peer.parse(bad)


def _receive_cli(desk: Desk, *extra: str) -> tuple[subprocess.Popen[str], int]:
    """`scorer receive` in its own process, on a free port; returns it and the port."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    desk.ws.close()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scorer",
            "receive",
            "--db",
            str(desk.db),
            "--user",
            "cora",
            "--password-stdin",
            "--trial",
            "T1",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--allow",
            "MODALITY1",
            *extra,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(COORD_PW + "\n")
    proc.stdin.close()
    proc.stdin = None  # communicate() later must not flush it
    line = proc.stdout.readline()
    assert "receiving for trial T1" in line, line + (
        proc.stderr.read() if proc.stderr and proc.poll() is not None else ""
    )
    return proc, port


def test_the_command_runs_until_sigterm_and_leaves_nothing_half_imported(
    desk: Desk, tmp_path: Path
) -> None:
    many = []
    for i in range(30):
        ds = make_dx(small_radiograph(400, 320, seed=100 + i), patient_id=f"SYN-NET-{i % 3}")
        many.append(write(ds, tmp_path / "many" / f"f{i:02d}.dcm"))
    proc, port = _receive_cli(desk)
    try:
        sender = subprocess.Popen(
            [
                dcmtk("storescu"),
                "-aet",
                "MODALITY1",
                "-aec",
                "SCORER",
                "127.0.0.1",
                str(port),
                *map(str, many),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # SIGTERM once some have arrived, while the rest are still coming.
        deadline = time.monotonic() + 90
        from scorer.workspace import Workspace

        ws = Workspace.open(db=str(desk.db))
        s = ws.accounts.login("cora", COORD_PW)
        while time.monotonic() < deadline and len(ws.images.list_images(s, "T1")) < 3:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        sender.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped: imported" in out
    images = ws.images.list_images(s, "T1")
    assert 3 <= len(images) < 30  # stopped part-way: the rest were answered, not imported
    # Every image row's files exist, and every file in the readers' store has its row.
    loc = ws.store.location
    with ws.store.read() as db:
        trial = repo.trial_by_code(db, "T1")
        assert trial is not None
        rows = repo.images_of(db, trial)
        named = {loc.image_file(r.reader_path).resolve() for r in rows}
        for r in rows:
            assert loc.image_file(r.original_path, original=True).is_file()
    on_disk = {p.resolve() for p in loc.readers_store.rglob("*") if p.is_file()}
    assert on_disk == named
    actions = [e.action for e in ws.oversight.audit_trail(s)]
    assert actions.count("dicom.receive.start") == 1 and actions.count("dicom.receive.stop") == 1
    assert "dicom.association" in actions
    check = ws.verify()
    assert check.ok, check.errors
    ws.close()


def test_the_command_refuses_a_port_in_use(desk: Desk) -> None:
    proc, port = _receive_cli(desk)
    try:
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "scorer",
                "receive",
                "--db",
                str(desk.db),
                "--user",
                "cora",
                "--password-stdin",
                "--trial",
                "T1",
                "--port",
                str(port),
                "--host",
                "127.0.0.1",
                "--allow",
                "MODALITY1",
            ],
            input=COORD_PW + "\n",
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            timeout=120,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert second.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in second.stderr


def test_a_film_sent_again_in_another_syntax_answers_success_as_a_duplicate(
    desk: Desk, receiver: Receiver, tmp_path: Path
) -> None:
    """A modality re-sending a study, or a PACS forwarding it in another transfer syntax: the
    same SOP Instance UID with the same pixels is the image the trial has."""
    sent = films(tmp_path / "films")
    again = pydicom.dcmread(sent["uncompressed"])
    again.compress(pydicom.uid.RLELossless, generate_instance_uid=False)
    resent = tmp_path / "again-rle.dcm"
    again.save_as(resent, enforce_file_format=True)
    for path, propose in ((sent["uncompressed"], "-x="), (resent, "-xr"), (resent, "-xr")):
        res = storescu(receiver.port, [path], propose=propose)
        assert res.returncode == 0, res.stdout + res.stderr
    first, *later = receiver.arrivals
    assert first.status == "imported"
    assert [(a.status, a.image) for a in later] == [("duplicate", first.image)] * 2
    assert len(desk.ws.images.list_images(desk.s, "T1")) == 1
