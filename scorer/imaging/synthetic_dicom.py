"""DICOM files for synthetic radiographs, with realistic fake identifiers.

:func:`build_dataset` wraps a :class:`~scorer.imaging.synthetic.SyntheticImage` in a Digital
X-Ray Image (For Presentation) or Computed Radiography dataset. Identifiers — names, IDs, dates,
institution, physicians, a private block and nested sequences — are invented from a seed so
that blinding and de-identification have something real-looking to remove. Every patient is
fictional: names are drawn from lists of common names, and PatientComments says the data are
synthetic. UIDs are ``2.25`` UUID-derived values made deterministically from the seed
(:func:`derived_uid`), so the same inputs give byte-identical files.

Photometric interpretation: MONOCHROME2 stores the image as it is displayed (bone high).
MONOCHROME1, as many CR systems send, stores ``4095 - value`` and window centre
``4095 - centre``; the displayed image is the same. For DX, Presentation LUT Shape is IDENTITY
with MONOCHROME2 and INVERSE with MONOCHROME1 (PS3.3 C.8.11.3, DX Image module).
"""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    JPEG2000,
    UID,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
)

from scorer.core.randomness import Stream
from scorer.imaging.synthetic import MAX_VALUE, SyntheticImage

DX_FOR_PRESENTATION = UID("1.2.840.10008.5.1.4.1.1.1.1")
CR_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.1")
_UID_NAMESPACE = uuid.UUID("6f1c2a4e-9b7d-5e3a-8c21-5d0f4e7a9b13")


def derived_uid(*parts: str) -> UID:
    """A deterministic UID under the 2.25 (UUID) root: a name-based (version 5) UUID of the
    parts. ``generate_uid(prefix=None)`` ignores its entropy sources and is random, so it cannot
    give reproducible files."""
    return UID(f"2.25.{uuid.uuid5(_UID_NAMESPACE, chr(31).join(parts)).int}")


IMPLEMENTATION_CLASS_UID = derived_uid("scorer synthetic dicom")
IMPLEMENTATION_VERSION = "SCORER_SYN_1"
PRIVATE_GROUP = 0x0009
PRIVATE_CREATOR = "SCORER SYNTHETIC 1"
"""Private block (0009,0010): (0009,1001) LO the hospital record number, (0009,1002) LO the
scheduling note with the patient's name, (0009,1003) DA the date of referral."""

Modality = Literal["DX", "CR"]
Photometric = Literal["MONOCHROME1", "MONOCHROME2"]

# Common given and family names from several European languages. Combinations are random;
# any resemblance to a real person is coincidence, and PatientComments marks the data as fake.
GIVEN_NAMES_F = (
    "Anna", "Maria", "Elisabeth", "Sophie", "Emma", "Julia", "Laura", "Sarah", "Hanna",
    "Ingrid", "Margaret", "Helen", "Susan", "Karin", "Monique", "Isabel", "Carmen", "Lucía",
    "Agnès", "Birgit", "Eva", "Marta", "Jana", "Chiara", "Francesca", "Aoife", "Ewa", "Lotte",
)  # fmt: skip
GIVEN_NAMES_M = (
    "Peter", "Thomas", "Michael", "Jan", "Lars", "Henrik", "John", "David", "James", "Paul",
    "Martin", "Andreas", "Pierre", "José", "Luca", "Marco", "Pavel", "Tomasz", "Søren", "Erik",
    "Willem", "Sean", "Karl", "Jürgen", "Antonio", "Miguel", "Stefan", "Niels",
)  # fmt: skip
FAMILY_NAMES = (
    "Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans", "Müller", "Schmidt", "Schneider",
    "Fischer", "Weber", "Meyer", "Jansen", "de Vries", "van Dijk", "Bakker", "Visser", "Dubois",
    "Martin", "Bernard", "Moreau", "Rossi", "Russo", "Ferrari", "García", "Fernández", "López",
    "Nielsen", "Hansen", "Andersson", "Johansson", "Nowak", "Kowalski", "Novák", "Murphy",
    "O'Brien", "Kelly", "Walsh", "Lehmann", "Hoffmann",
)  # fmt: skip
HOSPITALS = (
    ("Northbrook General Hospital", "14 Alder Lane, Northbrook NB3 7QT"),
    ("St. Hilda's Rheumatology Centre", "2 Quarry Road, Eastwick EW1 4PL"),
    ("Riverside University Clinic", "Riverside Campus 8, 40721 Auberg"),
    ("Kliniken am Lindenhof", "Lindenallee 31, 77654 Westerfeld"),
    ("Hospital Clínico Valdemar", "Calle del Pinar 56, 28999 Valdemar"),
)
DEPARTMENTS = ("Radiology", "Musculoskeletal Imaging", "Diagnostic Imaging")
STATIONS = ("DXROOM2", "RAD-3", "XR_ORTHO1", "CR-READER4")
BODY_CODES = {"HAND": ("85562004", "Hand"), "FOOT": ("56459004", "Foot")}
SYNTHETIC_NOTE = "SYNTHETIC TEST DATA - fictional patient, not a real person"


