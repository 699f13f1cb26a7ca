"""The server's TLS certificate: the site's own, or a self-signed one made on first run.

A generated certificate is for trying the server and for a site that pins it: it is written
owner-only beside the database (or in the data folder for a server database), reused on every
later start, and its SHA-256 fingerprint is printed so that the workstations can pin it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from scorer.core.private_files import FOLDER_MODE, make_folder, write_file

#: How long a generated certificate is valid.
VALIDITY = timedelta(days=825)


class TlsError(RuntimeError):
    """A certificate or key that cannot be used, with what to do."""


@dataclass(frozen=True)
class ServerCertificate:
    """The certificate and key files the server runs with, the certificate's SHA-256
    fingerprint, and whether it was generated just now."""

    cert: Path
    key: Path
    fingerprint: str
    generated: bool = False


def fingerprint(cert_pem: bytes) -> str:
    """SHA-256 of the certificate's DER encoding, as colon-separated upper-case hex."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        der = x509.load_pem_x509_certificate(cert_pem).public_bytes(Encoding.DER)
    except ValueError as exc:
        raise TlsError(f"not a PEM certificate: {exc}") from None
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def default_paths(folder: Path, stem: str) -> tuple[Path, Path]:
    """Where a generated certificate and its key are kept."""
    return folder / f"{stem}.server-cert.pem", folder / f"{stem}.server-key.pem"


def site_certificate(cert: Path, key: Path) -> ServerCertificate:
    """The site's certificate and key, checked to be readable PEM."""
    try:
        pem = cert.read_bytes()
        key.read_bytes()
    except OSError as exc:
        raise TlsError(f"{exc.filename}: {exc.strerror}") from None
    return ServerCertificate(cert, key, fingerprint(pem))


def generated_certificate(folder: Path, stem: str, host: str) -> ServerCertificate:
    """The self-signed certificate kept in ``folder``, made now if there is none."""
    cert, key = default_paths(folder, stem)
    if cert.exists() and key.exists():
        return ServerCertificate(cert, key, fingerprint(cert.read_bytes()))
    cert_pem, key_pem = self_signed(host)
    make_folder(folder, FOLDER_MODE)
    write_file(key, key_pem)
    write_file(cert, cert_pem)
    return ServerCertificate(cert, key, fingerprint(cert_pem), generated=True)


def _names(host: str) -> list[str]:
    names = ["localhost", "127.0.0.1", "::1", socket.gethostname()]
    if host not in ("", "0.0.0.0", "::") and host not in names:
        names.append(host)
    return names


def self_signed(host: str) -> tuple[bytes, bytes]:
    """A new self-signed server certificate (ECDSA P-256) for ``host``, loopback and this
    machine's name: (certificate PEM, key PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "scorer"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"scorer server {host or 'localhost'}"[:64]),
        ]
    )
    alt: list[x509.GeneralName] = []
    for n in _names(host):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            alt.append(x509.DNSName(n))
    now = datetime.now(UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        # Its own trust anchor: the workstations pin exactly this certificate.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem
