"""image QC: each image's quality-control state and reason, and its decoded pixels' hash

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("qc_state", sa.String(length=16), nullable=False, server_default="passed")
        )
        batch_op.add_column(sa.Column("qc_reason", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("pixel_sha256", sa.String(length=64), nullable=True))
    # Images imported before: passed if nothing was flagged, else waiting for the coordinator.
    op.execute("UPDATE images SET qc_state = 'pending' WHERE flags <> ''")


def downgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_column("pixel_sha256")
        batch_op.drop_column("qc_reason")
        batch_op.drop_column("qc_state")
