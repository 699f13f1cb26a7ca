"""The synthetic radiograph generator: determinism, local damage, ground truth, DICOM files."""

from __future__ import annotations

import shutil
import subprocess
import time
import warnings
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import pydicom
import pytest

from scorer.core.methods import FOOT_REGIONS, HAND_REGIONS, Area, get_method
from scorer.imaging import synthetic as syn
from scorer.imaging import synthetic_dicom as sdcm

Render = Callable[..., syn.SyntheticImage]

# A damaged area must differ from its undamaged twin, inside its box, by a mean absolute
# difference of more than K noise standard deviations (noise measured in the same box).
K = 1.5
# A single grade-1 erosion is small against its box; its deepest pixel must stand out instead.
K_PEAK = 5.0

# Other damage present in both twins, to show that areas do not interfere.
BACKGROUND: dict[Area, syn.Grade] = {
    Area("RH", "MCP3", "ERO"): 2,
    Area("LH", "MCP2", "JSN"): 2,
    Area("RH", "PIP2", "JSN"): 1,
    Area("RH", "LUN", "ERO"): 2,
    Area("LF", "MTP4", "ERO"): (1, 2),
    Area("RF", "MTP2", "JSN"): 2,
}


@cache
def _render(
    kind: str, seed: int, damage: tuple[tuple[Area, syn.Grade], ...], noise: bool = True
) -> syn.SyntheticImage:
    fn: Render = syn.render_hands_film if kind == "hands" else syn.render_feet_film
    return fn(dict(damage), seed, noise=noise, anatomy_seed=100)


def _twins(
    kind: str, area: Area, grade: syn.Grade, seed: int = 11
) -> tuple[syn.SyntheticImage, syn.SyntheticImage, syn.SyntheticImage]:
    base = tuple(sorted((a, g) for a, g in BACKGROUND.items() if a != area))
    with_area = tuple(sorted({**dict(base), area: grade}.items()))
    return (
        _render(kind, seed, base),
        _render(kind, seed, with_area),
        _render(kind, seed, base, False),
    )


# --- determinism ----------------------------------------------------------------------------


def test_same_seed_gives_identical_pixels_and_boxes() -> None:
    damage = {Area("RH", "MCP2", "ERO"): 3, Area("LH", "PIP4", "JSN"): 2}
    a = syn.render_hands_film(damage, 42)
    b = syn.render_hands_film(damage, 42)
    assert a.pixels.dtype == np.uint16
    assert np.array_equal(a.pixels, b.pixels)
    assert a.boxes == b.boxes and a.window == b.window
    f1 = syn.render_feet_film({Area("RF", "MTP5", "ERO"): (2, 1)}, 42)
    f2 = syn.render_feet_film({Area("RF", "MTP5", "ERO"): (2, 1)}, 42)
    assert np.array_equal(f1.pixels, f2.pixels)


def test_different_seed_gives_different_noise() -> None:
    a = syn.render_hand("R", {}, 1, anatomy_seed=5)
    b = syn.render_hand("R", {}, 2, anatomy_seed=5)
    assert not np.array_equal(a.pixels, b.pixels)
    clean_a = syn.render_hand("R", {}, 1, anatomy_seed=5, noise=False)
    clean_b = syn.render_hand("R", {}, 2, anatomy_seed=5, noise=False)
    noise_a = a.pixels.astype(np.int32) - clean_a.pixels
    noise_b = b.pixels.astype(np.int32) - clean_b.pixels
    assert noise_a.std() > 1.0 and noise_b.std() > 1.0
    assert abs(np.corrcoef(noise_a.ravel(), noise_b.ravel())[0, 1]) < 0.05


def test_pixels_are_12_bit_with_a_realistic_range() -> None:
    img = syn.render_hands_film({}, 3)
    assert img.pixels.shape == (1000, 1200)
    assert img.pixels.max() <= 4095
    background = img.pixels[200:240, 560:640]  # between the hands, below the markers
    assert 200 < background.mean() < 450
    assert img.pixels.max() > 2500  # bone
    centre, width = img.window
    assert 1000 < centre < 3000 and width > 1500


# --- damage is local --------------------------------------------------------------------------

