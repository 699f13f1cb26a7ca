"""The workstation's client of the server (scorer.client) against the real ``scorer server``
process on loopback over the demo database: a reader logs in, opens a case of their worklist,
gets its films over HTTPS into an owner-only folder, scores, meets a conflict, and signs with a
password the server checks; the certificate is pinned by its fingerprint; a server that goes
away raises ServerUnavailable and nothing acknowledged is lost."""

from __future__ import annotations

import os
import platform
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pydicom
import pytest

from scorer.client.remote import RemoteWorkspace, ServerUnavailable
from scorer.client.trust import TrustError, der_fingerprint, pinned_path
from scorer.core.methods import Area
from scorer.core.reads import AreaScore
from scorer.workspace import (
    AuthError,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    ScorerError,
    Workspace,
)
from tests.server.test_over_the_wire import pinned, start, stop

pytestmark = [pytest.mark.posix, pytest.mark.slow]


@dataclass
class Served:
    url: str
    cert: Path
    db: str
    env: dict[str, str]
    passwords: dict[str, str]
    folder: Path
    proc: object


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from scorer.demo import repo_samples_dir, run_demo

    folder = tmp_path_factory.mktemp("client")
    env = dict(os.environ)
    env.update(SCORER_DATA_DIR=str(folder / "server-data"), SCORER_CONFIG=str(folder / "none.toml"))
    env.pop("SCORER_DB", None)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCORER_DATA_DIR", env["SCORER_DATA_DIR"])
        mp.setenv("SCORER_CONFIG", env["SCORER_CONFIG"])
        made = run_demo(
            str(folder / "demo.sqlite"), samples=repo_samples_dir(), say=lambda _t: None
        )
    proc, url, cert = start(str(folder / "demo.sqlite"), env)
    try:
        yield Served(url, cert, made.db, env, made.passwords, folder, proc)
    finally:
        rc, _out, err = stop(proc)  # type: ignore[arg-type]
        assert rc == 0, err[-2000:]


