"""Joint positions through the services (issue 29, item 1): every joint of the demo's films has
a position (the locator's, registration's or the true one), a reader's case carries them, a
reader and the coordinator place joints, checked, audited, and blinded."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from scorer.core.joints import JointPoint
from scorer.demo import TRIAL, read_joint_positions, run_demo
from scorer.store import repository as repo
from scorer.workspace import InvalidInput, NotFound, PermissionDenied, Workspace
from tests.services.small_demo import small_demo, two_patient_samples


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    yield from small_demo(tmp_path_factory.mktemp("joints"))


def _login(demo: dict[str, Any], user: str) -> Any:
    return demo["ws"].accounts.login(user, demo["pw"][user])


def _truth(demo: dict[str, Any]) -> dict[tuple[str, str, frozenset[str]], set[JointPoint]]:
    """The CSV's points by (patient, visit, regions) of their film."""
    out = {}
    manifest = (demo["samples"] / "manifest.csv").read_text(encoding="utf-8").splitlines()[1:]
    rows = {ln.split(",")[0]: ln.split(",") for ln in manifest}
    for file, points in read_joint_positions(demo["samples"] / "joint-positions.csv").items():
        _f, patient, visit, _date, regions = rows[file]
        key = (patient, visit, frozenset(regions.split()))
        out[key] = {JointPoint(r, j, x, y, "truth") for r, j, x, y in points}
    return out


def _reader_case(demo: dict[str, Any], reader: str) -> tuple[Any, str, dict[str, Any]]:
    s = _login(demo, reader)
    row = demo["ws"].worklists.worklist(s, TRIAL)[0]
    return s, row.code, demo["ws"].images.case_images(s, row.code)


def test_every_joint_of_the_demo_has_a_position_and_a_readers_case_carries_them(
    demo: dict[str, Any],
) -> None:
    """The locator places what it is sure of at import (issue 32), registration what another
    visit's film gives, and the demo the true position of anything left; each within a few
    millimetres of the truth."""
    ws = demo["ws"]
    coord = _login(demo, "coord")
    truth = _truth(demo)
    real = {p.code: p.real_id for p in ws.trials.list_patients(coord, TRIAL)}
    images = ws.images.list_images(coord, TRIAL)
    assert len(images) == 2 * 3 * 2
    by_film = {}
    sources: set[str] = set()
    for img in images:
        placed = {(p.region, p.joint): p for p in ws.images.joint_positions(coord, img.code)}
        true = {
            (p.region, p.joint): p
            for p in truth[(real[img.patient], img.visit, frozenset(img.regions))]
        }
        assert set(placed) == set(true)
        for key, p in placed.items():
            sources.add(p.source)
            # Demo films have 0.2 to 0.3 mm pixels: 20 pixels is 4 to 6 mm.
            assert math.hypot(p.x - true[key].x, p.y - true[key].y) < 20, (key, p, true[key])
        by_film[img.code] = set(placed.values())
    assert "locator" in sources and sources <= {"locator", "registered", "truth"}
    # Every film of a reader's case carries its film's positions.
    wanted = list(by_film.values())
    for reader in ("reader1", "reader3"):
        _s, _code, films = _reader_case(demo, reader)
        shown = [f for letter in films for f in films[letter]]
        assert len(shown) == 6
        for film in shown:
            assert film.joints and set(film.joints) in wanted
            assert {p.region for p in film.joints} == set(film.regions)


def test_a_reader_places_joints_on_a_film_of_their_own_case(demo: dict[str, Any]) -> None:
    ws = demo["ws"]
    s, code, films = _reader_case(demo, "reader3")
    n, film = next((n, f) for n, f in enumerate(films["A"]) if "RH" in f.regions)
    region = "RH"
    before = {(p.region, p.joint): p for p in film.joints}
    moved = [JointPoint(region, "MCP2", 100.5, 200.25, "dragged")]
    assert ws.reading.place_joints(s, code, film.image, moved) == 1
    after = {(p.region, p.joint): p for p in ws.images.case_images(s, code)["A"][n].joints}
    assert after[(region, "MCP2")] == moved[0]
    del after[(region, "MCP2")], before[(region, "MCP2")]
    assert after == before  # the others stay
    with ws.store.read() as db:
        image_codes = {i.code for i in repo.images_of(db, repo.trial_by_code(db, TRIAL))}
    # One event for the call, on the case; the film by its name in the case, nothing else.
    rows = _events(ws, "case.joints")
    assert rows and rows[-1].entity == "case" and rows[-1].entity_id == code
    new = json.loads(rows[-1].new)
    assert new == {"film": film.image, "points": 1, "regions": [region], "sources": ["dragged"]}
    assert not any(c in rows[-1].new for c in image_codes)
    assert not any(v in rows[-1].new for v in ("W0", "W24", "W52"))