def _name(st: Stream, sex: str) -> tuple[str, str]:
    given = GIVEN_NAMES_F if sex == "F" else GIVEN_NAMES_M
    return FAMILY_NAMES[st.below(len(FAMILY_NAMES))], given[st.below(len(given))]


def _person(st: Stream) -> str:
    family, given = _name(st, "F" if st.below(2) else "M")
    return f"{family}^{given}"


@dataclass(frozen=True)
class FakePatient:
    """A fictional patient: name, identifiers, birth date and sex."""

    family_name: str
    given_name: str
    patient_id: str  # the trial site's patient ID
    hospital_id: str  # a second record number (in OtherPatientIDsSequence and the private block)
    birth_date: dt.date
    sex: str  # "F" or "M"

    @property
    def name(self) -> str:
        """PatientName in DICOM PN form, Family^Given."""
        return f"{self.family_name}^{self.given_name}"


def fake_patient(seed: int) -> FakePatient:
    """A fictional patient from ``seed`` (about 70 % women, as in rheumatoid arthritis)."""
    st = Stream(str(seed), "synthetic-patient")
    sex = "F" if st.below(100) < 70 else "M"
    family, given = _name(st, sex)
    birth = dt.date(1940, 1, 1) + dt.timedelta(days=st.below(365 * 50))
    return FakePatient(
        family_name=family,
        given_name=given,
        patient_id=f"{st.between(10, 99)}-{st.between(100000, 999999)}",
        hospital_id=f"H{st.between(10_000_000, 99_999_999)}",
        birth_date=birth,
        sex=sex,
    )


@dataclass(frozen=True)
class FakeSite:
    """A fictional institution with its people and equipment."""

    institution: str
    address: str
    department: str
    station: str
    device_serial: str
    referring_physician: str
    operator: str


def fake_site(seed: int) -> FakeSite:
    st = Stream(str(seed), "synthetic-site")
    name, address = HOSPITALS[st.below(len(HOSPITALS))]
    return FakeSite(
        institution=name,
        address=address,
        department=DEPARTMENTS[st.below(len(DEPARTMENTS))],
        station=STATIONS[st.below(len(STATIONS))],
        device_serial=f"SN{st.between(100000, 999999)}",
        referring_physician=_person(st),
        operator=_person(st),
    )


@dataclass(frozen=True)
class FakeStudy:
    """One visit's study: date and time, accession and procedure identifiers, Study UID."""

    when: dt.datetime
    accession: str
    study_id: str
    requested_procedure_id: str
    scheduled_step_id: str
    referral_date: dt.date
    study_uid: str


