"""A real Orthanc PACS (Debian's orthanc package) started on loopback for one test.

It knows the workstation as SCORER (for C-FIND, C-GET and C-MOVE, the latter to a receiver
on ``receiver_port``), keeps its files in the test's folder, and takes films over its REST API.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Orthanc:
    aet: str
    dicom_port: int
    http_port: int
    receiver_port: int
    proc: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return f"{self.aet}@127.0.0.1:{self.dicom_port}"

    def upload(self, path: Path) -> str:
        """Store a DICOM file through the REST API; its Orthanc instance ID."""
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}/instances",
            data=path.read_bytes(),
            headers={"Content-Type": "application/dicom"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            answer = json.loads(resp.read())
        assert answer.get("Status") in ("Success", "AlreadyStored"), answer
        return str(answer["ID"])

    def instances(self) -> list[str]:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.http_port}/instances", timeout=30
        ) as resp:
            return list(json.loads(resp.read()))


def start_orthanc(folder: Path) -> Iterator[Orthanc]:
    binary = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
    if not Path(binary).exists():
        pytest.fail("Orthanc is not installed (scripts/setup.sh --test installs orthanc)")
    folder.mkdir(parents=True, exist_ok=True)
    dicom_port, http_port, receiver_port = free_port(), free_port(), free_port()
    config = {
        "Name": "scorer-test-pacs",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "storage"),
        "HttpServerEnabled": True,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomServerEnabled": True,
        "DicomAet": "ORTHANC",
        "DicomPort": dicom_port,
        "DicomCheckCalledAet": False,
        "DicomCheckModalityHost": False,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "DicomModalities": {
            "scorer": {
                "AET": "SCORER",
                "Host": "127.0.0.1",
                "Port": receiver_port,
                "AllowEcho": True,
                "AllowFind": True,
                "AllowGet": True,
                "AllowMove": True,
                "AllowStore": True,
            }
        },
        "Plugins": [],
        "StableAge": 1,
    }
    (folder / "orthanc.json").write_text(json.dumps(config), encoding="utf-8")
    log = (folder / "orthanc.log").open("wb")
    proc = subprocess.Popen([binary, str(folder / "orthanc.json")], stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/system", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                text = (folder / "orthanc.log").read_text(errors="replace")[-3000:]
                pytest.fail(f"Orthanc did not start:\n{text}")
            time.sleep(0.2)
    try:
        yield Orthanc("ORTHANC", dicom_port, http_port, receiver_port, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
