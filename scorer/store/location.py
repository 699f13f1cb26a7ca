"""Where the database, the audit key and the receipts live.

The database URL comes from ``--db URL``, else ``SCORER_DB``, else the site-wide config file
(so several OS users of one workstation share one database), else the platform user-data
directory. ``SCORER_DATA_DIR`` and ``SCORER_CONFIG`` override the data directory and the config
file's path (tests point both at a temporary folder).
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

APP = "scorer"
NETWORK_FS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb",
        "smb2",
        "smb3",
        "smbfs",
        "afs",
        "9p",
        "fuse.sshfs",
        "glusterfs",
        "ceph",
        "lustre",
        "davfs",
        "fuse.davfs2",
    }
)


class LocationError(ValueError):
    """The database location is unusable (bad config file, network file system, ...)."""


@dataclass(frozen=True)
class Location:
    """The resolved places: database URL, audit key file, receipts file, data directory."""

    url: str
    key_path: Path
    receipts_path: Path
    data_dir: Path
    source: str
    readers_store: Path = Path()
    originals_store: Path = Path()
    #: A reading centre's workstations' POSIX group: the audit key may be readable by it and
    #: the receipts writable by it (config ``audit_group``); None: owner-only.
    audit_group: str | None = None

    def image_file(self, stored: str, original: bool = False) -> Path:
        """Where an image the database names is on this workstation: the database keeps paths
        relative to the store (readers' or originals), so workstations may mount the shared
        store at different places; an absolute path (older databases) is taken as it is."""
        p = Path(stored)
        if p.is_absolute():
            return p
        return (self.originals_store if original else self.readers_store) / p

    def stored_name(self, path: Path, original: bool = False) -> str:
        """How the database names a file in the readers' (or originals) store: relative to
        the store, with forward slashes; a file outside it keeps its absolute path."""
        root = self.originals_store if original else self.readers_store
        try:
            return Path(path).relative_to(root).as_posix()
        except ValueError:
            return str(path)

    @property
    def shown(self) -> str:
        """The URL as it may be printed: its password masked."""
        return display_url(self.url)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        tail = self.url.split(":///", 1)[1] if ":///" in self.url else ""
        return Path(tail) if tail and tail != ":memory:" else None


def site_config_path() -> Path:
    env = os.environ.get("SCORER_CONFIG")
    if env:
        return Path(env)
    if sys.platform.startswith("linux"):
        return Path("/etc/scorer/scorer.toml")
    return Path(platformdirs.site_config_dir(APP, appauthor=False)) / "scorer.toml"


def data_dir() -> Path:
    env = os.environ.get("SCORER_DATA_DIR")
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir(APP, appauthor=False))


def _read_config(path: Path) -> dict[str, object]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise LocationError(f"cannot read the config file {path}: {exc.strerror or exc}") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LocationError(f"the config file {path} is not valid TOML: {exc}") from exc


def configured_server() -> str | None:
    """The site config's ``server = "https://HOST:PORT"`` (a workstation of a reading centre),
    or None."""
    value = _read_config(site_config_path()).get("server")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise LocationError(f"server in {site_config_path()} must be a https://HOST:PORT string")
    return value.strip()


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


_PASSWORD_IN_URL = re.compile(r"(://[^:/@?#]*:)[^@/?#]*@")


def display_url(url: str) -> str:
    """A database URL as it may be printed or logged: the password masked (***)."""
    from sqlalchemy.engine import make_url  # here: the log-in window comes up without it
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return _PASSWORD_IN_URL.sub(r"\1***@", url)
    # A password may come as a query parameter too (libpq's password=...): masked as well.
    secret = {k: "***" for k in parsed.query if k.lower() in ("password", "passfile")}
    return parsed.update_query_dict(secret).render_as_string(hide_password=True)


def _parse_url(url: str) -> URL:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        raise LocationError(f"not a valid database URL: {display_url(url)}") from None


def check_url(url: str) -> None:
    """Refuse what cannot hold a trial: a URL that does not parse, a database other than
    SQLite or PostgreSQL (through psycopg), an in-memory SQLite database (gone when the
    command ends, its audit receipts left behind), a folder given as the SQLite file."""
    parsed = _parse_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        name = parsed.database or ""
        if name in ("", ":memory:") or parsed.query.get("mode") == "memory":
            raise LocationError(
                "an in-memory database cannot hold a trial (it is gone when the command "
                "ends): give --db an SQLite file path, or a PostgreSQL URL"
            )
        if Path(name).expanduser().is_dir():
            raise LocationError(
                f"{name} is a folder, not a database file: give a file in it, such as "
                f"{Path(name) / 'scorer.sqlite'}"
            )
        return
    if backend in ("postgresql", "postgres"):
        if parsed.drivername not in ("postgresql", "postgresql+psycopg"):
            raise LocationError(
                "scorer reaches PostgreSQL through psycopg: write the URL as "
                f"postgresql+psycopg://..., not {parsed.drivername}://"
            )
        if not parsed.database:
            raise LocationError(
                f"the URL {display_url(url)} names no database: end it with /DATABASE"
            )
        return
    raise LocationError(
        "scorer supports SQLite files and PostgreSQL (postgresql+psycopg://...) URLs, "
        f"not {backend!r}"
    )


def chosen_url(db: str | None = None) -> tuple[str, str]:
    """The database URL a command opens, from the flag, the environment, the config or the
    default, and where it came from (not yet checked; no SQLAlchemy import)."""
    config_path = site_config_path()
    config = _read_config(config_path)
    if db:
        url, source = db, "--db"
    elif os.environ.get("SCORER_DB"):
        url, source = os.environ["SCORER_DB"], "SCORER_DB"
    elif isinstance(config.get("db"), str) and config["db"]:
        url, source = str(config["db"]), f"config file {config_path}"
    else:
        url, source = sqlite_url(data_dir() / "scorer.sqlite"), "user data directory"
    if "://" not in url:
        url = sqlite_url(Path(url).expanduser())
    return url, source


def is_postgresql(url: str) -> bool:
    """Whether a database URL names a PostgreSQL database (a reading centre's server)."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    return scheme.split("+", 1)[0].lower() in ("postgresql", "postgres")


def resolve(db: str | None = None) -> Location:
    """Resolve the database location from the flag, the environment, the config, the default."""
    config_path = site_config_path()
    config = _read_config(config_path)
    base = data_dir()
    url, source = chosen_url(db)
    check_url(url)
    key = config.get("audit_key")
    receipts = config.get("receipts")
    db_file = Location(url, Path(), Path(), base, source).sqlite_path
    loc_dir = db_file.parent if db_file is not None else base
    stem = db_file.stem if db_file is not None else "scorer"
    # By default beside an SQLite file (one folder for an admin to protect), or in the data
    # directory for a server database; the config file may put either elsewhere.
    key_path = Path(str(key)) if key else loc_dir / f"{stem}.audit-key"
    receipts_path = Path(str(receipts)) if receipts else loc_dir / f"{stem}.receipts"
    # The readers' de-identified copies and the byte-identical originals live apart, so the
    # centre's file permissions can keep readers' accounts away from the originals.
    readers = os.environ.get("SCORER_READERS_STORE") or config.get("readers_store")
    originals = os.environ.get("SCORER_ORIGINALS_STORE") or config.get("originals_store")
    readers_store = Path(str(readers)) if readers else loc_dir / f"{stem}-images" / "readers"
    originals_store = (
        Path(str(originals)) if originals else loc_dir / f"{stem}-images" / "originals"
    )
    group = config.get("audit_group")
    if group is not None and (not isinstance(group, str) or not group):
        raise LocationError(f"audit_group in {config_path} must be a group name")
    return Location(
        url, key_path, receipts_path, base, source, readers_store, originals_store, group or None
    )


def filesystem_type(path: Path, mounts_text: str | None = None) -> str | None:
    """The file-system type holding ``path`` from /proc/mounts (Linux); None elsewhere."""
    if mounts_text is None:
        try:
            mounts_text = Path("/proc/mounts").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    target = path.resolve()  # non-strict: the file need not exist yet
    best: tuple[int, str] | None = None
    for line in mounts_text.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        mount = Path(parts[1].replace("\\040", " "))
        try:
            target.relative_to(mount)
        except ValueError:
            continue
        depth = len(mount.parts)
        if best is None or depth >= best[0]:
            best = (depth, parts[2])
    return best[1] if best else None


def refuse_network_filesystem(path: Path, mounts_text: str | None = None) -> None:
    """Raise LocationError if an SQLite file would sit on a network file system."""
    fs = filesystem_type(path, mounts_text)
    if fs is not None and (fs in NETWORK_FS or fs.startswith("nfs") or fs.startswith("smb")):
        raise LocationError(
            f"{path} is on a network file system ({fs}). SQLite must not be shared over a "
            "network: several workstations corrupt it. Use PostgreSQL for a reading centre "
            "(--db postgresql+psycopg://user@server/scorer), or keep the SQLite file on a "
            "local disk."
        )
