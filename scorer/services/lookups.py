"""Lookups several services share: a trial by code, its protocol, a caller's own case or read, case
state."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from scorer.core.protocol import (
    Protocol,
    VisitDef,
)
from scorer.core.protocol import from_json as protocol_from_json
from scorer.core.reads import Read as CoreRead
from scorer.core.readscsv import format_reads_csv
from scorer.core.worklist import LETTERS
from scorer.services.errors import Locked, NotFound, PermissionDenied
from scorer.services.session import UserSession, new_code, with_article
from scorer.store import repository as repo
from scorer.store.database import Tx
from scorer.store.schema import (
    Campaign,
    Worklist,
)


def case_state(read_statuses: Sequence[str], visits: str) -> str:
    """A case's progress from its reads' statuses and its visits (JSON list): "not started",
    "in progress" or "signed" (every visit's read signed)."""
    live = [st for st in read_statuses if st != "void"]
    if not live:
        return "not started"
    if len(live) >= len(json.loads(visits)) and all(st == "signed" for st in live):
        return "signed"
    return "in progress"


def protocol_of(t: Any) -> Protocol:
    if t.config and t.config != "{}":
        return protocol_from_json(t.config)
    return Protocol(
        code=t.code,
        name=t.name,
        methods=tuple(t.methods.split(",")),
        design=t.design,
        visits=tuple(VisitDef(v.label, v.nominal_week) for v in t.visits),
    )


def unique_patient_code(tx: Tx, t: Any) -> str:
    while True:
        code = new_code(8)
        if repo.patient_by_code(tx.session, t, code) is None:
            return code


def find_trial(db: Any, code: str) -> Any:
    t = repo.trial_by_code(db, code)
    if t is None:
        raise NotFound(f"no trial {code!r}")
    return t


def own_case(s: UserSession, db: Any, case_code: str) -> tuple[Any, Any, Any]:
    """A case of the calling reader's worklist with its worklist and trial; NotFound (the
    same answer as for a code that does not exist) for anyone else's."""
    c = repo.case_by_code(db, case_code)
    w = db.get(Worklist, c.worklist_id) if c is not None else None
    if c is None or w is None or w.reader_id != s.user_id:
        raise NotFound("no such case")
    camp = db.get(Campaign, w.campaign_id)
    return c, w, repo.trial_by_id(db, camp.trial_id)


def own_case_of_visit(
    s: UserSession, db: Any, t: Any, patient: Any, visit: str, read_type: str
) -> Any | None:
    """The first case of the calling user's own worklists in trial ``t`` that shows
    ``patient`` at ``visit`` (a label) for reads of ``read_type``; None if there is none."""
    cases = repo.cases_of_reader_patient(db, t, s.user_id, patient.id, read_type)
    return next((c for c in cases if visit in json.loads(c.visits)), None)


def own_read(s: UserSession, db: Any, code: str, write: bool) -> Any:
    r = repo.read_by_code(db, code)
    if r is None:
        raise NotFound("no such read")
    if s.role in ("reader", "adjudicator"):
        if r.reader_id != s.user_id:
            # The same answer as for a read that does not exist: nothing to learn.
            raise NotFound("no such read")
    elif write:
        raise PermissionDenied(f"{with_article(s.role)} does not enter scores")
    elif s.role not in ("coordinator", "monitor"):
        # Administrators keep the system, not the trial: they do not see scores.
        raise PermissionDenied(f"{with_article(s.role)} does not see reads")
    return r


def refuse_if_locked(trial: Any) -> None:
    if trial.locked:
        raise Locked(f"the reading of trial {trial.code} is locked: no read can change")


def case_reads(db: Any, c: Any, t: Any) -> list[tuple[str, Any]]:
    """The case's current (not void) reads, with their visit letters, in letter order."""
    reads = [r for r in repo.reads_of_case(db, c) if r.status != "void"]
    labels = json.loads(c.visits)
    label_of = {v.id: v.label for v in t.visits}
    by_visit = {label_of[r.visit_id]: r for r in reads}
    return [(LETTERS[i], by_visit[v]) for i, v in enumerate(labels) if v in by_visit]


def case_status(db: Any, c: Any) -> str:
    return case_state([r.status for r in repo.reads_of_case(db, c)], c.visits)


def is_released(db: Any, t: Any, user_id: int) -> bool:
    return repo.release_of(db, t, user_id) is not None


def must_calibrate(db: Any, t: Any, s: UserSession, case: Any) -> None:
    """Refuse a trial case to a reader not yet released from calibration."""
    proto = protocol_of(t)
    if not proto.calibration_patients or case.read_type in ("calibration", "adjudication"):
        return
    if s.username == proto.calibration_reference or is_released(db, t, s.user_id):
        return
    raise PermissionDenied(
        "you are in calibration: score your calibration cases first; the coordinator "
        "releases you to the trial's cases"
    )


def rules_of(proto: Protocol) -> Any:
    from scorer.core.totals import MissingDataRules

    return MissingDataRules(
        areas=proto.missing_areas,  # type: ignore[arg-type]
        max_unused_share=proto.max_unused_share,
        operated=proto.operated,  # type: ignore[arg-type]
        visits=proto.missing_visits,  # type: ignore[arg-type]
    )


def reads_digest(db: Any, t: Any) -> str:
    text = format_reads_csv(csv_reads(db, t, real_ids=True))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def csv_reads(db: Any, t: Any, real_ids: bool) -> list[CoreRead]:
    """The trial's reads as the reads CSV holds them: a read opened but not yet scored
    has no rows, so it is not among them."""
    return [r for r in repo.core_reads_of_trial(db, t, real_ids) if r.scores]


def chain_head(db: Any, trial: Any = None) -> dict[str, Any]:
    """The head every export carries (chain name, rows, MAC): of the trial's audit chain, or
    the centre's without a trial."""
    from scorer.store.audit import chain_head

    return dict(chain_head(db, trial.id if trial is not None else None))


def lock_info(db: Any, t: Any) -> dict[str, Any] | None:
    if not t.locked:
        return None
    sig = repo.last_signature(db, t.code)
    return {
        "signature": sig.id,
        "by": sig.printed_name,
        "at": sig.signed_at,
        "meaning": sig.meaning,
        "content_hash": sig.content_hash,
    }
