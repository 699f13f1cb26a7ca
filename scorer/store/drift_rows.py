"""The rows reader drift is computed from and kept in: signed reads in the order they were
signed, and the drift alerts of a trial."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scorer.store.schema import DriftAlert, Read, Signature, Trial


def signed_reads_in_order(db: Session, t: Trial) -> list[Read]:
    """The trial's signed reads in the order they were (last) signed; a read signed without a
    signature row (imported) counts from its last update. Ties keep the reads' creation order."""
    signed = (
        select(Signature.entity_id, func.max(Signature.signed_at).label("at"))
        .where(Signature.entity == "read", Signature.kind == "sign")
        .group_by(Signature.entity_id)
        .subquery()
    )
    rows = db.execute(
        select(Read, signed.c.at)
        .outerjoin(signed, signed.c.entity_id == Read.code)
        .where(Read.trial_id == t.id, Read.status == "signed")
    ).all()
    ordered = sorted(rows, key=lambda row: (row[1] or row[0].updated_at, row[0].id))
    return [r for r, _ in ordered]


def drift_alerts_of(db: Session, t: Trial) -> list[DriftAlert]:
    """A trial's drift alerts, oldest first."""
    return list(
        db.scalars(select(DriftAlert).where(DriftAlert.trial_id == t.id).order_by(DriftAlert.id))
    )
