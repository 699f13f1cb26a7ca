"""coordination: image masks, missing regions, reader releases, adjudication queue

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 19:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("masks", sa.Text(), nullable=False, server_default=""))
    op.create_table(
        "missing_regions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("region", sa.String(length=2), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["trial_id"], ["trials.id"], name="fk_missing_regions_trial_id_trials"
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name="fk_missing_regions_patient_id_patients"
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"], ["visits.id"], name="fk_missing_regions_visit_id_visits"
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name="fk_missing_regions_created_by_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_missing_regions"),
        sa.UniqueConstraint("patient_id", "visit_id", "region", name="uq_missing_regions_area"),
    )
    op.create_table(
        "releases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("released_by", sa.Integer(), nullable=False),
        sa.Column("released_at", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["trial_id"], ["trials.id"], name="fk_releases_trial_id_trials"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_releases_user_id_users"),
        sa.ForeignKeyConstraint(
            ["released_by"], ["users.id"], name="fk_releases_released_by_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_releases"),
        sa.UniqueConstraint("trial_id", "user_id", name="uq_releases_reader"),
    )
    op.create_table(
        "adjudications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("adjudicator_id", sa.Integer(), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("queued_at", sa.String(length=32), nullable=False),
        sa.Column("done_at", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["trial_id"], ["trials.id"], name="fk_adjudications_trial_id_trials"
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name="fk_adjudications_patient_id_patients"
        ),
        sa.ForeignKeyConstraint(
            ["adjudicator_id"], ["users.id"], name="fk_adjudications_adjudicator_id_users"
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_adjudications_case_id_cases"),
        sa.PrimaryKeyConstraint("id", name="pk_adjudications"),
        sa.UniqueConstraint("trial_id", "patient_id", name="uq_adjudications_patient"),
    )


def downgrade() -> None:
    op.drop_table("adjudications")
    op.drop_table("releases")
    op.drop_table("missing_regions")
    with op.batch_alter_table("images") as batch:
        batch.drop_column("masks")
