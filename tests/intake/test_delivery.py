"""The films as a reader receives them tell no visit order (issue 25, part 4 and 3).

The demo (its own code, on five patients' committed files: three visits each, a hands and a
feet film per visit, paired-blinded, one hidden re-read per reader) is listed through the
facade as the reading window lists it. For every attribute in the delivered files (every
element at every depth, the file meta included), their names, sizes and modification times,
sorting a case's films of one region by it must not give the true visit order more often than
chance; a hidden re-read's films share no UID, name or time with the original's; the pixel
data is the stored copy's, byte for byte; the files are owner-only. ``scorer image reissue``
rebuilds an old-style trial's copies under the current rules, audited.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import statistics
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from scorer.cli import main
from scorer.demo import TRIAL, VISITS, repo_samples_dir, run_demo
from scorer.imaging.delivery import NEUTRAL_TIME, deliver_film, film_name, prune_cases
from scorer.services.images import case_film_key
from scorer.services.lookups import find_trial
from scorer.store import repository as repo
from scorer.workspace import InvalidInput, Workspace
from tests.intake.conftest import COORD_PW, Desk
from tests.intake.dicom_maker import make_dx, small_radiograph, write

PATIENTS = tuple(f"DEMO-10{i}" for i in range(1, 6))  # 5 patients: one re-read per reader
ORDER = {label: i for i, (label, _) in enumerate(VISITS)}
READERS = ("reader1", "reader2", "reader3")


def _samples(folder: Path) -> Path:
    source = repo_samples_dir()
    folder.mkdir(parents=True)
    for patient in PATIENTS:
        shutil.copytree(source / patient, folder / patient)
    lines = (source / "manifest.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [lines[0]] + [ln for ln in lines[1:] if any(p in ln for p in PATIENTS)]
    (folder / "manifest.csv").write_text("".join(kept), encoding="utf-8")
    (folder / "ground-truth-svh.csv").write_text(
        "".join(
            ln
            for i, ln in enumerate(
                (source / "ground-truth-svh.csv").read_text(encoding="utf-8").splitlines(True)
            )
            if i == 0 or any(p in ln for p in PATIENTS)
        ),
        encoding="utf-8",
    )
    return folder


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("delivery")
    samples = _samples(base / "samples")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SCORER_DATA_DIR", str(base / "data"))
        env.setenv("SCORER_CONFIG", str(base / "no-site-config.toml"))
        env.delenv("SCORER_DB", raising=False)
        result = run_demo(str(base / "demo.sqlite"), samples=samples, say=lambda _t: None)
        ws = Workspace.open(result.db)
        try:
            yield {"ws": ws, "passwords": result.passwords, "db": result.db, "base": base}
        finally:
            ws.close()


def _walk(ds: Dataset, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(path, value) of every element at every depth; a sequence gives its items' elements
    (by item number) and its item count."""
    for elem in ds:
        path = f"{prefix}{elem.tag}"
        if elem.VR == "SQ":
            yield path, f"{len(elem.value)} items"
            for n, item in enumerate(elem.value):
                yield from _walk(item, f"{path}[{n}].")
        else:
            value = elem.value
            yield path, value.hex() if isinstance(value, bytes) else str(value)


def _features(path: Path) -> dict[str, str]:
    """Everything a reader can sort their films by: every element (file meta included), the
    file's name, size and times."""
    ds = pydicom.dcmread(path)
    found = dict(_walk(ds.file_meta, "meta."))
    found.update(_walk(ds))
    st = path.stat()
    found["file name"] = path.name
    found["file size"] = f"{st.st_size:012d}"
    found["modification time"] = str(st.st_mtime_ns)
    return found


def _received(ws: Workspace, coord: Any, s: Any, reader: str) -> list[dict[str, Any]]:
    """Every case of the reader: its read type, its films as received (features, pixel data
    hash, region) with each film's true visit index."""
    cases = []
    for row in ws.worklists.worklist(coord, TRIAL, reader):
        got = ws.images.case_images(s, row.code)
        films = []
        for letter, label in zip("ABC", row.visits, strict=False):
            for entry in got[letter]:
                films.append(
                    {
                        "visit": ORDER[label],
                        "region": "feet" if "LF" in entry.regions else "hands",
                        "path": Path(entry.path),
                        "entry": entry,
                        "features": _features(Path(entry.path)),
                    }
                )
        cases.append({"code": row.code, "row": row, "films": films})
    return cases