def _events(ws: Workspace, action: str) -> list[SimpleNamespace]:
    """The trail's events of an action: entity, entity id and new value."""
    with ws.store.read() as db:
        return [
            SimpleNamespace(entity=e.entity, entity_id=e.entity_id, new=e.new)
            for e in repo.audit_rows(db)
            if e.action == action
        ]


def test_a_reader_cannot_place_on_another_readers_case_or_a_film_not_in_the_case(
    demo: dict[str, Any],
) -> None:
    ws = demo["ws"]
    _s1, code1, films1 = _reader_case(demo, "reader1")
    s3, code3, _films3 = _reader_case(demo, "reader3")
    point = [JointPoint("RH", "MCP2", 10.0, 10.0, "dragged")]
    with pytest.raises(NotFound, match="no such case"):
        ws.reading.place_joints(s3, code1, films1["A"][0].image, point)
    with pytest.raises(NotFound, match="no film 'not-a-film' in this case"):
        ws.reading.place_joints(s3, code3, "not-a-film", point)
    # A film of reader1's case is not a film of reader3's, even of the same patient.
    with pytest.raises(NotFound):
        ws.reading.place_joints(s3, code3, films1["A"][0].image, point)
    coord = _login(demo, "coord")
    image = ws.images.list_images(coord, TRIAL)[0].code
    with pytest.raises(PermissionDenied):
        ws.images.place_image_joints(s3, image, point)
    with pytest.raises(PermissionDenied):
        ws.images.joint_positions(s3, image)


