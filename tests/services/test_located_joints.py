"""Joints found on their own (issue 32): the locator runs at import and its sure joints are
placed, registration carries positions across a patient's visits, a correction by hand is
proposed on the other visits, disagreements and unsure joints are listed for QC, radiographs
that are not hands or feet are left without positions, and all of it is audited."""

from __future__ import annotations

import math
import shutil
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.data import get_testdata_file

from scorer.core.joints import JointPoint
from scorer.demo import TRIAL, read_joint_positions
from scorer.imaging.visit_registration import film_pixels
from scorer.services.joint_registration import DISAGREE_MM
from scorer.store import repository as repo
from scorer.workspace import NotFound, PermissionDenied
from tests.services.small_demo import small_demo

Key = tuple[str, str]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    yield from small_demo(tmp_path_factory.mktemp("located"))


def _coord(demo: dict[str, Any]) -> Any:
    return demo["ws"].accounts.login("coord", demo["pw"]["coord"])


def _films(demo: dict[str, Any]) -> list[dict[str, Any]]:
    """Every imported film: code, patient code, visit, pixel size, true positions, and the
    located joints and positions kept for it."""
    ws = demo["ws"]
    coord = _coord(demo)
    manifest = (demo["samples"] / "manifest.csv").read_text(encoding="utf-8").splitlines()[1:]
    rows = {ln.split(",")[0]: ln.split(",") for ln in manifest}
    truth_by_key: dict[tuple[str, str, frozenset[str]], dict[Key, tuple[float, float]]] = {}
    for file, points in read_joint_positions(demo["samples"] / "joint-positions.csv").items():
        _f, patient, visit, _date, regions = rows[file]
        truth_by_key[(patient, visit, frozenset(regions.split()))] = {
            (r, j): (x, y) for r, j, x, y in points
        }
    real = {p.code: p.real_id for p in ws.trials.list_patients(coord, TRIAL)}
    out = []
    for img in ws.images.list_images(coord, TRIAL):
        with ws.store.read() as db:
            row = repo.image_by_code(db, img.code)
            assert row is not None
            path = ws.store.location.image_file(row.reader_path)
        joints = ws.joints.image_joints(coord, img.code)
        out.append(
            {
                "code": img.code,
                "patient": img.patient,
                "visit": img.visit,
                "mm": film_pixels(path).pixel_mm,
                "truth": truth_by_key[(real[img.patient], img.visit, frozenset(img.regions))],
                "joints": joints,
                "placed": {
                    (p.region, p.joint): p for p in ws.images.joint_positions(coord, img.code)
                },
            }
        )
    return out


def _mm(film: dict[str, Any], key: Key, xy: tuple[float, float]) -> float:
    tx, ty = film["truth"][key]
    return math.hypot(xy[0] - tx, xy[1] - ty) * film["mm"]


def test_the_import_locates_every_film_and_places_only_the_sure_joints(
    demo: dict[str, Any],
) -> None:
    films = _films(demo)
    assert len(films) == 12
    errors = []
    for film in films:
        check = film["joints"].check
        assert check.located in ("hand", "foot"), check
        regions = set(check.regions)
        assert {j.region for j in film["joints"].located} == regions
        for j in film["joints"].located:
            placed = film["placed"][(j.region, j.joint)]  # the demo fills what is left
            if j.sure:
                assert placed.source == "locator" and (placed.x, placed.y) == (j.x, j.y)
                errors.append(_mm(film, (j.region, j.joint), (j.x, j.y)))
            else:
                # Registration at import started from the locator's positions: it proposes,
                # never places (a locator's error is carried only as a QC signal).
                assert placed.source == "truth", placed
        assert check.sure == sum(j.sure for j in film["joints"].located)
        assert not check.unplaced  # every joint has a position once the demo is set up
    assert len(errors) > 0.8 * sum(len(f["truth"]) for f in films)  # most joints are sure
    assert statistics.median(errors) < 1.5 and max(errors) < 6.0, sorted(errors)[-5:]


def test_registration_proposes_each_patients_positions_on_their_other_visits(
    demo: dict[str, Any],
) -> None:
    films = _films(demo)
    proposed = []
    for film in films:
        for region, joint, x, y, quality, sure in film["joints"].proposals:
            assert 0.0 <= quality <= 1.0
            if sure:
                proposed.append(_mm(film, (region, joint), (x, y)))
    # Each patient has a reference film per body part; the other two visits' films get
    # proposals: 2 patients x 2 parts x 2 films.
    assert sum(1 for f in films if f["joints"].proposals) == 8
    assert statistics.median(proposed) < 1.5, statistics.median(proposed)


