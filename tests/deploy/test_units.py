"""The systemd units and the logrotate configuration in resources/deploy: systemd's own checks
on them (`systemd-analyze verify`, and `security` for the hardening), and the server unit's
command line run for real as systemd would run it — its environment, its environment file,
UMask, the kernel's refusal of writable-and-executable memory (PR_SET_MDWE, what
MemoryDenyWriteExecute= asks for), standard error appended to a file — with the unit's paths
moved to a temporary folder; /health answers, and logrotate's copytruncate leaves the server
writing on into the emptied log."""

from __future__ import annotations

import ctypes
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from scorer.workspace import Workspace

pytestmark = [pytest.mark.posix]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "resources" / "deploy"
UNITS = ("scorer-server@.service", "scorer-backup.service", "scorer-backup.timer")
SCORER_BIN = "/opt/scorer/.venv/bin/scorer"
PASSWORD = "Sunflower-Meadow-7"


def _tool(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/sbin") / name) if p.exists()), None
    )
    if found is None:
        package = {"systemd-analyze": "systemd"}.get(name, name)
        pytest.skip(f"{name} is not installed (Debian package {package}; scripts/setup.sh --test)")
    return found


def _installed_copy(
    folder: Path, name: str, text: str | None = None, as_name: str | None = None
) -> Path:
    """The unit as installed (as ``as_name``: an instance's name), but naming this machine's
    scorer (verify checks that ExecStart's program exists and is executable)."""
    text = text if text is not None else (DEPLOY / name).read_text(encoding="utf-8")
    target = folder / (as_name or name)
    target.write_text(text.replace(SCORER_BIN, str(ROOT / ".venv" / "bin" / "scorer")))
    return target