BAD: list[tuple[list[JointPoint], str]] = [
    ([], "no joint positions given"),
    ([JointPoint("LF", "MTP1", 10.0, 10.0, "fit")], "does not show 'LF'"),
    ([JointPoint("RH", "MTP1", 10.0, 10.0, "fit")], "'MTP1' is not a joint of RH"),
    ([JointPoint("RH", "MCP2", 1e6, 10.0, "fit")], "x 1e\\+06 is off the film"),
    ([JointPoint("RH", "MCP2", 10.0, -3.0, "fit")], "y -3 is off the film"),
    ([JointPoint("RH", "MCP2", math.nan, 10.0, "fit")], "finite number"),
    ([JointPoint("RH", "MCP2", 10**400, 10.0, "fit")], "finite number of pixels, not 1000"),
    ([JointPoint("RH", "MCP2", 10.0, 10.0, "guessed")], "unknown source 'guessed'"),
    (
        [JointPoint("RH", "MCP2", 10.0, 10.0, "fit"), JointPoint("RH", "MCP2", 11.0, 9.0, "fit")],
        "RH MCP2 is given twice",
    ),
    ([JointPoint("RH", "MCP2", "10", 10.0, "fit")], "must be a number"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("points", "message"), BAD)
def test_bad_points_are_refused_and_nothing_is_placed(
    demo: dict[str, Any], points: list[JointPoint], message: str
) -> None:
    ws = demo["ws"]
    coord = _login(demo, "coord")
    hands = next(i for i in ws.images.list_images(coord, TRIAL) if "RH" in i.regions)
    before = ws.images.joint_positions(coord, hands.code)
    with pytest.raises(InvalidInput, match=message):
        ws.images.place_image_joints(coord, hands.code, points)
    s, code, films = _reader_case(demo, "reader3")
    film = next(f for letter in films for f in films[letter] if "RH" in f.regions)
    with pytest.raises(InvalidInput, match=message):
        ws.reading.place_joints(s, code, film.image, points)
    assert ws.images.joint_positions(coord, hands.code) == before


def test_the_coordinator_places_and_reads_back_joints(demo: dict[str, Any]) -> None:
    ws = demo["ws"]
    coord = _login(demo, "coord")
    feet = next(i for i in ws.images.list_images(coord, TRIAL) if "LF" in i.regions)
    points = [JointPoint("LF", "MTP1", 300.0, 400.0, "fit"), JointPoint("RF", "IP1", 5, 6, "fit")]
    assert ws.images.place_image_joints(coord, feet.code, points) == 2
    placed = {(p.region, p.joint): p for p in ws.images.joint_positions(coord, feet.code)}
    assert placed[("LF", "MTP1")] == points[0]
    assert placed[("RF", "IP1")] == JointPoint("RF", "IP1", 5.0, 6.0, "fit")
    assert len(placed) == 12 and placed[("LF", "MTP2")].source in ("locator", "registered", "truth")
    with pytest.raises(NotFound, match="no image 'NOPE'"):
        ws.images.place_image_joints(coord, "NOPE", points)


@pytest.mark.parametrize("source", ["truth", "locator"])
def test_a_reader_cannot_claim_the_truth_or_the_locator(demo: dict[str, Any], source: str) -> None:
    ws = demo["ws"]
    s, code, films = _reader_case(demo, "reader3")
    film = next(f for letter in films for f in films[letter] if "RH" in f.regions)
    before = ws.images.case_images(s, code)
    with pytest.raises(
        InvalidInput, match=f"a reader places joints as fit or dragged, not {source}"
    ):
        ws.reading.place_joints(s, code, film.image, [JointPoint("RH", "MCP2", 10.0, 10.0, source)])
    assert ws.images.case_images(s, code) == before


def test_a_demo_made_before_joint_positions_gets_them_when_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upgraded demo (its films without positions) is given the true ones by the next
    ``scorer demo``, which otherwise reuses it as it is."""
    samples = two_patient_samples(tmp_path / "samples")
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SCORER_CONFIG", str(tmp_path / "no-site-config.toml"))
    monkeypatch.delenv("SCORER_DB", raising=False)
    db = str(tmp_path / "demo.sqlite")
    first = run_demo(db, samples=samples, say=lambda _t: None)
    ws = Workspace.open(first.db)
    try:
        coord = ws.accounts.login("coord", first.passwords["coord"])
        images = ws.images.list_images(coord, TRIAL)
        placed = {i.code: ws.images.joint_positions(coord, i.code) for i in images}
    finally:
        ws.close()
    with sqlite3.connect(tmp_path / "demo.sqlite") as raw:  # as a demo made before 0010
        raw.execute("DELETE FROM joint_positions")
    said: list[str] = []
    again = run_demo(db, samples=samples, say=said.append)
    assert not again.created
    assert any("placing the true ones" in line for line in said), said
    ws = Workspace.open(again.db)
    try:
        coord = ws.accounts.login("coord", first.passwords["coord"])
        again_placed = {i.code: ws.images.joint_positions(coord, i.code) for i in images}
    finally:
        ws.close()
    # Every joint placed again, now at its true position (the import, and its locator, ran
    # before): the same joints as the first set-up placed.
    assert {c: {(p.region, p.joint) for p in ps} for c, ps in again_placed.items()} == {
        c: {(p.region, p.joint) for p in ps} for c, ps in placed.items()
    }
    assert {p.source for ps in again_placed.values() for p in ps} == {"truth"}


def test_a_region_taken_off_an_image_takes_its_joint_positions(demo: dict[str, Any]) -> None:
    """A feet film reassigned to the left foot only keeps no right-foot joints (they would be
    drawn, and every later correction naming one refused); the left foot's stay."""
    ws = demo["ws"]
    coord = _login(demo, "coord")
    feet = next(i for i in ws.images.list_images(coord, TRIAL) if set(i.regions) == {"LF", "RF"})
    before = ws.images.joint_positions(coord, feet.code)
    assert {p.region for p in before} == {"LF", "RF"}
    ws.images.reassign_image(coord, feet.code, "side marker read wrongly", regions=["LF"])
    after = ws.images.joint_positions(coord, feet.code)
    assert after == tuple(p for p in before if p.region == "LF")
    placed = ws.images.place_image_joints(
        coord, feet.code, [JointPoint("LF", "MTP2", 100.0, 120.0, "dragged")]
    )
    assert placed == 1
    assert ws.verify().ok
    # Put back as it was, for the module's other tests (and every position as the demo's).
    ws.images.reassign_image(coord, feet.code, "put back", regions=["LF", "RF"])
    ws.images.place_image_joints(coord, feet.code, list(before))
    assert ws.images.joint_positions(coord, feet.code) == before