def _workstation(demo: dict[str, Any], reader: str) -> Workspace:
    """The reader's own workstation: the demo's database, a data folder of its own."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SCORER_DATA_DIR", str(demo["base"] / f"data-{reader}"))
        env.setenv("SCORER_CONFIG", str(demo["base"] / "no-site-config.toml"))
        return Workspace.open(demo["db"])


@pytest.fixture(scope="module")
def received(demo: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    ws, pw = demo["ws"], demo["passwords"]
    coord = ws.accounts.login("coord", pw["coord"])
    out = {}
    for reader in READERS:
        station = _workstation(demo, reader)
        try:
            s = station.accounts.login(reader, pw[reader])
            out[reader] = _received(station, coord, s, reader)
        finally:
            station.close()
    return out


def _gives_order(values: list[tuple[str, int]]) -> bool:
    """Whether sorting by the value (either way) gives the true visit order."""
    if len({v for v, _ in values}) < len(values):
        return False  # ties: the order received (blinded) decides, not the value
    order = [visit for _, visit in sorted(values)]
    return order in (sorted(order), sorted(order, reverse=True))


def test_no_attribute_name_or_time_of_the_films_tells_the_visit_order(
    received: dict[str, list[dict[str, Any]]],
) -> None:
    groups: list[list[dict[str, Any]]] = []
    for cases in received.values():
        for case in cases:
            by_region = defaultdict(list)
            for film in case["films"]:
                by_region[film["region"]].append(film)
            groups += [g for g in by_region.values() if len(g) == len(VISITS)]
    assert len(groups) >= 30  # 3 readers x 6 cases x hands and feet
    attributes = set().union(*(f["features"] for g in groups for f in g))
    # Where the demo's original files carry dates, and the old copies kept them shifted:
    assert {"file name", "modification time", "(0020,000D)", "(0008,0018)"} <= attributes
    assert not any(a in attributes for a in ("(0008,0020)", "(0008,0022)", "(0008,0023)"))
    told = {}
    for attribute in sorted(attributes):
        hits = sum(
            _gives_order([(f["features"].get(attribute, ""), f["visit"]) for f in g])
            for g in groups
        )
        told[attribute] = hits / len(groups)
    # Three films in random order come out in visit order (or its reverse) one time in three;
    # an attribute that tells the order does it every time. A random one (a name, a UID) does
    # it in 3 groups of 4 or more once in millions of runs (binomial, 36 groups, p = 1/3); the
    # content's (window, size) are the same in every run.
    chance = 1 / 3
    assert statistics.mean(told.values()) < chance + 0.1, told
    leaking = {a: share for a, share in told.items() if share >= 0.75}
    assert not leaking, f"attributes that sort the films by visit: {leaking}"
    times = {f["features"]["modification time"] for g in groups for f in g}
    assert times == {str(NEUTRAL_TIME * 1_000_000_000)}


def _uids(films: list[dict[str, Any]]) -> set[str]:
    """The films' instance UIDs: every UID at any depth but the classes, syntaxes and the
    writing software's implementation class, which every file of the product shares."""
    out: set[str] = set()
    for film in films:
        ds = pydicom.dcmread(film["path"])
        for part in (ds.file_meta, ds):
            for elem in part.iterall():
                if elem.VR != "UI" or not elem.value or elem.keyword.endswith("ClassUID"):
                    continue
                if pydicom.uid.UID(elem.value).name == elem.value:  # not a named UID
                    out.add(str(elem.value))
    return out


def test_a_hidden_reread_shares_no_uid_name_or_time_with_its_original(
    received: dict[str, list[dict[str, Any]]],
) -> None:
    pairs = 0
    for cases in received.values():
        by_position = {c["row"].position: c for c in cases}
        for case in cases:
            if case["row"].read_type != "reread":
                continue
            original = by_position[case["row"].original_position]
            assert original["row"].patient == case["row"].patient
            pairs += 1
            a, b = original["films"], case["films"]
            # The same films (the same pixel data)...
            pixels = [
                sorted(hashlib.sha256(pydicom.dcmread(f["path"]).PixelData).hexdigest() for f in x)
                for x in (a, b)
            ]
            assert pixels[0] == pixels[1]
            # ...and nothing else in common: not even the pyramid cache's keys.
            assert not {f["entry"].sha256 for f in a} & {f["entry"].sha256 for f in b}
            assert _uids(a) and not _uids(a) & _uids(b)
            assert not {f["path"].name for f in a} & {f["path"].name for f in b}
            assert not {f["entry"].image for f in a} & {f["entry"].image for f in b}
            assert a[0]["path"].parent != b[0]["path"].parent
            times = {f["path"].stat().st_mtime for f in a + b}
            assert times == {NEUTRAL_TIME}
    assert pairs == len(READERS)