CASES = [
    ("hands", Area("RH", "MCP2", "ERO"), 3),
    ("hands", Area("LH", "MCP5", "ERO"), 5),
    ("hands", Area("LH", "PIP3", "JSN"), 2),
    ("hands", Area("RH", "PIP4", "JSN"), 3),
    ("hands", Area("RH", "MCP4", "JSN"), 4),  # ankylosis
    ("hands", Area("LH", "NAV", "ERO"), 3),  # carpal
    ("hands", Area("RH", "ULN", "ERO"), 4),
    ("hands", Area("RH", "CNL", "JSN"), 3),  # carpal joint
    ("hands", Area("LH", "CMC4", "JSN"), 4),
    ("hands", Area("RH", "RCA", "JSN"), 2),
    ("hands", Area("LH", "CMC1", "ERO"), 3),
    ("feet", Area("LF", "MTP5", "ERO"), (0, 3)),  # one side only
    ("feet", Area("RF", "MTP1", "ERO"), (3, 0)),
    ("feet", Area("RF", "IP1", "JSN"), 4),
    ("feet", Area("LF", "MTP2", "JSN"), 3),
]


@pytest.mark.parametrize(("kind", "area", "grade"), CASES, ids=[f"{c[1]}-{c[2]}" for c in CASES])
def test_damage_changes_only_its_box(kind: str, area: Area, grade: syn.Grade) -> None:
    plain, damaged, clean = _twins(kind, area, grade)
    assert damaged.boxes == plain.boxes  # boxes do not depend on damage
    r0, c0, r1, c1 = plain.boxes[area]
    diff = np.abs(damaged.pixels.astype(np.int32) - plain.pixels.astype(np.int32))
    inside = np.zeros(diff.shape, dtype=bool)
    inside[r0:r1, c0:c1] = True
    assert diff[~inside].max() == 0, "damage leaked outside the area's box"
    noise = (plain.pixels.astype(np.int32) - clean.pixels.astype(np.int32))[r0:r1, c0:c1]
    sd = float(noise.std())
    assert sd > 1.0
    mean = float(diff[r0:r1, c0:c1].mean())
    assert mean > K * sd, f"mean |diff| {mean:.1f} is not above {K} x noise sd {sd:.1f}"


@pytest.mark.parametrize(
    ("kind", "area", "grade"),
    [
        ("hands", Area("RH", "PIP2", "ERO"), 1),
        ("hands", Area("LH", "LUN", "ERO"), 1),
        ("feet", Area("RF", "MTP3", "ERO"), (1, 0)),
        ("hands", Area("RH", "MCP3", "JSN"), 1),
    ],
)
def test_lowest_grades_are_visible(kind: str, area: Area, grade: syn.Grade) -> None:
    plain, damaged, clean = _twins(kind, area, grade, seed=12)
    r0, c0, r1, c1 = plain.boxes[area]
    diff = np.abs(damaged.pixels.astype(np.int32) - plain.pixels.astype(np.int32))
    outside = diff.copy()
    outside[r0:r1, c0:c1] = 0
    assert outside.max() == 0
    sd = float((plain.pixels.astype(np.int32) - clean.pixels)[r0:r1, c0:c1].std())
    assert diff[r0:r1, c0:c1].max() > K_PEAK * sd


def test_erosion_grows_with_grade_and_narrowing_with_grade() -> None:
    def change(area: Area, grade: syn.Grade) -> float:
        side: syn.Side = "R" if area.region[0] == "R" else "L"
        fn = syn.render_hand if area.region in HAND_REGIONS else syn.render_foot
        plain = fn(side, {}, 13, noise=False)
        damaged = fn(side, {area: grade}, 13, noise=False)
        r0, c0, r1, c1 = plain.boxes[area]
        d = damaged.pixels.astype(np.int32) - plain.pixels.astype(np.int32)
        return float(np.abs(d[r0:r1, c0:c1]).sum())

    ero = [change(Area("RH", "MCP2", "ERO"), g) for g in range(1, 6)]
    assert ero == sorted(ero) and ero[0] > 0
    jsn = [change(Area("LH", "PIP3", "JSN"), g) for g in range(1, 4)]
    assert jsn == sorted(jsn) and jsn[0] > 0
    foot = [change(Area("RF", "MTP5", "ERO"), (g, 0)) for g in range(1, 6)]
    assert foot == sorted(foot)


def test_every_area_of_the_film_has_a_box_inside_it() -> None:
    for img in (syn.render_hands_film({}, 4), syn.render_feet_film({}, 4)):
        for method in ("svh", "larsen1995"):
            for adef in get_method(method).areas:
                if adef.region not in img.regions:
                    assert adef.area not in img.boxes
                    continue
                r0, c0, r1, c1 = img.boxes[adef.area]
                assert 0 <= r0 < r1 <= img.rows and 0 <= c0 < c1 <= img.columns
    hand = syn.render_hand("L", {}, 4)
    assert hand.regions == ("LH",) and hand.laterality == "L"
    assert {a.region for a in hand.boxes} == {"LH"}
    foot = syn.render_foot("R", {}, 4)
    assert foot.regions == ("RF",) and foot.body_part == "FOOT"


