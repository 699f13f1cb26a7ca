"""audit trail and event log: one chain per trial and a centre chain (issue 31)

Revision ID: 0012
Revises: 0011
Create Date: 2027-02-01 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

#: PostgreSQL sequences giving ``seq`` across chains (SQLite writes one at a time and takes the
#: next number itself).
ORDER_SEQUENCES = {"audit_events": "audit_events_order", "events": "events_order"}


def upgrade() -> None:
    # Every row before this revision stays where it is: in the centre chain (0), its place
    # its seq (link NULL), its MAC as written; no row of the append-only tables is changed.
    for table in ORDER_SEQUENCES:
        op.add_column(table, sa.Column("chain", sa.Integer(), server_default="0", nullable=False))
        op.add_column(table, sa.Column("link", sa.Integer(), nullable=True))
        op.create_index(f"ux_{table}_chain_link", table, ["chain", "link"], unique=True)
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table, sequence in ORDER_SEQUENCES.items():
            query = sa.text(f"SELECT coalesce(max(seq), 0) FROM {table}")
            last = int(bind.execute(query).scalar_one())
            op.execute(f"CREATE SEQUENCE {sequence} AS bigint MINVALUE 1 START WITH {last + 1}")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for sequence in ORDER_SEQUENCES.values():
            op.execute(f"DROP SEQUENCE IF EXISTS {sequence}")
    for table in ORDER_SEQUENCES:
        op.drop_index(f"ux_{table}_chain_link", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("link")
            batch.drop_column("chain")
