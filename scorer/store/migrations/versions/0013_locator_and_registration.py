"""the automatic joint locator's runs and joints, and joint positions proposed by registering
a patient's films across visits (issue 32)

Revision ID: 0013
Revises: 0012
Create Date: 2027-02-15 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _joint_key() -> list[sa.Column[object]]:
    """The key of a table with a row per joint of an image."""
    return [
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("region", sa.String(length=2), nullable=False),
        sa.Column("joint", sa.String(length=16), nullable=False),
    ]


def upgrade() -> None:
    # Images imported before this revision have no run: the desk says the locator never saw
    # them (it runs at import), and their positions stay as placed.
    op.create_table(
        "locator_runs",
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("regions", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("ran_at", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name="fk_locator_runs_image_id_images"
        ),
        sa.PrimaryKeyConstraint("image_id", name="pk_locator_runs"),
    )
    op.create_table(
        "located_joints",
        *_joint_key(),
        sa.Column("x", sa.Float(), nullable=False),
        sa.Column("y", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("sure", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name="fk_located_joints_image_id_images"
        ),
        sa.PrimaryKeyConstraint("image_id", "region", "joint", name="pk_located_joints"),
    )
    op.create_table(
        "joint_proposals",
        *_joint_key(),
        sa.Column("reference_id", sa.Integer(), nullable=False),
        sa.Column("x", sa.Float(), nullable=False),
        sa.Column("y", sa.Float(), nullable=False),
        sa.Column("quality", sa.Float(), nullable=False),
        sa.Column("sure", sa.Boolean(), nullable=False),
        sa.Column("distance_mm", sa.Float(), nullable=True),
        sa.Column("computed_at", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name="fk_joint_proposals_image_id_images"
        ),
        sa.ForeignKeyConstraint(
            ["reference_id"], ["images.id"], name="fk_joint_proposals_reference_id_images"
        ),
        sa.PrimaryKeyConstraint("image_id", "region", "joint", name="pk_joint_proposals"),
    )


def downgrade() -> None:
    op.drop_table("joint_proposals")
    op.drop_table("located_joints")
    op.drop_table("locator_runs")
