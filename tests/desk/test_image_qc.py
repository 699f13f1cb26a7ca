"""Image QC on imported films: a reassigned image moves to the right case for every reader;
masked pixels are black in what readers see and untouched in the original; a region without
an image is not assessable for every reader, now and for reads started later."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from PIL import Image
from sqlalchemy import select

from scorer.gui.sample_case import SampleReading, build_sample_workspace
from scorer.imaging.delivery import film_name
from scorer.services.images import RegionMarked, case_film_key
from scorer.store.schema import Image as ImageRow
from scorer.workspace import InvalidInput, Workspace

COORDINATOR = ("cora", "Willow-Compass-2024")


@pytest.fixture
def sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SampleReading]:
    monkeypatch.setenv("SCORER_DATA_DIR", str(tmp_path / "data"))
    s = build_sample_workspace(tmp_path / "trial", patients=2, pixel_mm=1.0)
    yield s
    s.workspace.close()


def second_reader(ws: Workspace, coordinator: object, trial: str) -> object:
    admin = ws.accounts.login("ada", "Sunflower-Meadow-7")
    ws.accounts.add_user(admin, "ravi", "Ravi Reader", "reader", "Temporary-pass-9")
    ravi = ws.accounts.login("ravi", "Temporary-pass-9")
    ws.accounts.change_password(ravi, "Temporary-pass-9", "Harbour-Lantern-2024")
    ws.worklists.assign_reader(coordinator, trial, "ravi")
    ws.worklists.generate_worklists(coordinator, trial)
    return ravi


def cases_by_patient(ws: Workspace, coordinator: object, trial: str, reader: str) -> dict:
    return {r.patient: r for r in ws.worklists.worklist(coordinator, trial, reader)}


def images_of(ws: Workspace, s: object, case: Any) -> dict[str, set[str]]:
    """Visit label -> image codes the reader gets for that visit of the case (a film's name
    in a case is derived from the case and the image under the workstation's key)."""
    got = ws.images.case_images(s, case.code)
    with ws.store.read() as db:
        codes = list(db.scalars(select(ImageRow.code)))
    image_of = {film_name(ws.store.key, case.code, code): code for code in codes}
    return {
        label: {image_of[img.image] for img in got[letter]}
        for letter, label in zip("ABC", case.visits, strict=False)
    }


def test_a_reassigned_image_moves_to_the_right_case_for_every_reader(
    sample: SampleReading,
) -> None:
    ws, trial = sample.workspace, sample.trial
    coord = ws.accounts.login(*COORDINATOR)
    ravi = second_reader(ws, coord, trial)
    readers = {"rita": sample.session, "ravi": ravi}
    images = ws.images.list_images(coord, trial)
    patients = sorted({i.patient for i in images})
    a, b = patients
    moving = next(i for i in images if i.patient == a and i.visit == "W0" and "LH" in i.regions)
    for name, s in readers.items():
        case_a = cases_by_patient(ws, coord, trial, name)[a]
        assert moving.code in images_of(ws, s, case_a)["W0"]
    with pytest.raises(InvalidInput, match="reason"):
        ws.images.reassign_image(coord, moving.code, " ", patient=b)
    new = ws.images.reassign_image(
        coord, moving.code, "film labelled for the wrong subject", patient=b, visit="W24"
    )
    assert (new.patient, new.visit) == (b, "W24")
    for name, s in readers.items():
        cases = cases_by_patient(ws, coord, trial, name)
        assert moving.code not in set().union(*images_of(ws, s, cases[a]).values())
        assert moving.code in images_of(ws, s, cases[b])["W24"]
        assert moving.code not in images_of(ws, s, cases[b])["W0"]
    (row,) = [r for r in ws.oversight.audit_trail(coord) if r.action == "image.reassign"]
    assert row.reason == "film labelled for the wrong subject"
    assert f'"patient": "{a}"' in row.old or f'"patient":"{a}"' in row.old
    # Regions too: a hands film marked as feet only.
    out = ws.images.reassign_image(coord, moving.code, "wrong regions", regions=["LF"])
    assert out.regions == ("LF",)
    with pytest.raises(InvalidInput, match="regions are some of"):
        ws.images.reassign_image(coord, moving.code, "bad", regions=["XX"])


def test_masked_pixels_are_black_for_readers_and_untouched_in_the_original(
    sample: SampleReading,
) -> None:
    ws, trial = sample.workspace, sample.trial
    coord = ws.accounts.login(*COORDINATOR)
    image = ws.images.list_images(coord, trial)[0]
    with ws.store.read() as db:
        from scorer.store import repository as repo

        row = repo.image_by_code(db, image.code)
        loc = ws.store.location
        original = loc.image_file(row.original_path, original=True)
        old_reader = loc.image_file(row.reader_path)
        original_sha = row.sha256
    original_bytes = original.read_bytes()
    rect = (20, 30, 60, 25)  # x, y, width, height
    with pytest.raises(InvalidInput, match="not inside the image"):
        ws.images.mask_image(coord, image.code, [(0, 0, 10_000, 10)], "too big")
    out = ws.images.mask_image(coord, image.code, [rect], "burned-in patient name")
    # What a reader gets now: the case's film is the masked copy.
    with ws.store.read() as db:
        new_reader = loc.image_file(repo.image_by_code(db, image.code).reader_path)
    assert (
        hashlib.sha256(new_reader.read_bytes()).hexdigest()
        == out.reader_sha256
        != hashlib.sha256(old_reader.read_bytes()).hexdigest()
    )
    case = next(iter(cases_by_patient(ws, coord, trial, "rita").values()))
    entries = [
        e for visit in ws.images.case_images(sample.session, case.code).values() for e in visit
    ]
    name = film_name(ws.store.key, case.code, image.code)
    entry = next((e for e in entries if e.image == name), None)
    shown_in = case.code
    if entry is None:  # the image belongs to the other patient's case
        other = list(cases_by_patient(ws, coord, trial, "rita").values())[1]
        entries = [
            e
            for visit in ws.images.case_images(sample.session, other.code).values()
            for e in visit
        ]
        name = film_name(ws.store.key, other.code, image.code)
        entry = next(e for e in entries if e.image == name)
        shown_in = other.code

    def key(path: Path) -> str:  # the cache key: the pixel data's hash under the case
        pixels = hashlib.sha256(pydicom.dcmread(path).PixelData).hexdigest()
        return case_film_key(ws.store.key, shown_in, pixels)

    assert entry.sha256 == key(new_reader) != key(old_reader)
    masked = pydicom.dcmread(entry.path)
    pixels = masked.pixel_array
    x, y, w, h = rect
    bits = int(masked.BitsStored)
    black = 0 if masked.PhotometricInterpretation == "MONOCHROME2" else (1 << bits) - 1
    inside = pixels[y : y + h, x : x + w]
    assert np.all(inside == black)
    # What the reader's display draws there (the blinded copy, bone bright, default window).
    png = ws.images.export_image_png(coord, image.code, sample.films[0].path.parent / "shown.png")
    with Image.open(png) as shown:
        drawn = np.asarray(shown.convert("L"))
    assert drawn.shape == pixels.shape
    assert np.all(drawn[y : y + h, x : x + w] == 0)
    assert drawn.max() > 0
    # The original is byte for byte what was imported, and its pixels there are not black.
    assert original.read_bytes() == original_bytes
    assert hashlib.sha256(original_bytes).hexdigest() == original_sha
    source = pydicom.dcmread(original).pixel_array
    assert not np.all(source[y : y + h, x : x + w] == inside)
    # Outside the rectangle the readers' copy keeps its pixels.
    before = pydicom.dcmread(old_reader).pixel_array
    mask = np.ones(before.shape, dtype=bool)
    mask[y : y + h, x : x + w] = False
    assert np.array_equal(before[mask], pixels[mask])
    (audit,) = [r for r in ws.oversight.audit_trail(coord) if r.action == "image.mask"]
    assert json.loads(audit.new)["rectangles"] == [[20, 30, 60, 25]]
    assert audit.reason == "burned-in patient name"


def test_a_region_without_an_image_is_not_assessable_for_every_reader(
    sample: SampleReading,
) -> None:
    ws, trial = sample.workspace, sample.trial
    coord = ws.accounts.login(*COORDINATOR)
    rita = sample.session
    cases = cases_by_patient(ws, coord, trial, "rita")
    patient, case = next(iter(cases.items()))
    opened = ws.reading.open_case(rita, case.code)  # rita's reads exist before the marking
    out = ws.images.mark_region_missing(coord, trial, patient, "W24", "RF", "right foot not filmed")
    assert out == RegionMarked(reads_changed=1, signed_reads_left=())
    letter = "ABC"[case.visits.index("W24")]
    view = ws.reading.get_read(rita, opened.reads[letter])
    rf = {a: v for a, v in view.scores.items() if a.region == "RF"}
    assert len(rf) == 12 and all(v.reason == "not_visible" for v in rf.values())
    assert not [a for a in view.scores if a.region != "RF"]
    # A reader whose reads start later gets the same.
    ravi = second_reader(ws, coord, trial)
    theirs = cases_by_patient(ws, coord, trial, "ravi")[patient]
    later = ws.reading.open_case(ravi, theirs.code)
    letter = "ABC"[theirs.visits.index("W24")]
    view = ws.reading.get_read(ravi, later.reads[letter])
    assert {a for a in view.scores} == {a for a in rf}
    with pytest.raises(InvalidInput, match="marked already"):
        ws.images.mark_region_missing(coord, trial, patient, "W24", "RF", "again")
    assert ws.images.missing_regions(coord, trial)[0].region == "RF"