def fake_study(
    seed: int, patient: FakePatient, when: dt.date | dt.datetime | None = None
) -> FakeStudy:
    """A study of ``patient`` on ``when`` (a date gets a working-hours time; default: a date
    in 2019-2023 from the seed)."""
    st = Stream(str(seed), "synthetic-study")
    if when is None:
        when = dt.date(2019, 1, 1) + dt.timedelta(days=st.below(365 * 5))
    if not isinstance(when, dt.datetime):
        minutes = st.between(8 * 60, 17 * 60 - 1)
        when = dt.datetime.combine(when, dt.time(minutes // 60, minutes % 60, st.below(60)))
    accession = f"A{when:%y}{st.between(1_000_000, 9_999_999)}"
    uid = derived_uid("scorer synthetic study", patient.patient_id, accession)
    return FakeStudy(
        when=when,
        accession=accession,
        study_id=str(st.between(1000, 99999)),
        requested_procedure_id=f"RP{st.between(100000, 999999)}",
        scheduled_step_id=f"SPS{st.between(100000, 999999)}",
        referral_date=when.date() - dt.timedelta(days=st.between(3, 40)),
        study_uid=uid,
    )


@dataclass(frozen=True)
class TrialInfo:
    """Clinical Trial Subject and Study modules' attributes (all optional but the IDs)."""

    sponsor: str
    protocol_id: str
    site_id: str
    subject_id: str
    time_point_id: str
    protocol_name: str = ""
    site_name: str = ""
    time_point_description: str = ""


def _age(birth: dt.date, on: dt.date) -> str:
    years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    return f"{years:03d}Y"


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "SCT"
    item.CodeMeaning = meaning
    return item


def _file_meta(sop_class: UID, sop_uid: UID) -> FileMetaDataset:
    """The file meta information of an uncompressed (explicit VR little endian) file."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    return meta


def _add_general(
    ds: Dataset,
    image: SyntheticImage,
    study: FakeStudy,
    site: FakeSite,
    modality: Modality,
    sop_class: UID,
    sop_uid: UID,
) -> None:
    """SOP Common, and the dates, times, equipment and descriptions of the general study,
    series and image modules."""
    hands = image.body_part == "HAND"
    when = study.when
    acquired = when + dt.timedelta(minutes=2 if hands else 6)
    content = acquired + dt.timedelta(seconds=14)
    # SOP Common
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    # General Study, General Series, General Image, General Equipment dates and times
    ds.StudyDate = f"{when:%Y%m%d}"
    ds.SeriesDate = f"{acquired:%Y%m%d}"
    ds.AcquisitionDate = f"{acquired:%Y%m%d}"
    ds.ContentDate = f"{content:%Y%m%d}"
    ds.StudyTime = f"{when:%H%M%S}"
    ds.SeriesTime = f"{acquired:%H%M%S}"
    ds.AcquisitionTime = f"{acquired:%H%M%S}"
    ds.ContentTime = f"{content:%H%M%S}"
    ds.AccessionNumber = study.accession
    ds.Modality = modality
    ds.Manufacturer = "SCORER"
    ds.InstitutionName = site.institution
    ds.InstitutionAddress = site.address
    ds.ReferringPhysicianName = site.referring_physician
    ds.StationName = site.station
    ds.StudyDescription = "XR HANDS BOTH PA" if hands else "XR FEET BOTH DP"
    if image.laterality != "B":
        side = "LEFT" if image.laterality == "L" else "RIGHT"
        ds.StudyDescription = f"XR {image.body_part} {side}"
    ds.SeriesDescription = f"{image.body_part} {'PA' if hands else 'DP'}"
    ds.InstitutionalDepartmentName = site.department
    ds.OperatorsName = site.operator
    ds.ManufacturerModelName = "Synthetic radiograph generator"


def _add_patient(
    ds: Dataset, patient: FakePatient, site: FakeSite, when: dt.datetime, trial: TrialInfo | None
) -> None:
    """The patient's identifiers and, for a trial's film, the clinical trial attributes."""
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.IssuerOfPatientID = site.institution
    ds.PatientBirthDate = f"{patient.birth_date:%Y%m%d}"
    ds.PatientSex = patient.sex
    other = Dataset()
    other.PatientID = patient.hospital_id
    other.IssuerOfPatientID = f"{site.institution} records"
    other.TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence = DicomSequence([other])
    ds.PatientAge = _age(patient.birth_date, when.date())
    ds.PatientComments = SYNTHETIC_NOTE
    if trial is not None:
        ds.ClinicalTrialSponsorName = trial.sponsor
        ds.ClinicalTrialProtocolID = trial.protocol_id
        if trial.protocol_name:
            ds.ClinicalTrialProtocolName = trial.protocol_name
        ds.ClinicalTrialSiteID = trial.site_id
        ds.ClinicalTrialSiteName = trial.site_name or site.institution
        ds.ClinicalTrialSubjectID = trial.subject_id
        ds.ClinicalTrialTimePointID = trial.time_point_id
        if trial.time_point_description:
            ds.ClinicalTrialTimePointDescription = trial.time_point_description


def _add_acquisition(
    ds: Dataset, image: SyntheticImage, site: FakeSite, modality: Modality
) -> None:
    """The exposure, the device and the detector."""
    hands = image.body_part == "HAND"
    ds.BodyPartExamined = image.body_part
    ds.KVP = "50" if hands else "55"
    ds.DistanceSourceToDetector = "1000"
    ds.ExposureTime = "20" if hands else "25"
    ds.XRayTubeCurrent = "100"
    ds.Exposure = "2" if hands else "3"
    ds.DeviceSerialNumber = site.device_serial
    ds.SoftwareVersions = "scorer-synthetic 1"
    ds.ImagerPixelSpacing = [f"{image.pixel_mm:g}", f"{image.pixel_mm:g}"]
    ds.ViewPosition = "PA" if hands else "AP"
    if modality == "DX":
        ds.DetectorType = "SCINTILLATOR"
        ds.DetectorConfiguration = "AREA"
        ds.EstimatedRadiographicMagnificationFactor = "1.0"


def _add_identification(
    ds: Dataset,
    image: SyntheticImage,
    study: FakeStudy,
    modality: Modality,
    series_uid: UID,
    series_number: int,
    instance_number: int,
) -> None:
    """The study and series identification, orientation and laterality."""
    ds.StudyInstanceUID = study.study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = study.study_id
    ds.SeriesNumber = series_number
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = instance_number
    ds.PatientOrientation = ["L", "P"]
    ds.ImageLaterality = image.laterality
    if modality == "CR" and image.laterality in ("L", "R"):
        ds.Laterality = image.laterality


def _add_image_pixel(
    ds: Dataset, image: SyntheticImage, modality: Modality, photometric: Photometric
) -> NDArray[np.uint16]:
    """The Image Pixel, VOI LUT and Modality LUT attributes; returns the stored pixels
    (inverted for MONOCHROME1)."""
    pixels = image.pixels
    if photometric == "MONOCHROME1":
        pixels = (MAX_VALUE - pixels.astype(np.int32)).astype(np.uint16)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows = image.rows
    ds.Columns = image.columns
    ds.PixelSpacing = [f"{image.pixel_mm:g}", f"{image.pixel_mm:g}"]
    ds.BitsAllocated = 16
    ds.BitsStored = image.bits_stored
    ds.HighBit = image.bits_stored - 1
    ds.PixelRepresentation = 0
    ds.BurnedInAnnotation = "NO"
    if modality == "DX":
        ds.PixelIntensityRelationship = "LOG"
        # +1: lower values mean less X-ray intensity (MONOCHROME1 stores air high)
        ds.PixelIntensityRelationshipSign = 1 if photometric == "MONOCHROME1" else -1
    # VOI LUT: a window over the whole exposed range, background black and bone white
    centre, width = image.window
    if photometric == "MONOCHROME1":
        centre = MAX_VALUE - centre
    ds.WindowCenter = str(centre)
    ds.WindowWidth = str(width)
    ds.WindowCenterWidthExplanation = "FULL RANGE"
    # Modality LUT: stored values are the presentation values
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "US"
    ds.LossyImageCompression = "00"
    if modality == "DX":
        ds.PresentationLUTShape = "INVERSE" if photometric == "MONOCHROME1" else "IDENTITY"
    return pixels


def _add_procedure(
    ds: Dataset, image: SyntheticImage, study: FakeStudy, modality: Modality
) -> None:
    """The requested and performed procedure (identifiers nested in a sequence) and, for DX,
    the presentation intent and anatomic region."""
    when = study.when
    # Request and performed procedure: identifiers nested in a sequence
    request = Dataset()
    request.AccessionNumber = study.accession
    request.RequestedProcedureDescription = ds.StudyDescription
    request.ScheduledProcedureStepDescription = ds.SeriesDescription
    request.ScheduledProcedureStepID = study.scheduled_step_id
    request.RequestedProcedureID = study.requested_procedure_id
    ds.RequestAttributesSequence = DicomSequence([request])
    ds.PerformedProcedureStepStartDate = f"{when:%Y%m%d}"
    ds.PerformedProcedureStepStartTime = f"{when:%H%M%S}"
    ds.PerformedProcedureStepID = f"PPS{study.scheduled_step_id[3:]}"
    if modality == "DX":
        ds.PresentationIntentType = "FOR PRESENTATION"
        code, meaning = BODY_CODES[image.body_part]
        ds.AnatomicRegionSequence = DicomSequence([_code(code, meaning)])
        ds.AcquisitionContextSequence = DicomSequence([])


def _add_private(ds: Dataset, patient: FakePatient, study: FakeStudy) -> None:
    """The private block, with identifiers in it."""
    block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "LO", patient.hospital_id)
    block.add_new(0x02, "LO", f"Booked for {patient.given_name} {patient.family_name}")
    block.add_new(0x03, "DA", f"{study.referral_date:%Y%m%d}")


def build_dataset(
    image: SyntheticImage,
    patient: FakePatient,
    study: FakeStudy,
    site: FakeSite,
    *,
    modality: Modality = "DX",
    photometric: Photometric = "MONOCHROME2",
    series_number: int = 1,
    instance_number: int = 1,
    trial: TrialInfo | None = None,
) -> Dataset:
    """A complete, uncompressed (explicit VR little endian) dataset for ``image``.

    DX uses Digital X-Ray Image Storage - For Presentation; CR uses Computed Radiography Image
    Storage. The series and instance UIDs derive from the study UID, the series and instance
    numbers and the image's seed and body part.
    """
    series_uid = derived_uid("series", study.study_uid, str(series_number), image.body_part)
    sop_uid = derived_uid("instance", series_uid, str(instance_number), str(image.seed))
    sop_class = DX_FOR_PRESENTATION if modality == "DX" else CR_IMAGE_STORAGE
    ds = Dataset()
    ds.file_meta = _file_meta(sop_class, sop_uid)
    _add_general(ds, image, study, site, modality, sop_class, sop_uid)
    _add_patient(ds, patient, site, study.when, trial)
    _add_acquisition(ds, image, site, modality)
    _add_identification(ds, image, study, modality, series_uid, series_number, instance_number)
    pixels = _add_image_pixel(ds, image, modality, photometric)
    _add_procedure(ds, image, study, modality)
    _add_private(ds, patient, study)
    ds.PixelData = pixels.tobytes()
    return ds


TransferSyntax = Literal["explicit", "j2k-lossless", "j2k-lossy"]


def write_dicom(
    ds: Dataset,
    path: str | Path,
    transfer_syntax: TransferSyntax = "explicit",
    *,
    ratio: float = 10.0,
) -> Dataset:
    """Write ``ds`` as a DICOM file and return the dataset as written (a copy).

    ``explicit``: explicit VR little endian, uncompressed. ``j2k-lossless``: JPEG 2000
    lossless (same SOP Instance UID: the pixels are unchanged). ``j2k-lossy``: JPEG 2000 at
    ``ratio``:1 (relative to 16-bit storage), marked as lossy with the achieved ratio, and with
    a new SOP Instance UID derived from the original, as lossy compression makes a new image.
    """
    out = copy.deepcopy(ds)
    if transfer_syntax == "j2k-lossless":
        out.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg", generate_instance_uid=False)
    elif transfer_syntax == "j2k-lossy":
        if not ratio > 1.0:
            raise ValueError("a lossy ratio must be above 1")
        raw = len(out.PixelData)
        # The encoder counts the ratio against BitsStored; convert from 16-bit storage.
        encoder_ratio = ratio * out.BitsStored / out.BitsAllocated
        out.compress(
            JPEG2000,
            encoding_plugin="pylibjpeg",
            j2k_cr=[encoder_ratio],
            generate_instance_uid=False,
        )
        uid = derived_uid("lossy", str(ds.SOPInstanceUID), f"{ratio:g}")
        out.SOPInstanceUID = uid
        out.file_meta.MediaStorageSOPInstanceUID = uid
        out.LossyImageCompression = "01"
        achieved = raw / max(len(out.PixelData), 1)
        out.LossyImageCompressionRatio = f"{achieved:.2f}"
        out.LossyImageCompressionMethod = "ISO_15444_1"
        out.DerivationDescription = f"JPEG 2000 lossy compression {achieved:.1f}:1"
    elif transfer_syntax != "explicit":
        raise ValueError(f"unknown transfer syntax {transfer_syntax!r}")
    out.file_meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    out.file_meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    out.save_as(path, enforce_file_format=True)
    return out
