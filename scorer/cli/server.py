"""The command that runs the HTTPS application server: scorer server."""

from __future__ import annotations

import contextlib
import logging
import signal
import ssl
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from scorer.cli.options import Database
from scorer.cli.output import EXIT_ERROR, EXIT_OK, EXIT_USAGE, err, visible
from scorer.cli.registry import Opt, command

if TYPE_CHECKING:
    from scorer.server.tls import ServerCertificate
    from scorer.store.location import Location
    from scorer.workspace import Workspace


@command("server")
def server(
    *,
    database: Database,
    host: Annotated[str, Opt(metavar="ADDRESS")] = "127.0.0.1",
    port: Annotated[int, Opt(metavar="PORT")] = 8443,
    cert: Annotated[str | None, Opt(metavar="PEM")] = None,
    key: Annotated[str | None, Opt(metavar="PEM")] = None,
) -> int:
    """run the HTTPS application server in front of the database

    The server alone opens the database; workstations talk to it over HTTPS. Without --cert
    and --key a self-signed certificate is made on first run, kept owner-only beside the
    database and reused; its SHA-256 fingerprint is printed for the workstations to pin.
    Ctrl-C stops it.

    Args:
        host: the address to listen on (default 127.0.0.1: this machine only)
        port: the TCP port (default 8443)
        cert: the site's certificate (PEM), with --key
        key: the certificate's private key (PEM), with --cert
    """
    from scorer.server.tls import TlsError, generated_certificate, site_certificate
    from scorer.store.location import resolve
    from scorer.workspace import ScorerError, Workspace

    if (cert is None) != (key is None):
        err("--cert and --key go together (or neither, for a generated certificate)")
        return EXIT_USAGE
    if not 0 < port < 65536:
        err(f"--port {port}: a TCP port is 1 to 65535")
        return EXIT_USAGE
    if not _valid_host(host):
        err(f"--host {host!r}: give an IP address or a host name (letters, digits, hyphens, dots)")
        return EXIT_USAGE
    try:
        loc = resolve(database.db)
        ws = Workspace.open(location=loc)
    except (ScorerError, ValueError) as exc:
        err(str(exc))
        return EXIT_ERROR
    try:
        if cert is not None and key is not None:
            tls = site_certificate(Path(cert), Path(key))
        else:
            path = loc.sqlite_path
            folder, stem = (path.parent, path.stem) if path else (loc.data_dir, "scorer")
            tls = generated_certificate(folder, stem, host)
    except (TlsError, OSError) as exc:
        ws.close()
        err(f"TLS: {exc}")
        return EXIT_ERROR
    return _serve(ws, loc, host, port, tls)


def _valid_host(host: str) -> bool:
    """An IP address, or a DNS name whose labels are 1 to 63 letters, digits or hyphens."""
    import ipaddress
    import re

    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    label = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
    return 0 < len(host) <= 253 and all(label.match(p) for p in host.rstrip(".").split("."))


def _serve(ws: Workspace, loc: Location, host: str, port: int, tls: ServerCertificate) -> int:
    """Run uvicorn with the certificate until Ctrl-C (or SIGTERM); structured request logs,
    one JSON line each, go to standard error."""
    import uvicorn

    from scorer.server.app import make_app

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("scorer.server")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False
    app = make_app(loc, workspace=ws)
    made = "generated now" if tls.generated else "in use"
    print(f"scorer server for {loc.shown}", flush=True)
    print(f"  certificate ({made}): {tls.cert}", flush=True)
    print(f"  SHA-256 fingerprint: {tls.fingerprint}", flush=True)
    shown = f"[{host}]" if ":" in host else host
    print(f"  listening on https://{shown}:{port} (Ctrl-C stops it)", flush=True)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=str(tls.cert),
        ssl_keyfile=str(tls.key),
        access_log=False,
        log_level="warning",
        lifespan="on",
        server_header=False,
        # No proxy headers: X-Forwarded-For from loopback would otherwise forge the client
        # address the log-in limit counts and the log records (security review's finding).
        proxy_headers=False,
        # A stop waits this long for requests in flight, then closes what is still open (a
        # workstation's idle keep-alive connection must not hold the stop up).
        timeout_graceful_shutdown=5,
        # An idle connection is closed by the workstation (httpx: after 5 s) before the server
        # would close it, so a request never goes out on a connection the server (or a load
        # balancer's backend) is closing just then.
        timeout_keep_alive=30,
    )
    # uvicorn finishes the requests in flight on SIGINT or SIGTERM, then raises the signal
    # again for the handler it found: let that be a clean stop for a service manager too.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            uvicorn.Server(config).run()
    finally:
        signal.signal(signal.SIGTERM, previous)
    print("scorer server stopped", flush=True)
    return EXIT_OK


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


