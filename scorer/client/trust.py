"""Which server certificate a workstation trusts.

A site's certificate from a CA the machine trusts needs nothing. A self-signed one (what
``scorer server`` generates on first run) is pinned: the workstation is given the fingerprint
the server printed, fetches the certificate once, keeps it only if its SHA-256 is that
fingerprint, and from then on trusts that certificate alone for that server (the file under
the workstation's data folder, owner-only). A certificate that changes afterwards fails the
connection: nothing falls back to trusting whatever answers.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from scorer.services.errors import ScorerError
from scorer.store.location import data_dir


class TrustError(ScorerError):
    """The server's certificate cannot be trusted (or fetched) as asked."""


def split_url(url: str) -> tuple[str, int]:
    """(host, port) of an ``https://HOST:PORT`` server URL; a clear error for anything else."""
    parts = urlsplit(url.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise TrustError(f"the server is named by an https:// URL (https://HOST:PORT), not {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise TrustError(f"give the server as https://HOST:PORT only, not {url!r}")
    try:
        port = parts.port or 443
    except ValueError:
        raise TrustError(f"the port of {url!r} is not a number from 1 to 65535") from None
    return parts.hostname, port


def base_url(url: str) -> str:
    host, port = split_url(url)
    shown = f"[{host}]" if ":" in host else host
    return f"https://{shown}:{port}"


def normal_fingerprint(text: str) -> str:
    """A SHA-256 fingerprint as colon-separated upper-case hex, however it was typed."""
    digits = re.sub(r"[^0-9a-fA-F]", "", text.removeprefix("sha256:").removeprefix("SHA256:"))
    if len(digits) != 64:
        raise TrustError(
            "a certificate fingerprint is 64 hex digits (SHA-256, as scorer server prints it); "
            f"got {len(digits)}"
        )
    digits = digits.upper()
    return ":".join(digits[i : i + 2] for i in range(0, 64, 2))


def pinned_path(url: str, folder: Path | None = None) -> Path:
    """Where the pinned certificate of this server is kept on this workstation."""
    host, port = split_url(url)
    safe = re.sub(r"[^A-Za-z0-9.-]", "_", host)
    return (folder or data_dir()) / "servers" / f"{safe}_{port}.pem"


def fetch_certificate(url: str, timeout: float = 10.0) -> bytes:
    """The PEM certificate the server presents (not verified: the caller compares it with a
    fingerprint it was given)."""
    host, port = split_url(url)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            ctx.wrap_socket(raw, server_hostname=host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as exc:
        raise TrustError(f"cannot reach the server at {base_url(url)}: {exc}") from None
    if not der:
        raise TrustError(f"the server at {base_url(url)} presented no certificate")
    return ssl.DER_cert_to_PEM_cert(der).encode("ascii")


def der_fingerprint(pem: bytes) -> str:
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem.decode("ascii"))).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, 64, 2))


def pin(url: str, fingerprint: str, folder: Path | None = None) -> Path:
    """Fetch the server's certificate, keep it if its fingerprint is the one given (else refuse
    and keep nothing); returns the file now trusted for this server."""
    wanted = normal_fingerprint(fingerprint)
    pem = fetch_certificate(url)
    got = der_fingerprint(pem)
    if got != wanted:
        raise TrustError(
            f"the certificate of {base_url(url)} has the fingerprint {got}, not the {wanted} "
            "you were given: do not connect (someone may be in between); ask the server's "
            "administrator"
        )
    target = pinned_path(url, folder)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = target.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    os.replace(tmp, target)
    return target


def trust_for(
    url: str, cafile: str | None = None, fingerprint: str | None = None
) -> ssl.SSLContext:
    """The TLS context a client uses for this server: the CA file given; else the pinned
    certificate (pinning it first when a fingerprint is given); else the system's CAs."""
    if cafile:
        path = Path(cafile)
        if not path.is_file():
            raise TrustError(f"no certificate file {cafile}")
        return ssl.create_default_context(cafile=str(path))
    pinned = pinned_path(url)
    if fingerprint:
        want = normal_fingerprint(fingerprint)
        if not (pinned.is_file() and der_fingerprint(pinned.read_bytes()) == want):
            pinned = pin(url, want)
    if pinned.is_file():
        return ssl.create_default_context(cafile=str(pinned))
    return ssl.create_default_context()
