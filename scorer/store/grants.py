"""The privileges of the database role a reading centre's server logs in as on PostgreSQL.

The database belongs to an owner role (it runs ``scorer init`` and ``scorer migrate``); the
server (``scorer server``) connects as a separate role, which only the server's host holds,
that can read and change trial data but can only append to the audit trail, the event log and
the signatures: no UPDATE, DELETE or TRUNCATE there, and, not being the owner, it cannot drop
the append-only triggers or alter a table. So whoever gets hold of those credentials still
cannot rewrite or cut the trail; PostgreSQL refuses before any trigger runs. A centre whose
workstations used to log in to the database themselves takes their old role's privileges
away (:func:`revoke_workstation`).
"""

from __future__ import annotations

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from scorer.store.schema import APPEND_ONLY_TABLES

#: What the workstation role may do on every table but the append-only ones and the schema
#: revision.
TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"


class GrantError(ValueError):
    """The role cannot be given the workstation's privileges (named in the message)."""


def _checked(conn: Connection, role: str) -> str:
    """The database's name, after checking that ``role`` exists, is neither a superuser nor
    the database's or its tables' owner (privileges do not bind either), and that the
    connection's user owns scorer's tables (or is a superuser)."""
    if conn.dialect.name != "postgresql":
        raise GrantError(
            "database roles are PostgreSQL's: an SQLite file is protected only by the operating "
            "system's file permissions"
        )
    found = conn.execute(
        text("SELECT rolsuper, rolcanlogin FROM pg_roles WHERE rolname = :r"), {"r": role}
    ).first()
    if found is None:
        raise GrantError(
            f"there is no PostgreSQL role {role!r}: create it first, as the database's owner "
            f"or a superuser: CREATE ROLE {role} LOGIN PASSWORD '...'"
        )
    if found[0]:
        raise GrantError(f"{role!r} is a superuser: no privilege binds it; use an ordinary role")
    database, owner = conn.execute(
        text(
            "SELECT d.datname, pg_get_userbyid(d.datdba) FROM pg_database d "
            "WHERE d.datname = current_database()"
        )
    ).one()
    tables_owner = conn.execute(
        text("SELECT tableowner FROM pg_tables WHERE schemaname = 'public' AND tablename = :t"),
        {"t": "audit_events"},
    ).scalar()
    if tables_owner is None:
        raise GrantError("this database has no scorer schema yet: run scorer init first")
    me, me_super = conn.execute(
        text("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
    ).one()
    if me != tables_owner and not me_super:
        # A GRANT by someone without the right is only a warning in PostgreSQL: refuse here.
        raise GrantError(
            f"you are connected as {me!r}; run this as the owner of scorer's tables "
            f"({tables_owner!r})"
        )
    if role in (owner, tables_owner):
        raise GrantError(
            f"{role!r} owns the database or its tables, so it could drop the append-only "
            "triggers; the server needs a role of its own"
        )
    return str(database)


def workstation_statements(conn: Connection, role: str) -> list[str]:
    """The GRANT and REVOKE statements for ``role`` (the role the reading-centre server logs
    in as), after :func:`_checked`."""
    database = _checked(conn, role)
    q = conn.dialect.identifier_preparer.quote
    r, db = q(role), q(database)
    trail = ", ".join(q(t) for t in APPEND_ONLY_TABLES)
    return [
        f"GRANT CONNECT ON DATABASE {db} TO {r}",
        f"GRANT USAGE ON SCHEMA public TO {r}",
        f"REVOKE CREATE ON SCHEMA public FROM {r}",
        f"GRANT {TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA public TO {r}",
        f"REVOKE UPDATE, DELETE, TRUNCATE ON {trail} FROM {r}",
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM {r}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {r}",
    ]


def grant_workstation(conn: Connection, role: str) -> list[str]:
    """Give ``role`` the workstation's privileges on the connection's database (inside the
    caller's transaction); returns the statements run."""
    statements = workstation_statements(conn, role)
    try:
        for sql in statements:
            conn.exec_driver_sql(sql)
    except DBAPIError as exc:
        raise GrantError(f"{exc.orig or exc} (run this as the database's owner)") from exc
    return statements


def revoke_statements(conn: Connection, role: str, drop: bool = False) -> list[str]:
    """The statements that take every privilege :func:`workstation_statements` gave ``role``
    away (an old workstation role, once the server holds the database), and with ``drop`` the
    role itself; after :func:`_checked`."""
    database = _checked(conn, role)
    q = conn.dialect.identifier_preparer.quote
    r, db = q(role), q(database)
    statements = [
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {r}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {r}",
        f"REVOKE ALL ON SCHEMA public FROM {r}",
        f"REVOKE ALL ON DATABASE {db} FROM {r}",
    ]
    if drop:
        statements.append(f"DROP ROLE {r}")
    return statements


def revoke_workstation(conn: Connection, role: str, drop: bool = False) -> list[str]:
    """Take ``role``'s privileges on the connection's database away (inside the caller's
    transaction), and drop it when asked; returns the statements run."""
    statements = revoke_statements(conn, role, drop)
    sql = ""
    try:
        for sql in statements:
            conn.exec_driver_sql(sql)
    except DBAPIError as exc:
        hint = (
            "dropping a role needs a superuser or a role with CREATEROLE, and a role that "
            "holds no privileges or objects in other databases"
            if sql.startswith("DROP ROLE")
            else "run this as the database's owner"
        )
        raise GrantError(f"{exc.orig or exc} ({hint})") from exc
    return statements
