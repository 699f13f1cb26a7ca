"""audit baseline: the trail becomes the record; every row already in the database is written
into it once, so replaying the trail rebuilds the tables of a database made before

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 01:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from scorer.store.projection import baseline_into_trail

    key = op.get_context().config.attributes.get("audit_key")  # type: ignore[union-attr]
    if key is None:
        raise RuntimeError(
            "the 0008 migration writes the audit trail's baseline and needs the audit key: "
            "run it through `scorer migrate`"
        )
    baseline_into_trail(op.get_bind(), key)


def downgrade() -> None:
    # The baseline rows are part of the append-only trail: they stay.
    pass
