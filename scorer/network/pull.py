"""Pulling a patient's radiographs from a PACS: C-FIND for the studies, then C-GET (the
images come back on the same association and are imported here) or C-MOVE (the PACS sends
them to a running receiver, ``scorer receive``, under the AE title it knows it by)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset

from scorer.network.common import (
    STORAGE_CLASSES,
    TRANSFER_SYNTAXES,
    Arrival,
    Importer,
    NetworkError,
    Peer,
    check_ae_title,
    status_dataset,
)

if TYPE_CHECKING:
    from pynetdicom import AE
    from pynetdicom.association import Association

    from scorer.workspace import UserSession, Workspace

log = logging.getLogger("scorer.network")

FIND_MODEL = "1.2.840.10008.5.1.4.1.2.2.1"  # Study Root Query/Retrieve - FIND
GET_MODEL = "1.2.840.10008.5.1.4.1.2.2.3"  # Study Root Query/Retrieve - GET
MOVE_MODEL = "1.2.840.10008.5.1.4.1.2.2.2"  # Study Root Query/Retrieve - MOVE

#: (done, total, what): total is None until the PACS has said how many.
Progress = Callable[[int, int | None, str], None]


@dataclass
class PullReport:
    """The studies found and what became of their instances."""

    studies: list[dict[str, str]] = field(default_factory=list)
    arrivals: list[Arrival] = field(default_factory=list)
    moved: dict[str, int] = field(default_factory=dict)  # C-MOVE: the PACS's counts
    failures: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for a in self.arrivals if a.status == status)

    def to_dict(self) -> dict[str, Any]:
        return {
            "studies": self.studies,
            "imported": self.count("imported"),
            "duplicates": self.count("duplicate"),
            "refused": self.count("refused"),
            "moved": self.moved,
            "failures": self.failures,
            "instances": [a.to_dict() for a in self.arrivals],
        }


def _status_text(status: Any) -> str:
    code = int(getattr(status, "Status", -1))
    comment = str(getattr(status, "ErrorComment", "") or "")
    return f"status 0x{code:04X}" + (f" ({comment})" if comment else "")


def _application_entity(aet: str, move_to: str | None, timeout_s: float) -> tuple[AE, list[Any]]:
    """Our AE, asking for C-FIND and either C-GET (with a storage context per class and syntax,
    and the SCP roles to negotiate for them) or C-MOVE."""
    from pynetdicom import AE, build_role

    ae = AE(ae_title=aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    ae.add_requested_context(FIND_MODEL)
    roles: list[Any] = []
    if move_to is None:
        ae.add_requested_context(GET_MODEL)
        # One context per class and syntax, so the PACS can send each image as it holds it.
        for sop_class in STORAGE_CLASSES:
            for syntax in TRANSFER_SYNTAXES:
                ae.add_requested_context(sop_class, syntax)
            roles.append(build_role(sop_class, scp_role=True))
    else:
        ae.add_requested_context(MOVE_MODEL)
    return ae, roles


def _find_studies(
    assoc: Association, source: Peer, aet: str, patient: str, study: str | None
) -> list[dict[str, str]]:
    """C-FIND: the patient's studies at ``source`` (or the one ``study``); none is an error."""
    studies: list[dict[str, str]] = []
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientID = patient
    query.StudyInstanceUID = study or ""
    query.StudyDate = ""
    query.StudyDescription = ""
    query.NumberOfStudyRelatedInstances = ""
    for status, found in assoc.send_c_find(query, FIND_MODEL):
        code = int(getattr(status, "Status", -1))
        if code in (0xFF00, 0xFF01) and found is not None:
            uid = str(found.get("StudyInstanceUID", "") or "")
            if uid and (study is None or uid == study):
                studies.append(
                    {
                        "study_instance_uid": uid,
                        "date": str(found.get("StudyDate", "") or ""),
                        "description": str(found.get("StudyDescription", "") or ""),
                        "instances": str(found.get("NumberOfStudyRelatedInstances", "") or ""),
                    }
                )
        elif code == -1:
            raise NetworkError(
                f"{source} ended the association without answering the query (does it "
                f"know our AE title {aet}?)"
            )
        elif code != 0x0000:
            raise NetworkError(f"{source} refused the query: {_status_text(status)}")
    if not studies:
        what = f"study {study} of patient {patient}" if study else f"patient {patient}"
        raise NetworkError(f"{source} has no {what}")
    return studies


def _suboperations(status: Dataset) -> int:
    """The sub-operations a C-GET or C-MOVE status says are done (completed, failed, warning)."""
    return sum(
        int(status.get(k) or 0)
        for k in (
            "NumberOfCompletedSuboperations",
            "NumberOfFailedSuboperations",
            "NumberOfWarningSuboperations",
        )
    )


