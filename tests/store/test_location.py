"""Where the database lives, and the refusal of SQLite on a network file system."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scorer.store.location import (
    LocationError,
    filesystem_type,
    refuse_network_filesystem,
    resolve,
)


def test_default_is_the_user_data_directory(tmp_path: Path) -> None:
    loc = resolve()
    data = Path(os.environ["SCORER_DATA_DIR"])
    assert loc.url == f"sqlite:///{(data / 'scorer.sqlite').resolve()}"
    assert loc.source == "user data directory"
    assert loc.key_path == data.resolve() / "scorer.audit-key"
    assert loc.receipts_path == data.resolve() / "scorer.receipts"


def test_precedence_flag_then_environment_then_site_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = Path(os.environ["SCORER_CONFIG"])
    config.write_text(
        f'db = "{tmp_path / "site.sqlite"}"\naudit_key = "{tmp_path / "keys" / "k"}"\n',
        encoding="utf-8",
    )
    loc = resolve()
    assert loc.url.endswith("/site.sqlite") and loc.source.startswith("config file")
    assert loc.key_path == tmp_path / "keys" / "k"
    monkeypatch.setenv("SCORER_DB", str(tmp_path / "env.sqlite"))
    loc = resolve()
    assert loc.url.endswith("/env.sqlite") and loc.source == "SCORER_DB"
    loc = resolve(str(tmp_path / "flag.sqlite"))
    assert loc.url.endswith("/flag.sqlite") and loc.source == "--db"
    assert loc.receipts_path == (tmp_path / "flag.receipts").resolve()
    loc = resolve("postgresql+psycopg://u@h/db")
    assert loc.url == "postgresql+psycopg://u@h/db" and loc.sqlite_path is None


def test_a_broken_site_config_is_named(tmp_path: Path) -> None:
    config = Path(os.environ["SCORER_CONFIG"])
    config.write_text("db = [", encoding="utf-8")
    with pytest.raises(LocationError, match=f"config file {config} is not valid TOML"):
        resolve()


MOUNTS = """\
/dev/vda / ext4 rw,relatime 0 0
proc /proc proc rw 0 0
server:/export /mnt/share nfs4 rw,relatime 0 0
//nas/trial /mnt/smb cifs rw 0 0
tmpfs /mnt/share/local tmpfs rw 0 0
"""


@pytest.mark.parametrize(
    ("path", "fs"),
    [
        ("/home/reader/scorer.sqlite", "ext4"),
        ("/mnt/share/trial/x.sqlite", "nfs4"),
        ("/mnt/smb/x.sqlite", "cifs"),
        ("/mnt/share/local/x.sqlite", "tmpfs"),
    ],
)
def test_filesystem_type_uses_the_deepest_mount(path: str, fs: str) -> None:
    assert filesystem_type(Path(path), MOUNTS) == fs


@pytest.mark.parametrize("path", ["/mnt/share/trial/x.sqlite", "/mnt/smb/x.sqlite"])
def test_sqlite_on_a_network_file_system_is_refused(path: str) -> None:
    with pytest.raises(LocationError, match="network file system.*PostgreSQL"):
        refuse_network_filesystem(Path(path), MOUNTS)


def test_local_disk_is_accepted(tmp_path: Path) -> None:
    refuse_network_filesystem(Path("/home/reader/scorer.sqlite"), MOUNTS)
    refuse_network_filesystem(tmp_path / "x.sqlite")  # the real /proc/mounts of this machine


def test_a_password_given_as_a_query_parameter_is_masked_too() -> None:
    """Security review: `--db 'postgresql://u@h/d?password=...'` was printed in clear."""
    from scorer.store.location import display_url

    shown = display_url("postgresql://srv@127.0.0.1:5432/s28?password=QuerySecret999&x=1")
    assert "QuerySecret999" not in shown and shown.startswith("postgresql://srv@127.0.0.1")
    assert "x=1" in shown
    assert "pw" not in display_url("postgresql://srv:pw@h/d?sslmode=require")
