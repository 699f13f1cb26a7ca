"""password history: the hashes of each account's last passwords

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "password_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("set_at", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_password_history_user_id_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_password_history"),
    )
    # The current passwords start each account's history.
    op.execute(
        "INSERT INTO password_history (user_id, password_hash, set_at) "
        "SELECT id, password_hash, created_at FROM users WHERE password_hash LIKE '$argon2%'"
    )


def downgrade() -> None:
    op.drop_table("password_history")