def _retrieve_study(
    assoc: Association,
    st: Mapping[str, str],
    patient: str,
    source: Peer,
    move_to: str | None,
    report: PullReport,
    expected: list[int | None],
    base: int,
    progress: Progress | None,
) -> int:
    """C-GET or C-MOVE one study found; ``base`` is the count of the studies' instances before
    it, the count after it is returned. Updates ``expected`` (the total, as the PACS says it)
    and records a failure in ``report``."""
    ident = Dataset()
    ident.QueryRetrieveLevel = "STUDY"
    ident.PatientID = patient
    ident.StudyInstanceUID = st["study_instance_uid"]
    responses = (
        assoc.send_c_get(ident, GET_MODEL)
        if move_to is None
        else assoc.send_c_move(ident, move_to, MOVE_MODEL)
    )
    last: Any = None
    for status, _ in responses:
        if status is None or "Status" not in status:
            raise NetworkError(f"{source} stopped answering during the retrieve")
        last = status
        remaining = status.get("NumberOfRemainingSuboperations")
        done = _suboperations(status)
        if remaining is not None:
            expected[0] = max(expected[0] or 0, base + done + int(remaining))
        if move_to is not None and progress:
            progress(base + done, expected[0], "moved")
    code = int(getattr(last, "Status", -1))
    if move_to is None:
        base = len(report.arrivals)
    elif last is not None:
        base += _suboperations(last)
    if move_to is not None and last is not None:
        for key, name in (
            ("NumberOfCompletedSuboperations", "completed"),
            ("NumberOfFailedSuboperations", "failed"),
            ("NumberOfWarningSuboperations", "warning"),
        ):
            report.moved[name] = report.moved.get(name, 0) + int(last.get(key) or 0)
    if code not in (0x0000, 0xB000):
        report.failures.append(
            f"study {st['study_instance_uid']}: {_status_text(last)}"
            + (
                f" (is {move_to} a destination {source.aet} knows, and is it running?)"
                if move_to and not int(last.get("NumberOfCompletedSuboperations") or 0)
                else ""
            )
        )
    return base


def pull(
    ws: Workspace,
    s: UserSession,
    trial: str,
    source: Peer,
    patient: str,
    study: str | None = None,
    *,
    aet: str = "SCORER",
    move_to: str | None = None,
    progress: Progress | None = None,
    timeout_s: float = 120.0,
) -> PullReport:
    """Find the patient's studies at ``source`` (or the one ``study``) and retrieve them:
    by C-GET into ``trial``, or by C-MOVE to ``move_to`` (a receiver's AE title)."""
    from pynetdicom import evt

    check_ae_title(aet, "--aet")
    if move_to is not None:
        check_ae_title(move_to, "--move-to")
    if not patient.strip():
        raise NetworkError("--patient: give the patient ID as the PACS knows it")
    if ws.images.dicom_settings(s, trial).locked:  # a coordinator, and the trial exists
        raise NetworkError(f"trial {trial} is locked: it takes no more images")
    report = PullReport()

    ae, roles = _application_entity(aet, move_to, timeout_s)
    importer = Importer(ws, s, trial)
    peer_text = str(source)

    def on_store(event: Any) -> Any:
        sop_uid = str(getattr(event.request, "AffectedSOPInstanceUID", "") or "")
        status, arrival = importer.take(
            event.encoded_dataset(), source.aet, peer_text, sop_uid, {"dicom_pull": peer_text}
        )
        report.arrivals.append(arrival)
        if progress:
            progress(len(report.arrivals), expected[0], arrival.status)
        return status_dataset(status, arrival.reason)

    expected: list[int | None] = [None]
    handlers: list[Any] = [(evt.EVT_C_STORE, on_store)] if move_to is None else []
    assoc = ae.associate(
        source.host, source.port, ae_title=source.aet, ext_neg=roles, evt_handlers=handlers
    )
    if not assoc.is_established:
        why = "refused the association" if assoc.is_rejected else "did not answer"
        raise NetworkError(
            f"{source} {why} (is our AE title {aet} known to it, and the address right?)"
        )
    if move_to is None:
        importer.open()
    try:
        report.studies = _find_studies(assoc, source, aet, patient, study)
        counts = [st["instances"] for st in report.studies]
        if all(c.isdigit() for c in counts):  # the PACS said how many: the total is known
            expected[0] = sum(int(c) for c in counts)
        base = 0  # instances of the studies before this one
        for st in report.studies:
            base = _retrieve_study(
                assoc, st, patient, source, move_to, report, expected, base, progress
            )
    finally:
        assoc.release()
        importer.close()
    ws.images.audit_dicom(
        s,
        trial,
        "dicom.pull",
        {
            "from": peer_text,
            "how": "C-GET" if move_to is None else f"C-MOVE to {move_to}",
            "studies": len(report.studies),
            "imported": report.count("imported"),
            "duplicates": report.count("duplicate"),
            "refused": report.count("refused"),
            **({"moved": {k: v for k, v in report.moved.items()}} if move_to else {}),
            "failures": len(report.failures),
        },
    )
    return report