def test_right_hand_is_on_the_left_of_a_two_hand_film() -> None:
    img = syn.render_hands_film({}, 9)
    assert img.boxes[Area("RH", "MCP3", "JSN")][1] < img.columns // 2
    assert img.boxes[Area("LH", "MCP3", "JSN")][1] > img.columns // 2
    # thumbs point to the middle
    assert img.boxes[Area("RH", "MCP1", "JSN")][1] > img.boxes[Area("RH", "MCP5", "JSN")][1]
    assert img.boxes[Area("LH", "MCP1", "JSN")][1] < img.boxes[Area("LH", "MCP5", "JSN")][1]


def test_a_two_hand_film_renders_in_a_few_seconds() -> None:
    damage = syn.damage_course(21, 1, severity="severe").visits[0]
    start = time.perf_counter()
    syn.render_hands_film(damage, 21)
    assert time.perf_counter() - start < 5.0


# --- ground truth -----------------------------------------------------------------------------


def test_svh_truth_covers_the_films_regions_only() -> None:
    damage: dict[Area, syn.Grade] = {
        Area("RH", "MCP2", "ERO"): 3,
        Area("RH", "MCP2", "JSN"): 2,
        Area("LF", "MTP5", "ERO"): (2, 4),
        Area("LF", "IP1", "JSN"): 1,
    }
    hands = syn.svh_truth(damage, HAND_REGIONS)
    assert len(hands) == 2 * (16 + 15)
    assert hands[Area("RH", "MCP2", "ERO")] == 3 and hands[Area("LH", "MCP2", "ERO")] == 0
    assert all(a.region in HAND_REGIONS for a in hands)
    feet = syn.svh_truth(damage, FOOT_REGIONS)
    assert len(feet) == 2 * (6 + 6)
    assert feet[Area("LF", "MTP5", "ERO")] == 6  # sum of the two sides
    assert syn.svh_sides(damage, FOOT_REGIONS)[Area("LF", "MTP5", "ERO")] == (2, 4)
    img = syn.render_feet_film(damage, 1)
    assert img.svh() == feet
    assert Area("RH", "MCP2", "ERO") not in img.damage


def test_larsen_mapping_is_as_documented() -> None:
    assert syn.larsen_from_svh(0, 0) == 0
    assert syn.larsen_from_svh(0, 1) == 1  # narrowing alone
    assert syn.larsen_from_svh(0, 3) == 1
    assert syn.larsen_from_svh(1, 0) == 2  # generated erosions are over 1 mm
    assert syn.larsen_from_svh(3, 1) == 3
    assert syn.larsen_from_svh(0, 4) == 4  # ankylosis
    assert syn.larsen_from_svh(5, 4) == 5
    damage: dict[Area, syn.Grade] = {
        Area("RH", "PIP2", "ERO"): 2,
        Area("RH", "NAV", "ERO"): 3,
        Area("RH", "CMC4", "JSN"): 4,
        Area("RH", "CNL", "JSN"): 2,
        Area("LF", "MTP3", "ERO"): (1, 4),
        Area("LF", "MTP1", "ERO"): (5, 5),  # MTP1 is no Larsen unit
    }
    lar = syn.larsen_truth(damage, ("RH", "LF"))
    assert len(lar) == 12 + 4
    assert lar[Area("RH", "PIP2", "LAR")] == 2
    assert lar[Area("RH", "WQ1", "LAR")] == 3  # NAV erosion
    assert lar[Area("RH", "WQ2", "LAR")] == 1  # CNL narrowing
    assert lar[Area("RH", "WQ3", "LAR")] == 0
    assert lar[Area("RH", "WQ4", "LAR")] == 4  # CMC4 ankylosis
    assert lar[Area("LF", "MTP3", "LAR")] == 4  # worse side
    assert sum(lar.values()) == 2 + 3 + 1 + 4 + 4


def test_damage_is_validated() -> None:
    with pytest.raises(ValueError, match="proximal"):
        syn.render_feet_film({Area("LF", "MTP1", "ERO"): 3}, 1)
    with pytest.raises(ValueError, match="outside"):
        syn.render_hands_film({Area("RH", "MCP1", "JSN"): 5}, 1)
    with pytest.raises(ValueError, match="not an svh area"):
        syn.render_hands_film({Area("RH", "IP1", "JSN"): 1}, 1)
    with pytest.raises(ValueError, match="outside"):
        syn.svh_truth({Area("RF", "IP1", "ERO"): (6, 0)}, FOOT_REGIONS)


