"""Triggers that make the audit trail, signatures and event log append-only."""

from __future__ import annotations

from sqlalchemy import Connection

from scorer.store.schema import APPEND_ONLY_TABLES


def create_append_only_triggers(conn: Connection) -> None:
    """Reject UPDATE and DELETE on the append-only tables (SQLite and PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "CREATE OR REPLACE FUNCTION scorer_append_only() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION '%% is append-only', TG_TABLE_NAME; END $$ LANGUAGE plpgsql"
        )
        for t in APPEND_ONLY_TABLES:
            conn.exec_driver_sql(
                f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
                "FOR EACH ROW EXECUTE FUNCTION scorer_append_only()"
            )
        return
    for t in APPEND_ONLY_TABLES:
        for op in ("UPDATE", "DELETE"):
            conn.exec_driver_sql(
                f"CREATE TRIGGER {t}_no_{op.lower()} BEFORE {op} ON {t} "
                f"BEGIN SELECT RAISE(ABORT, '{t} is append-only'); END"
            )


def drop_append_only_triggers(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        for t in APPEND_ONLY_TABLES:
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {t}_append_only ON {t}")
        conn.exec_driver_sql("DROP FUNCTION IF EXISTS scorer_append_only()")
        return
    for t in APPEND_ONLY_TABLES:
        for op in ("update", "delete"):
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {t}_no_{op}")
