"""server sessions: the log-in sessions `scorer server` holds (each bearer token's SHA-256,
never the token) and its log-in attempts for the rate limit

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-12 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "server_sessions",
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("started", sa.String(length=32), nullable=False),
        sa.Column("last_active", sa.String(length=32), nullable=False),
        sa.Column("must_change_password", sa.Boolean(), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("signed_once", sa.Boolean(), nullable=False),
        sa.Column("password_mark", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_server_sessions_user_id_users"),
        sa.PrimaryKeyConstraint("token_sha256", name="pk_server_sessions"),
    )
    op.create_table(
        "server_login_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_server_login_attempts"),
    )
    op.create_index("ix_server_login_attempts_key_at", "server_login_attempts", ["key", "at"])


def downgrade() -> None:
    op.drop_index("ix_server_login_attempts_key_at", table_name="server_login_attempts")
    op.drop_table("server_login_attempts")
    op.drop_table("server_sessions")
