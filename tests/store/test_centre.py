"""The file rules of a store shared by several OS accounts (a reading centre's set-up before
its server, and still what the server's host relies on), with real accounts and files: the
audit key and receipts shared with the workstations' group (and nobody else), the receipts
file append-only on the file server, and the shared image store reached by each workstation at
its own mount point, its originals out of the workstation accounts' reach, its caches local.

The "other accounts" are real: a forked copy of the test process drops to the ``postgres``
account (in the workstations' group here) or to ``nobody`` (not in it) before it opens the
workspace, so the kernel's permission checks are the ones a workstation meets.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scorer.workspace import ScorerError, Workspace
from tests.behind import behind
from tests.intake.dicom_maker import make_dx, write
from tests.pg import PgServer, pg_server  # noqa: F401  (the fixture)

pytestmark = [
    pytest.mark.posix,
    pytest.mark.skipif(
        not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to switch accounts"
    ),
]

ADMIN = ("ada", "Ada Admin", "Sunflower-Meadow-7")
COORD = ("cora", "Cora Coordinator", "Willow-Compass-2024")
GROUP = "postgres"  # the workstations' group in these tests (the postgres account is in it)


def account(name: str) -> tuple[int, int]:
    entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def as_account(name: str, env: dict[str, str], fn: Callable[[], str]) -> str:
    """Run ``fn`` in a forked child that has become the account ``name`` (its own groups only)
    with ``env`` added to its environment; returns ``"ok <result>"`` or ``"error <what>"``."""
    uid, gid = account(name)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(read_end)
        try:
            os.setgroups([gid])
            os.setgid(gid)
            os.setuid(uid)
            os.environ.update(env)
            message = "ok " + fn()
        except BaseException as exc:  # reported to the parent
            message = f"error {type(exc).__name__}: {exc}\n{traceback.format_exc()}"
        os.write(write_end, message.encode("utf-8", "replace"))
        os._exit(0)
    os.close(write_end)
    chunks = []
    with os.fdopen(read_end, "rb") as fh:
        chunks.append(fh.read())
    os.waitpid(pid, 0)
    return b"".join(chunks).decode("utf-8")


@dataclass
class Centre:
    folder: Path  # reachable by every account (in the system's temporary folder)
    url: str
    config: Path  # the coordinator's workstation's config
    share: Path

    def env(self, config: Path | None = None, data: str = "data") -> dict[str, str]:
        return {
            "SCORER_CONFIG": str(config or self.config),
            "SCORER_DATA_DIR": str(self.folder / data),
        }

    def workstation_config(self, mount: Path, name: str) -> Path:
        """Another workstation's config: the same server, key and receipts, the store where
        this workstation mounts it."""
        path = self.folder / f"{name}.toml"
        path.write_text(
            f'db = "{self.url}"\n'
            f'audit_key = "{self.share / "audit" / "centre.audit-key"}"\n'
            f'receipts = "{self.share / "audit" / "centre.receipts"}"\n'
            f'audit_group = "{GROUP}"\n'
            f'readers_store = "{mount / "readers"}"\n'
            f'originals_store = "{mount / "originals"}"\n',
            encoding="utf-8",
        )
        return path

    def data_dir_for(self, name: str) -> str:
        """A local data folder (the image cache) owned by account ``name``."""
        d = self.folder / f"data-{name}"
        d.mkdir(exist_ok=True)
        uid, gid = account(name)
        os.chown(d, uid, gid)
        return d.name


@pytest.fixture
def centre(
    pg_server: PgServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Centre]:
    """A server database set up by the coordinator's workstation, with the key and receipts
    in the share's audit folder for the workstations' group."""
    folder = Path(tempfile.mkdtemp(prefix="scorer-centre-"))
    folder.chmod(0o755)
    share = folder / "share"
    share.mkdir()
    url = pg_server.new_database()
    c = Centre(folder, url, folder / "cora.toml", share)
    c.config = c.workstation_config(share, "cora")
    for k, v in c.env().items():
        monkeypatch.setenv(k, v)
    ws = Workspace.initialize(*ADMIN)
    try:
        admin = ws.accounts.login(ADMIN[0], ADMIN[2])
        ws.accounts.add_user(admin, COORD[0], COORD[1], "coordinator", COORD[2][::-1])
        s = ws.accounts.login(COORD[0], COORD[2][::-1])
        ws.accounts.change_password(s, COORD[2][::-1], COORD[2])
        s = ws.accounts.login(COORD[0], COORD[2])
        ws.trials.create_trial(s, "T1", "Centre trial", visits=[("W0", 0.0)])
        ws.trials.add_patient(s, "T1", "SITE1-0001")
    finally:
        ws.close()
    # Everything a forked child lazily imports, imported now: the child's account may not
    # read the checkout or the Python installation, wherever they are.
    import mmap  # noqa: F401  (numpy's memory maps of the image cache)

    import scorer.imaging.radiograph
    import scorer.imaging.render
    import scorer.services.intake  # noqa: F401

    try:
        yield c
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        pg_server.drop_database(url)


def _open_and_log_in() -> str:
    ws = Workspace.open()
    try:
        ws.accounts.login(COORD[0], COORD[2])  # a log-in is written: an event row and a receipt
        return str(ws.verify().ok)
    finally:
        ws.close()


def test_the_key_and_receipts_are_shared_with_the_workstations_group_only(
    centre: Centre,
) -> None:
    key = centre.share / "audit" / "centre.audit-key"
    receipts = centre.share / "audit" / "centre.receipts"
    gid = account(GROUP)[1]
    assert stat.S_IMODE(key.stat().st_mode) == 0o640 and key.stat().st_gid == gid
    assert stat.S_IMODE(receipts.stat().st_mode) == 0o660 and receipts.stat().st_gid == gid
    before = receipts.stat().st_size
    # An account of the group runs a workstation: it reads the key, appends receipts.
    env = centre.env(data=centre.data_dir_for("postgres"))
    assert as_account("postgres", env, _open_and_log_in).startswith("ok True")
    assert receipts.stat().st_size > before
    # Any other account cannot even open the workspace.
    env = centre.env(data=centre.data_dir_for("nobody"))
    refused = as_account("nobody", env, _open_and_log_in)
    assert refused.startswith("error ScorerError")
    assert f"cannot read the audit key file {key}" in refused and "ermission denied" in refused
    # A key the group could change, anyone could read, or another group holds is refused.
    for mode, gid_, message in (
        (0o660, gid, "writable by its group"),
        (0o644, gid, "readable by other accounts"),
        (0o640, 0, f"its group is not {GROUP!r}"),
    ):
        os.chown(key, -1, gid_)
        key.chmod(mode)
        with pytest.raises(ScorerError, match=message):
            Workspace.open()
    os.chown(key, -1, gid)
    key.chmod(0o640)
    # Without audit_group in the config the same key is too open: owner-only is the default.
    lone = centre.folder / "lone.toml"
    lone.write_text(
        "\n".join(
            line
            for line in centre.config.read_text(encoding="utf-8").splitlines()
            if not line.startswith("audit_group")
        ),
        encoding="utf-8",
    )
    os.environ["SCORER_CONFIG"] = str(lone)
    with pytest.raises(ScorerError, match="readable by other accounts"):
        Workspace.open()
    os.environ["SCORER_CONFIG"] = str(centre.config)
    ws = Workspace.open()
    try:
        assert ws.verify().ok
    finally:
        ws.close()


def test_an_append_only_receipts_file_takes_receipts_and_refuses_rewrites(
    centre: Centre,
) -> None:
    """The file server's administrator sets the receipts append-only (chattr +a, root only):
    workstations go on appending; nobody, root included, can rewrite or cut it."""
    receipts = centre.share / "audit" / "centre.receipts"
    subprocess.run(["chattr", "+a", str(receipts)], check=True)
    try:
        size = receipts.stat().st_size
        ws = Workspace.open()
        try:
            s = ws.accounts.login(COORD[0], COORD[2])
            ws.trials.add_patient(s, "T1", "SITE1-0002")
            result = ws.verify()
        finally:
            ws.close()
        assert result.ok and result.warnings == [], result
        assert receipts.stat().st_size > size
        text = receipts.read_text(encoding="ascii")
        with pytest.raises(PermissionError):
            receipts.write_text(text[: len(text) // 2], encoding="ascii")
        with pytest.raises(PermissionError):
            os.truncate(receipts, 10)
        with pytest.raises(PermissionError):
            receipts.unlink()
        assert receipts.read_text(encoding="ascii") == text
    finally:
        subprocess.run(["chattr", "-a", str(receipts)], check=True)


def test_a_workstation_mounting_the_store_elsewhere_shows_the_images_and_caches_locally(
    centre: Centre, tmp_path: Path
) -> None:
    # The coordinator imports a radiograph into the shared store.
    source = write(make_dx(patient_id="SITE1-0001", visit="W0"), tmp_path / "in" / "a.dcm")
    ws = Workspace.open()
    try:
        s = ws.accounts.login(COORD[0], COORD[2])
        report = ws.images.import_images(s, "T1", [source]).to_dict()
        assert report["imported"] == 1, report
        code = report["files"][0]["image"]
    finally:
        ws.close()
    with behind(centre.url, readonly=True) as con:
        reader_path, original_path = con.rows("SELECT reader_path, original_path FROM images")[0]
    assert not Path(reader_path).is_absolute() and not Path(original_path).is_absolute()
    # The originals are for the coordinators' accounts only; the readers' store for all.
    originals = centre.share / "originals"
    originals.chmod(0o700)
    # Another workstation reaches the share at another path.
    mount = centre.folder / "mnt" / "scorer"
    mount.parent.mkdir()
    mount.symlink_to(centre.share, target_is_directory=True)
    config = centre.workstation_config(mount, "ws2")
    data = centre.data_dir_for("postgres")
    shared_before = sorted(p for p in centre.share.rglob("*") if p.is_file())

    def show() -> str:
        ws = Workspace.open()
        try:
            s = ws.accounts.login(COORD[0], COORD[2])
            pixels, shape = ws.images.render_image(s, code, max_size=256)
        finally:
            ws.close()
        try:
            (mount / "originals" / original_path).read_bytes()
            originals_readable = "yes"
        except PermissionError:
            originals_readable = "no"
        return f"{shape} {pixels.shape} originals:{originals_readable}"

    shown = as_account("postgres", centre.env(config, data), show)
    assert shown.startswith("ok (64, 48)") and "originals:no" in shown, shown
    # Its caches are in its own data folder, none on the share.
    assert any((centre.folder / data / "cache").rglob("*"))
    assert sorted(p for p in centre.share.rglob("*") if p.is_file() and "audit" not in p.parts) == [
        p for p in shared_before if "audit" not in p.parts
    ]