@pytest.fixture
def workstation(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RemoteWorkspace]:
    """A workstation of its own: its own data folder, nothing of the server's environment."""
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "station"))
    monkeypatch.setenv("SCORER_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.delenv("SCORER_DB", raising=False)
    ws = RemoteWorkspace.open(served.url, cafile=str(served.cert))
    try:
        yield ws
    finally:
        ws.close()


def _first_open_case(ws: RemoteWorkspace, s: object) -> str:
    rows = ws.worklists.worklist(s, "DEMO-RA")
    return next(r.code for r in rows if r.status != "signed")


def test_a_reader_reads_a_case_through_the_server(
    served: Served, workstation: RemoteWorkspace
) -> None:
    ws = workstation
    s = ws.accounts.login("reader3", served.passwords["reader3"])
    assert s.role == "reader" and not s.must_change_password
    code = _first_open_case(ws, s)
    case = ws.reading.open_case(s, code)
    films = ws.images.case_images(s, code)
    assert set(films) == set(case.reads)
    local = Path(os.environ["SCORER_DATA_DIR"])
    for letter, items in films.items():
        assert items, letter
        for film in items:
            path = Path(film.path)
            # The film is on this workstation, in its own folder, owner-only, and it is the
            # case's de-identified copy: no patient in it.
            assert local in path.parents and path.is_file()
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            ds = pydicom.dcmread(path)
            assert "DEMO" not in str(ds.get("PatientID", "")) + str(ds.get("PatientName", ""))
            assert ds.pixel_array.size > 0
    # Nothing of where the server keeps its files crossed the wire.
    raw = ws.connection.request(
        "POST", "/api/call/images.case_images", token=ws.token(s), body={"case_code": code}
    ).json()
    assert all(f["path"] == "" for fs in raw["result"].values() for f in fs)

    read = case.reads["A"]
    area = _areas(ws, s, read)[0]
    acks = ws.reading.set_scores(s, read, {area: AreaScore(1)})
    assert acks and acks[0].area == area
    view = ws.reading.get_read(s, read)
    assert view.scores[area].score == 1
    ws.accounts.logout(s)
    assert s.closed
    with pytest.raises(AuthError):
        ws.reading.get_read(s, read)


def test_a_log_in_through_the_server_records_the_workstation_and_its_address(
    served: Served, workstation: RemoteWorkspace
) -> None:
    """The client sends its computer's name at log-in, the server adds the address it called
    from; the monitor (over the server too) sees both on the session, and how it ended."""
    ws = workstation
    s = ws.accounts.login("reader3", served.passwords["reader3"])
    ws.accounts.logout(s)
    mona = ws.accounts.login("monitor", served.passwords["monitor"])
    rows = ws.oversight.reading_sessions(mona, "reader3")
    assert rows and all(isinstance(r.images, tuple) for r in rows)
    last = rows[-1]
    assert (last.workstation, last.address) == (platform.node(), "127.0.0.1")
    assert last.where() == f"{platform.node()} (127.0.0.1)"
    assert (last.end_kind, last.ended) == ("log-out", "log-out")


def _areas(ws: RemoteWorkspace, s: object, read: str) -> list[Area]:
    view = ws.reading.get_read(s, read)
    from scorer.core.methods import get_method

    return [d.area for d in get_method(view.method).areas]


def test_a_conflict_comes_back_with_the_current_value(
    served: Served, workstation: RemoteWorkspace
) -> None:
    ws = workstation
    a = ws.accounts.login("reader3", served.passwords["reader3"])
    b = ws.accounts.login("reader3", served.passwords["reader3"])
    code = _first_open_case(ws, a)
    read = ws.reading.open_case(a, code).reads["B"]
    area = _areas(ws, a, read)[3]
    ws.reading.set_scores(a, read, {area: AreaScore(2)})
    with pytest.raises(Conflict) as caught:
        ws.reading.set_scores(b, read, {area: AreaScore(0)}, expected={area: None})
    assert caught.value.current[area] == AreaScore(2)
    for s in (a, b):
        ws.accounts.logout(s)


def test_films_of_another_readers_case_are_refused_and_serving_is_recorded(
    served: Served, workstation: RemoteWorkspace
) -> None:
    ws = workstation
    s3 = ws.accounts.login("reader3", served.passwords["reader3"])
    s1 = ws.accounts.login("reader1", served.passwords["reader1"])
    code = _first_open_case(ws, s3)
    ws.reading.open_case(s3, code)
    films = ws.images.case_images(s3, code)
    name = films["A"][0].image
    with pytest.raises(NotFound):
        ws.connection.request("GET", f"/api/film/{code}/{name}", token=ws.token(s1))
    with pytest.raises(NotFound):
        ws.connection.request("GET", f"/api/film/{code}/NOT-A-FILM", token=ws.token(s3))
    with pytest.raises(AuthError):
        ws.connection.request("GET", f"/api/film/{code}/{name}")
    # Fetched again only when it changed: a second listing sends nothing new.
    before = _served_events(served)
    ws.images.case_images(s3, code)
    assert _served_events(served) == before
    assert before >= sum(len(v) for v in films.values())
    for s in (s1, s3):
        ws.accounts.logout(s)


def _served_events(served: Served) -> int:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCORER_DATA_DIR", served.env["SCORER_DATA_DIR"])
        mp.setenv("SCORER_CONFIG", served.env["SCORER_CONFIG"])
        ws = Workspace.open(served.db)
        try:
            admin = ws.accounts.login("admin", served.passwords["admin"])
            n = sum(e.kind == "image.served" for e in ws.oversight.events(admin))
            ws.accounts.logout(admin)
            return n
        finally:
            ws.close()


def test_signing_checks_the_password_on_the_server(
    served: Served, workstation: RemoteWorkspace
) -> None:
    ws = workstation
    s = ws.accounts.login("reader3", served.passwords["reader3"])
    code = _first_open_case(ws, s)
    case = ws.reading.open_case(s, code)
    for read in case.reads.values():
        ws.reading.set_scores(s, read, {a: AreaScore(0) for a in _areas(ws, s, read)})
    with pytest.raises(AuthError):
        ws.reading.sign_case(s, code, "not the password", username="reader3")
    signed = ws.reading.sign_case(s, code, served.passwords["reader3"], username="reader3")
    assert len(signed) == len(case.reads)
    assert {ws.reading.get_read(s, r).status for r in case.reads.values()} == {"signed"}
    assert s.signed_once  # the session's state follows the server's
    ws.accounts.logout(s)


def test_the_certificate_is_pinned_by_its_fingerprint(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "station"))
    fp = der_fingerprint(served.cert.read_bytes())
    # Not trusted: fails closed, with a message that says what to do.
    with pytest.raises(TrustError, match="fingerprint"):
        RemoteWorkspace.open(served.url)
    wrong = "AB:" * 31 + "CD"
    with pytest.raises(TrustError, match="not the"):
        RemoteWorkspace.open(served.url, fingerprint=wrong)
    assert not pinned_path(served.url).exists()
    ws = RemoteWorkspace.open(served.url, fingerprint=fp.lower().replace(":", ""))
    ws.close()
    assert stat.S_IMODE(pinned_path(served.url).stat().st_mode) == 0o600
    # Pinned from now on: no fingerprint needed.
    RemoteWorkspace.open(served.url).close()