#: A monitoring plugin's states and exit codes (Nagios, Icinga): the numbers are scorer's own
#: too, 0 done, 1 and 2 a problem named on standard error.
STATES = {"ok": 0, "warning": 1, "critical": 2}


def _said(state: str, summary: str) -> int:
    """The plugin's one line on standard output; anything but OK named on standard error too,
    as every scorer command names what went wrong there."""
    print(visible(f"SCORER {state.upper()} - {summary}"), flush=True)
    if state != "ok":
        err(summary.split(" | ", 1)[0])
    return STATES[state]


def _wrong_arguments(message: str) -> int:
    """A usage error of scorer health, as a monitor reads it: WARNING, the check is wrong."""
    return _said("warning", f"this check is wrong: {message}")


@command("health", on_usage_error=_wrong_arguments)
def health(
    *,
    url: Annotated[str, Opt(metavar="https://HOST:PORT")],
    fingerprint: Annotated[str | None, Opt(metavar="SHA256")] = None,
    cacert: Annotated[str | None, Opt(metavar="PEM")] = None,
    timeout: Annotated[float, Opt(metavar="SECONDS")] = 10.0,
) -> int:
    """poll a scorer server's health as a monitoring system does (exit 0 OK, 1 WARNING, 2 CRITICAL)

    One line of output, in the form of a Nagios plugin's (with the response time as
    performance data); exit status 0 OK, 1 WARNING (also: this check's own arguments are
    wrong), 2 CRITICAL (also: no answer, a certificate not trusted, an answer that is not a
    scorer server's). No log-in, nothing written on this machine.

    Args:
        url: the server, https://HOST:PORT
        fingerprint: the SHA-256 fingerprint scorer server printed (checked on every poll)
        cacert: the site's CA certificate, or the server's own certificate file (PEM)
        timeout: seconds to wait for the answer (default 10)
    """
    from scorer.client.health import HealthUnavailable, poll
    from scorer.client.trust import TrustError, normal_fingerprint, split_url

    try:
        split_url(url)
        if fingerprint:
            normal_fingerprint(fingerprint)
        if cacert is not None and not Path(cacert).is_file():
            raise ValueError(f"--cacert {cacert}: no such certificate file")
        if not 0 < timeout <= 300:
            raise ValueError(f"--timeout {timeout:g}: give 0 to 300 seconds")
    except (TrustError, ValueError) as exc:
        return _said("warning", f"this check is wrong: {exc}")
    try:
        polled = poll(url, cacert, fingerprint, timeout)
    except (TrustError, HealthUnavailable, ssl.SSLError) as exc:
        return _said("critical", str(exc))
    body = polled.body
    state = str(body.get("status") or ("ok" if body["ok"] else "critical"))
    if state not in STATES:
        state = "critical"
    found = body.get("checks")
    checks: dict[str, Any] = found if isinstance(found, dict) else {}
    bad = [
        f"{name}: {c.get('detail', '')}"
        for name, c in checks.items()
        if isinstance(c, dict) and c.get("status") != "ok"
    ]
    summary = "; ".join(bad) or f"{len(checks)} checks ok, schema {body.get('schema')}"
    return _said(state, f"{summary} | time={polled.seconds:.3f}s")