def test_the_delivered_pixel_data_is_the_stored_copys_and_the_files_are_owner_only(
    demo: dict[str, Any], received: dict[str, list[dict[str, Any]]]
) -> None:
    ws = demo["ws"]
    loc = ws.store.location
    stored: dict[str, bytes] = {}
    stored_uids: list[set[str]] = []
    with ws.store.read() as db:
        t = find_trial(db, TRIAL)
        for img in repo.images_of(db, t):
            ds = pydicom.dcmread(loc.image_file(img.reader_path))
            stored[hashlib.sha256(ds.PixelData).hexdigest()] = ds.PixelData
            stored_uids.append(
                {str(e.value) for e in ds.iterall() if e.VR == "UI" and "Instance" in e.keyword}
            )
    # The stored copies' UIDs were drawn per image: no two images share a study or series.
    every = [u for uids in stored_uids for u in uids]
    assert len(every) == len(set(every)) == 3 * len(stored_uids)
    for cases in received.values():
        for case in cases:
            for film in case["films"]:
                ds = pydicom.dcmread(film["path"])
                digest = hashlib.sha256(ds.PixelData).hexdigest()
                assert film["entry"].sha256 == case_film_key(ws.store.key, case["code"], digest)
                assert stored[digest] == ds.PixelData
                assert film["entry"].image == film["path"].stem
                assert str(ds.SOPInstanceUID) == str(ds.file_meta.MediaStorageSOPInstanceUID)
                if os.name == "posix":
                    assert stat.S_IMODE(film["path"].stat().st_mode) & 0o077 == 0
                    assert stat.S_IMODE(film["path"].parent.stat().st_mode) & 0o077 == 0


def test_listing_a_case_again_gives_the_same_files_and_keeps_the_cache_key(
    demo: dict[str, Any],
    received: dict[str, list[dict[str, Any]]],
) -> None:
    pw = demo["passwords"]
    case = received["reader3"][0]
    before = {f["path"]: f["path"].read_bytes() for f in case["films"]}
    fresh = _workstation(demo, "reader3")  # opened again: nothing remembered but the files
    try:
        s = fresh.accounts.login("reader3", pw["reader3"])
        again = fresh.images.case_images(s, case["code"])
        assert fresh.images.case_images(s, case["code"]) == again
    finally:
        fresh.close()
    entries = [e for films in again.values() for e in films]
    assert {Path(e.path) for e in entries} == set(before)
    assert all(Path(p).read_bytes() == data for p, data in before.items())
    assert sorted(e.sha256 for e in entries) == sorted(f["entry"].sha256 for f in case["films"])


# ------------------------------------------------------------------ scorer image reissue


def _old_style(desk: Desk) -> list[str]:
    """Two films of one patient's visit imported, then their readers' copies made as the
    earlier rules made them: one study UID for both, dates kept (shifted)."""
    folder = desk.db.parent / "in"
    for i, part in enumerate(("HAND", "FOOT")):
        ds = make_dx(
            small_radiograph(seed=i), patient_id="P-1", body_part=part, study_uid="1.2.3.4"
        )
        write(ds, folder / f"{part}.dcm")
    report = desk.ws.images.import_images(desk.s, "T1", [folder]).to_dict()
    assert report["imported"] == 2, report
    loc = desk.ws.store.location
    codes = []
    with desk.ws.store.read() as db:
        for img in repo.images_of(db, find_trial(db, "T1")):
            path = loc.image_file(img.reader_path)
            ds = pydicom.dcmread(path)
            ds.StudyInstanceUID = "2.25.1111"
            ds.StudyDate = ds.ContentDate = "20190101"
            path.chmod(0o600)
            ds.save_as(path)
            codes.append(img.code)
    return codes