def test_a_server_that_goes_away_raises_unavailable_and_loses_nothing(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second server process on the same database: stopped mid-case, the client's save
    raises ServerUnavailable (not acknowledged); started again, the save goes through and what
    was acknowledged before is there."""
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "station"))
    proc, url, cert = start(served.db.removeprefix("sqlite:///"), served.env)
    ws = RemoteWorkspace.open(url, cafile=str(cert))
    try:
        s = ws.accounts.login("reader3", served.passwords["reader3"])
        code = _first_open_case(ws, s)
        read = ws.reading.open_case(s, code).reads["C"]
        areas = _areas(ws, s, read)
        ws.reading.set_scores(s, read, {areas[5]: AreaScore(1)})
    finally:
        stop(proc)
    with pytest.raises(ServerUnavailable):
        ws.reading.set_scores(s, read, {areas[6]: AreaScore(1)})
    ws.close()
    # The main server sees what was acknowledged, and not what was not.
    other = RemoteWorkspace.open(served.url, cafile=str(served.cert))
    try:
        s2 = other.accounts.login("reader3", served.passwords["reader3"])
        view = other.reading.get_read(s2, read)
        assert view.scores[areas[5]].score == 1
        assert areas[6] not in view.scores or view.scores[areas[6]].score != 1
        other.accounts.logout(s2)
    finally:
        other.close()


def test_a_raw_client_without_trust_fails_closed(served: Served) -> None:
    with pytest.raises(httpx.ConnectError):
        httpx.get(served.url + "/health", timeout=5)
    assert httpx.get(served.url + "/health", verify=pinned(served.cert), timeout=5).json()["ok"]


def test_the_command_line_runs_through_the_server(served: Served, tmp_path: Path) -> None:
    """A workstation's commands with --server: the worklist as reader3 and the trials as
    coord, on a machine with no database (its data folder has no database file after)."""
    import subprocess
    import sys

    env = dict(served.env)
    env.update(SCORER_DATA_DIR=str(tmp_path / "station"), SCORER_CONFIG=str(tmp_path / "none"))
    common = ["--server", served.url, "--cacert", str(served.cert), "--password-stdin"]

    def scorer(*args: str, password: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scorer", *args, *common],
            input=password + "\n",
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    shown = scorer(
        "worklist",
        "show",
        "--trial",
        "DEMO-RA",
        "--user",
        "reader3",
        password=served.passwords["reader3"],
    )
    assert shown.returncode == 0, shown.stderr
    assert " of " in shown.stdout and "DEMO-1" not in shown.stdout
    listed = scorer("trial", "list", "--user", "coord", password=served.passwords["coord"])
    assert listed.returncode == 0 and "DEMO-RA" in listed.stdout, listed.stderr
    wrong = scorer("trial", "list", "--user", "coord", password="not-it")
    assert wrong.returncode == 1 and "wrong user ID or password" in wrong.stderr
    assert not [p for p in (tmp_path / "station").rglob("*") if p.suffix in (".sqlite", ".db")]
    both = subprocess.run(
        [
            sys.executable,
            "-m",
            "scorer",
            "trial",
            "list",
            "--db",
            "x.sqlite",
            "--server",
            served.url,
            "--user",
            "coord",
            "--password-stdin",
        ],
        input="x\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert both.returncode == 1 and "not both" in both.stderr


def test_an_import_uploads_the_files_and_reports_them_by_their_paths_here(
    served: Served, workstation: RemoteWorkspace, tmp_path: Path
) -> None:
    """A coordinator's import through the server: a folder (two demo films already in the
    trial, a CT that is no radiograph, a text file, a zip holding one more film) and a
    missing path; every file's outcome is reported by its path on this workstation, and the
    batch is gone from the server afterwards."""
    import shutil
    import zipfile

    from pydicom.data import get_testdata_file

    ws = workstation
    folder = tmp_path / "incoming"
    (folder / "sub").mkdir(parents=True)
    samples = Path(__file__).resolve().parents[2] / "sample_images" / "DEMO-101"
    shutil.copy(samples / "W0-hands.dcm", folder / "a.dcm")
    shutil.copy(samples / "W24-feet.dcm", folder / "sub" / "b.dcm")
    shutil.copy(str(get_testdata_file("CT_small.dcm", download=False)), folder / "ct.dcm")
    (folder / "notes.txt").write_text("not an image")
    (folder / "passwd.dcm").symlink_to("/etc/passwd")  # leads out of the folder
    with zipfile.ZipFile(folder / "more.zip", "w") as z:
        z.write(samples / "W52-hands.dcm", "inner/c.dcm")
    missing = tmp_path / "nowhere"
    coord = ws.accounts.login("coord", served.passwords["coord"])
    seen: list[tuple[int, int, str]] = []
    report = ws.images.import_images(
        coord, "DEMO-RA", [folder, missing], None, lambda *a: seen.append(a), workers=1
    )
    by_file = {f.file: f for f in report.files}
    assert by_file[str(folder / "a.dcm")].status == "duplicate"
    assert by_file[str(folder / "sub" / "b.dcm")].status == "duplicate"
    assert by_file[f"{folder / 'more.zip'}!inner/c.dcm"].status == "duplicate"
    assert by_file[str(folder / "ct.dcm")].status == "refused"
    assert by_file[str(folder / "notes.txt")].status == "refused"
    assert by_file[str(missing)].status == "refused"
    assert "no such file" in by_file[str(missing)].reason
    link = by_file[str(folder / "passwd.dcm")]
    assert (link.status, link.reason) == ("skipped", "a link to outside the folder")
    assert seen and seen[-1][0] == seen[-1][1]
    uploads = Path(served.env["SCORER_DATA_DIR"]) / "uploads"
    assert uploads.is_dir() and not [p for p in uploads.iterdir() if p.is_dir()]

    # A reader may not upload; a batch is its session's alone; names stay inside it.
    reader = ws.accounts.login("reader3", served.passwords["reader3"])
    with pytest.raises(PermissionDenied):
        ws.connection.request("POST", "/api/upload", token=ws.token(reader), body={})
    batch = ws.connection.request("POST", "/api/upload", token=ws.token(coord), body={})
    name = batch.json()["batch"]
    other = ws.accounts.login("coord", served.passwords["coord"])
    with pytest.raises(NotFound):
        ws.connection.request("PUT", f"/api/upload/{name}/0/x.dcm", token=ws.token(other))
    for bad in ("0/../../x.dcm", "x.dcm", "0/a\\b.dcm", "0/%2e%2e/y.dcm", "0/sub/%2E%2E/z"):
        with pytest.raises(ScorerError):
            ws.connection.request("PUT", f"/api/upload/{name}/{bad}", token=ws.token(coord))
    inside = uploads / name
    assert [p.name for p in inside.rglob("*")] == [".owner"]
    assert [p.name for p in uploads.iterdir()] == [name]
    # Names the file system cannot take are refused as such (not a 500).
    ws.connection.request("PUT", f"/api/upload/{name}/0/a.dcm", token=ws.token(coord))
    for bad in ("0/a.dcm/b.dcm", "0/" + "a" * 300 + ".dcm"):
        with pytest.raises(ScorerError, match="cannot take|is a file"):
            ws.connection.request("PUT", f"/api/upload/{name}/{bad}", token=ws.token(coord))
    assert stat.S_IMODE((inside / ".owner").stat().st_mode) == 0o600
    # A batch given up is removed at once.
    ws.connection.request("DELETE", f"/api/upload/{name}", token=ws.token(coord))
    assert not inside.exists()
    for s in (coord, reader, other):
        ws.accounts.logout(s)


def test_reports_and_files_come_back_whole(
    served: Served, workstation: RemoteWorkspace, tmp_path: Path
) -> None:
    """The agreement report (a document whose figures are drawn on the server) is written here
    in every format; an image's PNG made on the server lands at the path given here."""
    import json

    from PIL import Image

    from scorer.reports.document import write

    ws = workstation
    coord = ws.accounts.login("coord", served.passwords["coord"])
    doc = ws.exchange.agreement_report(coord, "DEMO-RA")
    assert doc.figures() and doc.tables()
    for suffix in ("html", "pdf", "json", "xlsx"):
        out = write(doc, tmp_path / f"agreement.{suffix}")
        assert out.stat().st_size > 1000 and stat.S_IMODE(out.stat().st_mode) == 0o600
    body = json.loads((tmp_path / "agreement.json").read_text())
    assert body["title"] == doc.title and set(body["tables"]) == {t.name for t in doc.tables()}
    assert (tmp_path / "agreement.pdf").read_bytes().startswith(b"%PDF")
    image = ws.images.list_images(coord, "DEMO-RA")[0].code
    png = ws.images.export_image_png(coord, image, tmp_path / "film.png", None, 512)
    assert png == tmp_path / "film.png"
    with Image.open(png) as shown:
        assert max(shown.size) <= 512 and shown.format == "PNG"
    ws.accounts.logout(coord)
    # The server's own host keeps its backups: not offered over the wire.
    admin = ws.accounts.login("admin", served.passwords["admin"])
    with pytest.raises(InvalidInput, match="server's host"):
        ws.database.backup(admin, tmp_path / "backup.zip")
    ws.accounts.logout(admin)