def test_a_correction_by_hand_is_proposed_on_the_other_visits_and_disagreements_listed(
    demo: dict[str, Any],
) -> None:
    ws = demo["ws"]
    coord = _coord(demo)
    films = _films(demo)
    film = next(f for f in films if f["patient"] and ("RH", "MCP3") in f["truth"])
    others = [f for f in films if f["patient"] == film["patient"] and ("RH", "MCP3") in f["truth"]]
    others = [f for f in others if f["code"] != film["code"]]
    tx, ty = film["truth"][("RH", "MCP3")]
    shift = 10.0 / film["mm"]  # 10 mm to the side: a mistake the other visits disagree with
    ws.images.place_image_joints(
        coord, film["code"], [JointPoint("RH", "MCP3", tx + shift, ty, "dragged")]
    )
    summary = ws.joints.register_visits(coord, TRIAL, film["patient"])
    assert summary.groups == 2 and not summary.problems, summary  # hands and feet
    for other in others:
        check = ws.joints.image_joints(coord, other["code"]).check
        found = [d for d in check.disagreements if (d.region, d.joint) == ("RH", "MCP3")]
        assert found and abs(found[0].distance_mm - 10.0) < 3.0, check.disagreements
        assert found[0].reference == film["code"]
        assert other["code"] in {
            c.image for c in ws.joints.joint_checks(coord, TRIAL, to_check=True)
        }
    # Put right, the disagreement goes.
    ws.images.place_image_joints(coord, film["code"], [JointPoint("RH", "MCP3", tx, ty, "dragged")])
    ws.joints.register_visits(coord, TRIAL, film["patient"])
    for other in others:
        check = ws.joints.image_joints(coord, other["code"]).check
        assert not [d for d in check.disagreements if (d.region, d.joint) == ("RH", "MCP3")]
        assert all(d.distance_mm > DISAGREE_MM for d in check.disagreements)
    result = ws.verify()
    assert result.ok, result.errors[:3]
    with ws.store.read() as db:
        audited = [r.entity_id for r in repo.audit_rows(db) if r.action == "image.registered"]
    # At import (a part's films at a time) and twice here, each naming the reference.
    assert film["code"] in audited[-2:], audited[-2:]


def test_only_the_coordinator_sees_and_registers_and_bad_names_are_refused(
    demo: dict[str, Any],
) -> None:
    ws = demo["ws"]
    reader = ws.accounts.login("reader1", demo["pw"]["reader1"])
    with pytest.raises(PermissionDenied):
        ws.joints.joint_checks(reader, TRIAL)
    with pytest.raises(PermissionDenied):
        ws.joints.register_visits(reader, TRIAL)
    coord = _coord(demo)
    with pytest.raises(NotFound, match="no patient"):
        ws.joints.register_visits(coord, TRIAL, "NOBODY")


def test_radiographs_that_are_not_hands_or_feet_are_left_without_positions(
    demo: dict[str, Any], tmp_path: Path
) -> None:
    ws = demo["ws"]
    coord = _coord(demo)
    ws.trials.create_trial(coord, "CR1", "CRs", visits=[("W0", 0.0)])
    src = tmp_path / "in"
    src.mkdir()
    for name in ("RG3_UNCR.dcm", "RG1_UNCR.dcm", "RG3_J2KR.dcm"):
        shutil.copy(get_testdata_file(name, download=False), src / name)
    report = ws.images.import_images(coord, "CR1", [src])
    assert report.count("imported") == 3
    for check in ws.joints.joint_checks(coord, "CR1"):
        assert check.located == "other", check
        assert check.reason and not check.unplaced and check.sure == 0
        assert ws.images.joint_positions(coord, check.image) == ()


def test_the_desk_and_registration_share_the_disagreement_threshold_and_start_up_light() -> None:
    import subprocess
    import sys

    from scorer.imaging.registration import DISAGREE_MM as REGISTRATION_MM

    assert DISAGREE_MM == REGISTRATION_MM
    # Opening a workspace loads neither the locator's nor registration's image libraries.
    probe = (
        "import sys, scorer.workspace; "
        "print(sorted(m for m in ('skimage', 'scipy.signal', 'scorer.imaging.registration', "
        "'scorer.imaging.locator') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_a_film_with_a_spacing_no_hand_film_has_is_imported_and_listed_to_check(
    demo: dict[str, Any], tmp_path: Path
) -> None:
    """1 mm is a common default spacing: a 1000-pixel hands film would be a metre wide. The
    locator says so at once (it used to search for a minute, and the import's time limit then
    refused a valid film); the film is imported, and its joints are to place."""
    import pydicom

    ws = demo["ws"]
    coord = _coord(demo)
    ws.trials.create_trial(coord, "SP1", "Spacing", visits=[("W0", 0.0)])
    src = tmp_path / "in"
    src.mkdir()
    first = next(demo["samples"].glob("DEMO-101/W0-hands.dcm"))
    ds = pydicom.dcmread(first)
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        if keyword in ds:
            setattr(ds, keyword, [1.0, 1.0])
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(src / "hands.dcm")
    manifest = "file,patient,visit,date,regions\nhands.dcm,SP-1,W0,2023-01-12,LH RH\n"
    (src / "manifest.csv").write_text(manifest, encoding="utf-8")
    from scorer.imaging.manifest import parse_manifest

    report = ws.images.import_images(coord, "SP1", [src], parse_manifest(manifest))
    assert report.count("imported") == 1, report.to_dict()
    (check,) = ws.joints.joint_checks(coord, "SP1")
    assert check.located == "other" and "spacing is probably wrong" in check.reason, check
    assert len(check.unplaced) == 52 and check.to_check
    assert "no hand or foot found" in check.summary()


def test_a_reassigned_film_loses_the_proposals_made_for_its_old_patient(
    demo: dict[str, Any],
) -> None:
    ws = demo["ws"]
    coord = _coord(demo)
    films = _films(demo)
    proposed = next(f for f in films if f["joints"].proposals)
    other_patient = next(f["patient"] for f in films if f["patient"] != proposed["patient"])
    ws.images.reassign_image(coord, proposed["code"], "test: wrong patient", patient=other_patient)
    try:
        assert ws.joints.image_joints(coord, proposed["code"]).proposals == ()
        with ws.store.read() as db:
            img = repo.image_by_code(db, proposed["code"])
            assert img is not None
            rows = repo.proposals_of(
                db, [i.id for i in repo.images_of(db, repo.trial_by_id(db, img.trial_id))]
            )
            assert not any(p.reference_id == img.id for ps in rows.values() for p in ps)
    finally:
        ws.images.reassign_image(
            coord, proposed["code"], "test: put back", patient=proposed["patient"]
        )
    assert ws.verify().ok
