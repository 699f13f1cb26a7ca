"""Schema migrations (Alembic), run by scorer itself on an open connection.

Opening a database only compares its revision with this scorer's head; that needs neither
Alembic (a quarter of a second to import) nor its script directory: the head is read from the
revision files' own ``revision`` / ``down_revision`` lines and the current revision from the
``alembic_version`` table. Alembic is imported when there is something to migrate.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_LINE = re.compile(r"""^(down_revision|revision)\s*=\s*(?:['"]([^'"]+)['"]|None)""", re.M)


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def revisions() -> list[str]:
    """Every revision id, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return [r.revision for r in reversed(list(script.walk_revisions()))]


@cache
def head_revision() -> str:
    """The newest revision, from the revision files themselves (the one no other revision
    names as its ``down_revision``)."""
    revs: set[str] = set()
    downs: set[str] = set()
    for f in sorted((MIGRATIONS / "versions").glob("*.py")):
        found = dict((k, v) for k, v in _LINE.findall(f.read_text(encoding="utf-8")))
        if found.get("revision"):
            revs.add(found["revision"])
            if found.get("down_revision"):
                downs.add(found["down_revision"])
    heads = revs - downs
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


def current_revision(engine: Engine) -> str | None:
    """The database's revision (None: no schema yet)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine, revision: str = "head", key: bytes | None = None) -> None:
    """Bring the schema up to ``revision`` in one transaction; ``key`` (the audit key) is
    needed from revision 0008 on, which writes the audit trail's baseline."""
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        cfg.attributes["audit_key"] = key
        command.upgrade(cfg, revision)