def test_the_servers_receiver_is_started_and_stopped_from_a_workstation(
    served: Served, workstation: RemoteWorkspace
) -> None:
    """The desk's Receive page over the server: the coordinator starts the server's DICOM
    receiver, dcmtk's storescu sends it a film, what arrived is reported, and it stops."""
    import shutil
    import subprocess
    import time

    storescu = shutil.which("storescu")
    assert storescu, "dcmtk's storescu (Debian package dcmtk) is needed"
    ws = workstation
    # The module's many log-ins from one address succeeded: they do not count against it (a
    # reader other than reader3, whose own account's limit the module's log-ins may meet).
    coord = ws.accounts.login("coord", served.passwords["coord"])
    reader = ws.accounts.login("reader1", served.passwords["reader1"])
    with pytest.raises(PermissionDenied):
        ws.receiver(reader, "DEMO-RA", "start", aet="SCORER", port=0, host="127.0.0.1")
    state = ws.receiver(
        coord, "DEMO-RA", "start", aet="SCORER", port=0, host="127.0.0.1", allow=["TESTSCU"]
    )
    try:
        assert state["running"] and state["port"] > 0 and "TESTSCU" in state["allowed"]
        with pytest.raises(InvalidInput, match="already receives"):
            ws.receiver(coord, "DEMO-RA", "start", port=0, host="127.0.0.1", allow=["TESTSCU"])
        film = Path(__file__).resolve().parents[2] / "sample_images" / "DEMO-101" / "W0-feet.dcm"
        sent = subprocess.run(
            [storescu, "-xw", "-aet", "TESTSCU", "-aec", "SCORER", "127.0.0.1", str(state["port"]),
             str(film)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        deadline = time.monotonic() + 30
        arrivals: list[dict[str, object]] = []
        while not arrivals and time.monotonic() < deadline:
            arrivals = ws.receiver(coord, "DEMO-RA", "status", since=0)["arrivals"]
            time.sleep(0.2)
        assert [a["status"] for a in arrivals] == ["duplicate"]
        assert arrivals[0]["calling_aet"] == "TESTSCU"
        later = ws.receiver(coord, "DEMO-RA", "status", since=1)
        assert later["arrivals"] == [] and later["count"] == 1
    finally:
        stopped = ws.receiver(coord, "DEMO-RA", "stop")
    assert not stopped["running"]
    assert ws.receiver(coord, "DEMO-RA", "status")["running"] is False
    for s in (coord, reader):
        ws.accounts.logout(s)
