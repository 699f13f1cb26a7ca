"""audit rows name their log-in session; flags keep the visit and images the reader had on
screen; drift alerts (issue 30)

Revision ID: 0011
Revises: 0010
Create Date: 2027-01-15 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing rows get "": their MACs were computed without a session and stay valid (the
    # MAC covers the session only when there is one).
    op.add_column(
        "audit_events",
        sa.Column("session", sa.String(length=32), server_default="", nullable=False),
    )
    with op.batch_alter_table("reader_flags") as batch:
        batch.add_column(sa.Column("visit_id", sa.Integer(), nullable=True))
        # NULL on the flags before: the trail never named a value for them, and the replay
        # takes a column it never saw as NULL.
        batch.add_column(sa.Column("images", sa.Text(), nullable=True))
        batch.create_foreign_key(
            "fk_reader_flags_visit_id_visits", "visits", ["visit_id"], ["id"]
        )
    op.create_table(
        "drift_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("reader_id", sa.Integer(), nullable=False),
        sa.Column("measure", sa.String(length=32), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("statistic", sa.Float(), nullable=False),
        sa.Column("limit", sa.Float(), nullable=False),
        sa.Column("reads", sa.Integer(), nullable=False),
        sa.Column("raised_at", sa.String(length=32), nullable=False),
        sa.Column("acknowledged_by", sa.Integer(), nullable=True),
        sa.Column("acknowledged_at", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["trial_id"], ["trials.id"], name="fk_drift_alerts_trial_id_trials"
        ),
        sa.ForeignKeyConstraint(
            ["reader_id"], ["users.id"], name="fk_drift_alerts_reader_id_users"
        ),
        sa.ForeignKeyConstraint(
            ["acknowledged_by"], ["users.id"], name="fk_drift_alerts_acknowledged_by_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_drift_alerts"),
    )


def downgrade() -> None:
    op.drop_table("drift_alerts")
    with op.batch_alter_table("reader_flags") as batch:
        batch.drop_constraint("fk_reader_flags_visit_id_visits", type_="foreignkey")
        batch.drop_column("images")
        batch.drop_column("visit_id")
    op.drop_column("audit_events", "session")