def test_damage_courses_are_plausible() -> None:
    svh = get_method("svh")
    progressors = 0
    for seed in range(40):
        course = syn.damage_course(seed, 3)
        assert len(course.visits) == 3
        totals = []
        for damage in course.visits:
            scores = syn.svh_truth(damage, ("LH", "RH", "LF", "RF"))
            for area, score in scores.items():
                adef = svh.area(area)
                assert adef.min <= score <= adef.max
            total = sum(scores.values())
            assert 0 <= total <= 448
            totals.append(total)
            lar = syn.larsen_truth(damage, ("LH", "RH", "LF", "RF"))
            assert 0 <= sum(lar.values()) <= 160
        for earlier, later in zip(course.visits, course.visits[1:], strict=False):
            for area, g in earlier.items():
                h = later[area]
                if isinstance(g, tuple):
                    assert isinstance(h, tuple) and h[0] >= g[0] and h[1] >= g[1]
                else:
                    assert isinstance(h, int) and h >= g
        if course.progressor and course.severity != "none":
            assert totals[-1] > totals[0]
        if not course.progressor:
            assert totals[0] == totals[-1]
        progressors += course.progressor
    assert 8 < progressors < 32
    assert syn.damage_course(7, 3) == syn.damage_course(7, 3)
    hands_only = syn.damage_course(3, 2, ("LH", "RH"), severity="severe", progressor=True)
    assert all(a.region in HAND_REGIONS for v in hands_only.visits for a in v)
    assert hands_only.visits[1] != hands_only.visits[0]


# --- DICOM ------------------------------------------------------------------------------------

DX_REQUIRED = [
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "Modality",
    "SeriesInstanceUID",
    "SeriesNumber",
    "PresentationIntentType",
    "Manufacturer",
    "InstanceNumber",
    "PatientOrientation",
    "ImageType",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "PixelIntensityRelationship",
    "PixelIntensityRelationshipSign",
    "RescaleIntercept",
    "RescaleSlope",
    "RescaleType",
    "PresentationLUTShape",
    "LossyImageCompression",
    "BurnedInAnnotation",
    "ImageLaterality",
    "AnatomicRegionSequence",
    "ImagerPixelSpacing",
    "DetectorType",
    "WindowCenter",
    "WindowWidth",
    "SOPClassUID",
    "SOPInstanceUID",
    "AcquisitionContextSequence",
    "PixelData",
]


def _dataset(img: syn.SyntheticImage, seed: int = 8, **kwargs: object) -> pydicom.Dataset:
    patient = sdcm.fake_patient(seed)
    study = sdcm.fake_study(seed, patient)
    return sdcm.build_dataset(img, patient, study, sdcm.fake_site(seed), **kwargs)  # type: ignore[arg-type]


@cache
def _hands() -> syn.SyntheticImage:
    return syn.render_hands_film({Area("RH", "MCP2", "ERO"): 2}, 77)


def _dcmdump(path: Path) -> str:
    exe = shutil.which("dcmdump")
    assert exe, "dcmdump (dcmtk) is required for this test"
    r = subprocess.run([exe, str(path)], capture_output=True, text=True, errors="replace")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    bad = [line for line in out.splitlines() if line.startswith(("W:", "E:", "F:"))]
    assert not bad, bad
    return out


def _read_quietly(path: Path) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = pydicom.dcmread(path)
        _ = ds.pixel_array
        for elem in ds.iterall():
            _ = elem.value
    return ds


VARIANTS = [
    ("DX", "MONOCHROME2", "explicit"),
    ("DX", "MONOCHROME1", "explicit"),
    ("CR", "MONOCHROME1", "explicit"),
    ("DX", "MONOCHROME2", "j2k-lossless"),
    ("CR", "MONOCHROME1", "j2k-lossless"),
    ("DX", "MONOCHROME2", "j2k-lossy"),
]


