"""Polling a scorer server's ``GET /health`` the way a monitoring system does, without a log-in.

The server's certificate is trusted as a workstation trusts it, but nothing is written on the
polling machine: ``cafile`` (the site's CA, or the server's own certificate file), or the
SHA-256 ``fingerprint`` the server printed, compared on every poll with the certificate the
server presents on that very connection; with neither, the system's CAs.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import ssl
import time
from dataclasses import dataclass
from typing import Any

from scorer.client.trust import TrustError, base_url, normal_fingerprint, split_url


class HealthUnavailable(Exception):
    """The server did not give a health answer (unreachable, timed out, not a scorer server)."""


@dataclass(frozen=True)
class Polled:
    """One poll's answer: HTTP status, the health document, and how long it took."""

    status: int
    body: dict[str, Any]
    seconds: float


def _context(cafile: str | None, fingerprint: str | None) -> ssl.SSLContext:
    if cafile:
        return ssl.create_default_context(cafile=cafile)
    if fingerprint:
        # The fingerprint, checked on the connection itself below, is the trust.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context()


def poll(
    url: str, cafile: str | None = None, fingerprint: str | None = None, timeout: float = 10.0
) -> Polled:
    """GET /health of the server at ``url``; raises TrustError for a certificate not trusted,
    HealthUnavailable for no usable answer."""
    host, port = split_url(url)
    wanted = normal_fingerprint(fingerprint) if fingerprint and not cafile else None
    started = time.perf_counter()
    conn = http.client.HTTPSConnection(
        host, port, timeout=timeout, context=_context(cafile, fingerprint)
    )
    try:
        try:
            conn.connect()
        except ssl.SSLCertVerificationError as exc:
            raise TrustError(f"the certificate of {base_url(url)} is not trusted: {exc}") from None
        if wanted is not None:
            sock = conn.sock
            der = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
            digest = hashlib.sha256(der or b"").hexdigest().upper()
            got = ":".join(digest[i : i + 2] for i in range(0, 64, 2))
            if got != wanted:
                raise TrustError(
                    f"the certificate of {base_url(url)} has the fingerprint {got}, not {wanted}"
                )
        conn.request("GET", "/health", headers={"User-Agent": "scorer-health"})
        response = conn.getresponse()
        raw = response.read(1024 * 1024)
        status = response.status
    except (OSError, http.client.HTTPException) as exc:
        raise HealthUnavailable(f"{base_url(url)} did not answer: {exc}") from None
    finally:
        conn.close()
    seconds = time.perf_counter() - started
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        body = None
    if not (isinstance(body, dict) and isinstance(body.get("ok"), bool)):
        raise HealthUnavailable(
            f"{base_url(url)} answered HTTP {status} without a scorer health document"
        )
    return Polled(status, body, seconds)