def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    analyze = _tool("systemd-analyze")
    assert (ROOT / ".venv" / "bin" / "scorer").exists()
    units = [_installed_copy(tmp_path, name) for name in UNITS]
    # The server unit with the log-to-file drop-in's lines merged in, as systemd merges them.
    dropin = (DEPLOY / "log-to-file.conf").read_text(encoding="utf-8")
    merged = (DEPLOY / "scorer-server@.service").read_text(encoding="utf-8") + "\n" + dropin
    (tmp_path / "with-file-log").mkdir()
    units.append(_installed_copy(tmp_path / "with-file-log", "scorer-server@.service", merged))
    for unit in units:
        done = subprocess.run(
            [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
        )
        assert (done.returncode, done.stderr.strip()) == (0, ""), f"{unit.name}: {done.stderr}"


def test_a_hung_backup_is_stopped_before_the_next_nights_run() -> None:
    """The oneshot backup has a finite start timeout under the timer's day (a hung pg_dump
    would otherwise block every later run), in a form systemd parses."""
    analyze = _tool("systemd-analyze")
    text = (DEPLOY / "scorer-backup.service").read_text(encoding="utf-8")
    found = re.findall(r"^TimeoutStartSec=(\S+)$", text, re.M)
    assert len(found) == 1, "scorer-backup.service sets no TimeoutStartSec="
    assert "OnCalendar=*-*-* 02:30:00" in (DEPLOY / "scorer-backup.timer").read_text()
    done = subprocess.run(
        [analyze, "timespan", found[0]], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    micros = int(re.search(r"μs: (\d+)", done.stdout).group(1))  # type: ignore[union-attr]
    assert 0 < micros < 24 * 3600 * 10**6, done.stdout


@pytest.mark.parametrize("name", ["scorer-server@.service", "scorer-backup.service"])
def test_the_services_hardening_is_rated_ok_by_systemd(tmp_path: Path, name: str) -> None:
    analyze = _tool("systemd-analyze")
    unit = _installed_copy(tmp_path, name, as_name=name.replace("@.", "@8443."))
    done = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert found, done.stdout + done.stderr
    # 0 is the most confined, 10 not at all; systemd calls anything below 2 "OK".
    assert float(found.group(1)) < 2.0, done.stdout


# --- the server unit's command line, run ---------------------------------------------------


@dataclass
class Unit:
    """What a unit's [Service] section says: its environment and ExecStart."""

    environment: dict[str, str]
    environment_files: list[str]
    exec_start: str
    umask: int


def parse_unit(text: str) -> Unit:
    env: dict[str, str] = {}
    files: list[str] = []
    exec_start = ""
    umask = 0o022
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("Environment="):
            for word in shlex.split(line.split("=", 1)[1]):
                k, _, v = word.partition("=")
                env[k] = v
        elif line.startswith("EnvironmentFile="):
            files.append(line.split("=", 1)[1])
        elif line.startswith("ExecStart="):
            exec_start = line.split("=", 1)[1]
        elif line.startswith("UMask="):
            umask = int(line.split("=", 1)[1], 8)
    return Unit(env, files, exec_start, umask)


def systemd_argv(exec_start: str, env: dict[str, str], instance: str) -> list[str]:
    """ExecStart's words as systemd makes them: %i the instance, ${VAR} one word, $VAR split
    into words (none when empty)."""
    out: list[str] = []
    for word in shlex.split(exec_start.replace("%i", instance)):
        whole = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if whole:
            out.extend(env.get(whole.group(1), "").split())
            continue
        out.append(
            re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), ""), word)
        )
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _deny_write_execute() -> None:
    """In the child before exec: what MemoryDenyWriteExecute= asks of the kernel (Linux 6.3+:
    PR_SET_MDWE with PR_MDWE_REFUSE_EXEC_GAIN, kept across execve), and the unit's UMask."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(65, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_MDWE)")
    os.umask(0o077)


def _mdwe_supported() -> bool:
    probe = subprocess.run(
        [sys.executable, "-c", "import ctypes; print(ctypes.CDLL(None).prctl(66, 0, 0, 0, 0))"],
        preexec_fn=_deny_write_execute,
        capture_output=True,
        text=True,
    )
    return probe.stdout.strip() == "1"


@dataclass
class Running:
    url: str
    cert: Path
    log: Path
    proc: subprocess.Popen[str]
    root: Path


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    """The server unit's ExecStart, with /etc/scorer, /var/lib/scorer and /var/log/scorer in
    tmp_path, an SQLite database named by the site config, and the listening address put on
    loopback by the unit's environment file, as a centre's /etc/scorer/server.env would."""
    if not _mdwe_supported():
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3 or later)")
    etc, lib, logs = tmp_path / "etc", tmp_path / "lib", tmp_path / "log"
    for d in (etc, lib, logs):
        d.mkdir(mode=0o700)
    moved = {"/etc/scorer": str(etc), "/var/lib/scorer": str(lib), "/var/log/scorer": str(logs)}

    def here(text: str) -> str:
        for a, b in moved.items():
            text = text.replace(a, b)
        return text

    unit = parse_unit(here((DEPLOY / "scorer-server@.service").read_text(encoding="utf-8")))
    db = lib / "scorer.sqlite"
    (etc / "scorer.toml").write_text(f'db = "{db}"\n', encoding="utf-8")
    (etc / "server.env").write_text("SCORER_SERVER_HOST=127.0.0.1\n", encoding="utf-8")
    env = dict(unit.environment)
    for f in unit.environment_files:
        path = Path(f.lstrip("-"))
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if "=" in line and not line.lstrip().startswith("#"):
                    k, _, v = line.partition("=")
                    env[k.strip()] = v.strip()
    assert env["SCORER_CONFIG"] == str(etc / "scorer.toml")
    assert env["SCORER_DATA_DIR"] == str(lib)
    Workspace.initialize("admin", "Ada Admin", PASSWORD, db=str(db)).close()
    port = _free_port()
    argv = systemd_argv(unit.exec_start, env, str(port))
    assert argv[0] == SCORER_BIN and argv[1] == "server", argv
    assert unit.umask == 0o077
    log = logs / f"server-{port}.log"
    # systemd's StandardError=append: opens the file for appending.
    err_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    proc = subprocess.Popen(
        [sys.executable, "-m", "scorer", *argv[1:]],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        stdout=(tmp_path / "stdout").open("w"),
        stderr=err_fd,
        text=True,
        preexec_fn=_deny_write_execute,
    )
    os.close(err_fd)
    url = f"https://127.0.0.1:{port}"
    try:
        cert = _wait(proc, url, tmp_path / "stdout")
        yield Running(url, cert, log, proc, tmp_path)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)


def _wait(proc: subprocess.Popen[str], url: str, stdout: Path) -> Path:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server stopped: {stdout.read_text()}")
        said = re.search(r"certificate \([^)]*\): (.+)", stdout.read_text())
        if said:
            cert = Path(said.group(1).strip())
            try:
                if (
                    httpx.get(
                        url + "/health",
                        verify=ssl.create_default_context(cafile=str(cert)),
                        timeout=2,
                    ).status_code
                    == 200
                ):
                    return cert
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    raise AssertionError("the server did not answer /health within 60 s")


@pytest.mark.slow
def test_the_units_command_line_serves_and_logs_to_a_rotated_file(running: Running) -> None:
    run = running
    health = subprocess.run(
        [sys.executable, "-m", "scorer", "health", "--url", run.url, "--cacert", str(run.cert)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert health.returncode in (0, 1), health.stdout  # 1: this machine's disk is low
    with httpx.Client(
        base_url=run.url, verify=ssl.create_default_context(cafile=str(run.cert)), timeout=30
    ) as c:
        token = c.post("/api/login", json={"username": "admin", "password": PASSWORD}).json()
        auth = {"Authorization": f"Bearer {token['token']}"}
        assert c.post("/api/call/trials.list_trials", headers=auth).json()["result"] == []
        # UMask=0077: what the server made is its account's only.
        for made in (run.cert, run.cert.with_suffix(".key")):
            if made.exists():
                assert made.stat().st_mode & 0o077 == 0, made
        before = run.log.read_text(encoding="utf-8")
        assert '"path": "/api/login"' in before and PASSWORD not in before
        # logrotate, with the configuration as installed (its paths moved here).
        conf = (DEPLOY / "logrotate").read_text(encoding="utf-8")
        conf = conf.replace("/var/log/scorer", str(run.log.parent))
        conf = conf.replace("su scorer scorer", "su root root")  # the test's own account
        (run.root / "logrotate.conf").write_text(conf, encoding="utf-8")
        rotated = subprocess.run(
            [_tool("logrotate"), "--force", "--state", str(run.root / "state"),
             str(run.root / "logrotate.conf")],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert rotated.returncode == 0, rotated.stderr
        old = [p for p in run.log.parent.iterdir() if p != run.log]
        assert len(old) == 1 and old[0].read_text(encoding="utf-8") == before
        assert run.log.stat().st_size == 0
        c.post("/api/call/trials.list_trials", headers=auth)
    deadline = time.monotonic() + 10
    while run.log.stat().st_size == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    after = run.log.read_bytes()
    # Written on from the start of the emptied file: no hole of zeros, whole JSON lines.
    assert after.startswith(b"{") and b"\0" not in after
    assert b'"operation": "trials.list_trials"' in after
    # A stop by the service manager (SIGTERM) is a clean one: Restart=on-failure leaves it.
    run.proc.send_signal(signal.SIGTERM)
    assert run.proc.wait(timeout=20) == 0