@pytest.mark.parametrize(("modality", "photometric", "syntax"), VARIANTS)
def test_dicom_files_pass_dcmdump_and_pydicom(
    tmp_path: Path, modality: str, photometric: str, syntax: str
) -> None:
    img = _hands()
    trial = sdcm.TrialInfo(
        "Acme Pharma", "ACM-301", "S07", "0704", "W24", "Phase III", "", "Week 24"
    )
    ds = _dataset(img, modality=modality, photometric=photometric, trial=trial)
    path = tmp_path / "x.dcm"
    sdcm.write_dicom(ds, path, syntax)  # type: ignore[arg-type]
    dump = _dcmdump(path)
    assert "PatientName" in dump and "(0009,1001)" in dump
    back = _read_quietly(path)
    assert back.PhotometricInterpretation == photometric
    assert back.ImageLaterality == "B" and back.BodyPartExamined == "HAND"
    assert back.Modality == modality
    assert back.ClinicalTrialTimePointID == "W24"
    stored = back.pixel_array.astype(np.int32)
    shown = 4095 - stored if photometric == "MONOCHROME1" else stored
    if syntax == "j2k-lossy":
        assert back.LossyImageCompression == "01"
        assert back.SOPInstanceUID != ds.SOPInstanceUID
        assert float(back.LossyImageCompressionRatio) > 5
        assert np.abs(shown - img.pixels).mean() < 10
    else:
        assert np.array_equal(shown, img.pixels)
        assert back.SOPInstanceUID == ds.SOPInstanceUID
    if modality == "DX":
        missing = [k for k in DX_REQUIRED if k not in back]
        assert not missing
        assert back.SOPClassUID == sdcm.DX_FOR_PRESENTATION
        assert back.PresentationLUTShape == (
            "INVERSE" if photometric == "MONOCHROME1" else "IDENTITY"
        )
    else:
        assert back.SOPClassUID == sdcm.CR_IMAGE_STORAGE


def test_monochrome1_inverts_stored_values_and_window(tmp_path: Path) -> None:
    img = syn.render_foot("L", {}, 5)
    m2 = _dataset(img)
    m1 = _dataset(img, photometric="MONOCHROME1", modality="CR")
    a2 = np.frombuffer(m2.PixelData, dtype="<u2").reshape(img.pixels.shape)
    a1 = np.frombuffer(m1.PixelData, dtype="<u2").reshape(img.pixels.shape)
    assert np.array_equal(a1.astype(np.int32), 4095 - a2.astype(np.int32))
    assert float(m1.WindowCenter) == 4095 - float(m2.WindowCenter)
    assert m1.WindowWidth == m2.WindowWidth
    assert m1.ImageLaterality == "L" and m1.Laterality == "L"
    assert m2.ViewPosition == "AP" and m2.BodyPartExamined == "FOOT"
    assert m2.PixelIntensityRelationshipSign == -1


def test_same_seed_gives_identical_dicom_bytes(tmp_path: Path) -> None:
    syntaxes: tuple[sdcm.TransferSyntax, ...] = ("explicit", "j2k-lossless", "j2k-lossy")
    for syntax in syntaxes:
        paths = []
        for i in range(2):
            img = syn.render_feet_film({Area("RF", "MTP5", "ERO"): (1, 1)}, 31)
            ds = _dataset(img, seed=31)
            paths.append(tmp_path / f"{syntax}{i}.dcm")
            sdcm.write_dicom(ds, paths[-1], syntax)
        assert paths[0].read_bytes() == paths[1].read_bytes()


def test_identifiers_are_realistic_and_nested(tmp_path: Path) -> None:
    img = _hands()
    patient = sdcm.fake_patient(3)
    study = sdcm.fake_study(3, patient)
    site = sdcm.fake_site(3)
    ds = sdcm.build_dataset(img, patient, study, site)
    family, given = str(ds.PatientName).split("^")
    assert family and given and ds.PatientID and ds.AccessionNumber
    assert ds.PatientSex in ("F", "M") and len(ds.PatientBirthDate) == 8
    assert ds.InstitutionName and ds.InstitutionAddress and "^" in str(ds.ReferringPhysicianName)
    assert ds.StationName and ds.DeviceSerialNumber and ds.OperatorsName
    req = ds.RequestAttributesSequence[0]
    assert req.RequestedProcedureID and req.ScheduledProcedureStepID
    assert ds.OtherPatientIDsSequence[0].PatientID == patient.hospital_id
    block = ds.private_block(sdcm.PRIVATE_GROUP, sdcm.PRIVATE_CREATOR)
    assert block[0x01].value == patient.hospital_id
    assert patient.family_name in block[0x02].value
    # visits of a patient: one study per visit, same patient
    later = sdcm.fake_study(4, patient, study.when.date().replace(year=study.when.year + 1))
    assert later.study_uid != study.study_uid
    feet = sdcm.build_dataset(syn.render_feet_film({}, 3), patient, study, site, series_number=2)
    assert feet.StudyInstanceUID == ds.StudyInstanceUID
    assert feet.SeriesInstanceUID != ds.SeriesInstanceUID
    names = {sdcm.fake_patient(s).name for s in range(30)}
    assert len(names) > 20