def test_reissue_rewrites_an_old_style_trials_copies_under_the_current_rules(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, s = desk.ws, desk.s
    codes = _old_style(desk)
    loc = ws.store.location
    ws.images.mask_image(s, codes[0], [(0, 0, 10, 8)], "burned-in name")
    with ws.store.read() as db:
        old = {
            i.code: loc.image_file(i.reader_path) for i in repo.images_of(db, find_trial(db, "T1"))
        }
    monkeypatch.setattr("sys.stdin", io.StringIO(COORD_PW + "\n"))
    argv = ["image", "reissue", "--trial", "T1", "--quiet", "--db", str(desk.db)]
    assert main([*argv, "--user", "cora", "--password-stdin"]) == 0
    with ws.store.read() as db:
        images = repo.images_of(db, find_trial(db, "T1"))
        new = {i.code: (loc.image_file(i.reader_path), i.reader_sha256) for i in images}
        originals = {i.code: loc.image_file(i.original_path, original=True) for i in images}
    assert not any(p.exists() for p in old.values())
    studies = set()
    for code, (path, sha) in new.items():
        assert path != old[code] and hashlib.sha256(path.read_bytes()).hexdigest() == sha
        ds = pydicom.dcmread(path)
        assert not [e for e in ds.iterall() if e.VR in ("DA", "DT", "TM")]
        studies.add(str(ds.StudyInstanceUID))
        pixels = ds.pixel_array
        source = pydicom.dcmread(originals[code]).pixel_array
        if code == codes[0]:  # the mask painted again, the rest as the original
            assert (pixels[:8, :10] == 0).all() and ds.BurnedInAnnotation == "NO"
            assert np.array_equal(pixels[8:], source[8:])
        else:
            assert np.array_equal(pixels, source)
        if os.name == "posix":
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
    assert len(studies) == 2 and "2.25.1111" not in studies
    trail = [
        r for r in ws.oversight.audit_trail(s) if r.action in ("image.reissue", "images.reissue")
    ]
    assert sorted(r.entity_id for r in trail if r.action == "image.reissue") == sorted(codes)
    (trial_row,) = [r for r in trail if r.action == "images.reissue"]
    assert json.loads(trial_row.new) == {"images": 2, "masked": 1}
    assert ws.verify().ok


def test_reissue_without_an_original_changes_nothing(desk: Desk) -> None:
    ws, s = desk.ws, desk.s
    _old_style(desk)
    loc = ws.store.location
    with ws.store.read() as db:
        images = repo.images_of(db, find_trial(db, "T1"))
        before = {i.code: (i.reader_path, i.reader_sha256) for i in images}
        loc.image_file(images[1].original_path, original=True).unlink()
    files = sorted(loc.readers_store.rglob("*.dcm"))
    with pytest.raises(InvalidInput, match="not in the originals store"):
        ws.images.reissue_readers_copies(s, "T1")
    with ws.store.read() as db:
        after = {
            i.code: (i.reader_path, i.reader_sha256)
            for i in repo.images_of(db, find_trial(db, "T1"))
        }
    assert after == before
    assert sorted(loc.readers_store.rglob("*.dcm")) == files


def test_a_workstation_keeps_the_films_of_the_cases_used_last(tmp_path: Path) -> None:
    stored = write(make_dx(), tmp_path / "stored.dcm")
    root = tmp_path / "films"
    key = b"k" * 32
    folders = []
    for i in range(6):
        folder = root / f"CASE{i}"
        deliver_film(
            stored, folder / f"{film_name(key, folder.name, 'IMG')}.dcm", key, folder.name, "IMG"
        )
        os.utime(folder, (1_000_000 + i, 1_000_000 + i))  # used one after the other
        folders.append(folder)
    # CASE1 is listed again: it becomes the last used.
    assert prune_cases(root, folders[1], keep=3) == 3
    assert sorted(f.name for f in root.iterdir()) == ["CASE1", "CASE4", "CASE5"]
    # A film's name and UIDs depend on (case, image) alone: the same in every delivery.
    again = tmp_path / "again.dcm"
    deliver_film(stored, again, key, "CASE1", "IMG")
    (kept,) = (root / "CASE1").iterdir()
    assert kept.read_bytes() == again.read_bytes()
