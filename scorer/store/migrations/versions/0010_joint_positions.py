"""joint positions: where each joint lies on each image (stored-image pixels) and how it was
placed, for the joint view (issue 29)

Revision ID: 0010
Revises: 0009
Create Date: 2027-01-08 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "joint_positions",
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("region", sa.String(length=2), nullable=False),
        sa.Column("joint", sa.String(length=16), nullable=False),
        sa.Column("x", sa.Float(), nullable=False),
        sa.Column("y", sa.Float(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("placed_at", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name="fk_joint_positions_image_id_images"
        ),
        sa.PrimaryKeyConstraint("image_id", "region", "joint", name="pk_joint_positions"),
    )


def downgrade() -> None:
    op.drop_table("joint_positions")
