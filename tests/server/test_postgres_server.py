"""The server over a real PostgreSQL (started by the tests on loopback): the demo made there,
``scorer server --db postgresql+psycopg://...`` as a real process, a workstation reading
through it; and what the workstation keeps afterwards holds nothing that opens the database
(no URL, no port, no key): the attack of issue 28 (the shared database login, used with psql)
has nothing to start from."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from scorer.cli.demo_server import local_server
from scorer.client.remote import RemoteWorkspace
from scorer.core.reads import AreaScore
from scorer.workspace import Conflict
from tests.pg import PgServer, pg_server  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.posix, pytest.mark.slow]


@pytest.fixture(scope="module")
def on_postgres(
    pg_server: PgServer,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, Path, dict[str, str], str, Path]]:
    from scorer.demo import repo_samples_dir, run_demo

    folder = tmp_path_factory.mktemp("pg-served")
    url = pg_server.new_database()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCORER_DATA_DIR", str(folder / "server-data"))
        mp.setenv("SCORER_CONFIG", str(folder / "none.toml"))
        mp.delenv("SCORER_DB", raising=False)
        made = run_demo(url, samples=repo_samples_dir(), say=lambda _t: None)
        with local_server(url, folder / "server.log") as server:
            yield server.url, server.cert, made.passwords, url, folder
    pg_server.drop_database(url)


def test_a_reader_works_through_the_server_on_postgresql(
    on_postgres: tuple[str, Path, dict[str, str], str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server_url, cert, passwords, db_url, _ = on_postgres
    station = tmp_path / "station"
    monkeypatch.setenv("SCORER_DATA_DIR", str(station))
    monkeypatch.setenv("SCORER_CONFIG", str(tmp_path / "none.toml"))
    ws = RemoteWorkspace.open(server_url, cafile=str(cert))
    try:
        a = ws.accounts.login("reader3", passwords["reader3"])
        b = ws.accounts.login("reader3", passwords["reader3"])
        row = ws.worklists.worklist(a, "DEMO-RA")[0]
        case = ws.reading.open_case(a, row.code)
        films = ws.images.case_images(a, row.code)
        assert all(Path(f.path).is_file() for fs in films.values() for f in fs)
        read = case.reads["A"]
        from scorer.core.methods import get_method

        area = get_method(ws.reading.get_read(a, read).method).areas[0].area
        ws.reading.set_scores(a, read, {area: AreaScore(1)})
        with pytest.raises(Conflict):
            ws.reading.set_scores(b, read, {area: AreaScore(3)}, expected={area: None})
        assert ws.reading.get_read(b, read).scores[area].score == 1
        for s in (a, b):
            ws.accounts.logout(s)
    finally:
        ws.close()
    # Nothing the workstation kept opens the database: no URL, no port, no audit key.
    port = db_url.split("@", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]
    kept = [p for p in station.rglob("*") if p.is_file()]
    assert kept  # the films and the pinned certificate, at least
    for p in kept:
        data = p.read_bytes()
        assert b"postgresql" not in data and f"127.0.0.1:{port}".encode() not in data, p
    assert not [p for p in kept if p.suffix in (".sqlite", ".db", ".key")]
    assert "SCORER_DB" not in os.environ
