"""``portway serve --tls self-signed``: a local certificate authority and a localhost certificate.

Handlers written for AWS call ``@connections`` at ``https://{domainName}/{stage}`` (the event's
``requestContext``), so a local gateway must speak TLS with a certificate they can verify. This
module keeps, in one folder (by default the user cache dir, ``~/.cache/portway/tls``):

* ``ca.pem`` / ``ca-key.pem``: a CA made for this machine only (10 years), the one thing to trust;
* ``cert.pem`` / ``key.pem``: the server certificate it signed for ``localhost``, ``127.0.0.1`` and
  ``::1`` (1 year), re-issued by the same CA when expired or about to expire, so a trusted CA stays
  trusted;
* ``trust.pem``: the CAs trusted so far (the bundles the gateway's ``AWS_CA_BUNDLE`` /
  ``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE`` name, else the system's) plus ``ca.pem``, which
  handler workers get as ``AWS_CA_BUNDLE`` / ``SSL_CERT_FILE`` / ``REQUESTS_CA_BUNDLE`` (those
  variables *replace* the default trust, so the others must stay in: a handler also calls real
  AWS services).

Keys are written with mode 0600. The certificate arithmetic (:func:`issue_ca`, :func:`issue_server`,
:func:`needs_renewal`) takes ``now``; :func:`ensure_local_tls` does the file work (called once at
start-up, before the event loop runs).
"""

from __future__ import annotations

import datetime
import fcntl
import ipaddress
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "LocalTls",
    "default_tls_dir",
    "ensure_local_tls",
    "issue_ca",
    "issue_server",
    "needs_renewal",
]

CA_LIFETIME = datetime.timedelta(days=3650)
SERVER_LIFETIME = datetime.timedelta(days=365)
RENEW_BEFORE = datetime.timedelta(days=1)  # re-issue a day early: a long-running serve keeps working
_BACKDATE = datetime.timedelta(minutes=5)  # clock skew between this machine and a container
SERVER_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True, slots=True)
class LocalTls:
    """The files of a local TLS setup (see the module docstring)."""

    ca: Path
    cert: Path
    key: Path
    trust: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.cert), str(self.key))
        return context


def default_tls_dir(env: Mapping[str, str] = os.environ) -> Path:
    """``$PORTWAY_TLS_DIR``, else ``$XDG_CACHE_HOME/portway/tls``, else ``~/.cache/portway/tls``."""
    if env.get("PORTWAY_TLS_DIR"):
        return Path(env["PORTWAY_TLS_DIR"])
    cache = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "portway" / "tls"


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def issue_ca(now: datetime.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A new CA certificate and its key (strict-X.509 valid: key usage, key identifiers)."""
    key = _key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Portway local development"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Portway local CA {now:%Y-%m-%d}"),
        ]
    )
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue_server(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, now: datetime.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A server certificate for :data:`SERVER_NAMES`, signed by ``ca``."""
    key = _key()
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_NAMES[1:]]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(min(now + SERVER_LIFETIME, ca.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def needs_renewal(cert: x509.Certificate, now: datetime.datetime) -> bool:
    return not cert.not_valid_before_utc <= now < cert.not_valid_after_utc - RENEW_BEFORE


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Atomically (a temporary file, renamed): no worker or other gateway ever reads half a file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(temporary, path)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write(path, data, 0o600)


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _load(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or cert.public_key() != key.public_key():
        return None
    return cert, key


def _base_bundles(env: Mapping[str, str]) -> bytes:
    """The CAs handlers trust without Portway: the bundles the gateway's environment names (a
    corporate proxy's, say), else the system's default file; each file once."""
    paths = ssl.get_default_verify_paths()
    candidates = [env.get(name) for name in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")]
    candidates += [paths.cafile, paths.openssl_cafile]
    seen: set[str] = set()
    parts: list[bytes] = []
    for candidate in candidates:
        if not candidate or not os.path.isfile(candidate) or os.path.realpath(candidate) in seen:
            continue
        seen.add(os.path.realpath(candidate))
        try:
            data = Path(candidate).read_bytes()
        except OSError:
            continue
        parts.append(data if data.endswith(b"\n") else data + b"\n")
        if len(parts) == 1 and candidate in (paths.cafile, paths.openssl_cafile):
            break  # the system default alone: its other name is the same store
    return b"".join(parts)


def ensure_local_tls(folder: Path, now: datetime.datetime, env: Mapping[str, str] | None = None) -> LocalTls:
    """Reuse the folder's CA and certificate while valid; create or re-issue what is missing or expired.

    Two gateways starting together take turns (a lock file), so both serve one CA's certificate.
    """
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = LocalTls(folder / "ca.pem", folder / "cert.pem", folder / "key.pem", folder / "trust.pem")
    ca_key_path = folder / "ca-key.pem"
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        loaded_ca = _load(files.ca, ca_key_path)
        if loaded_ca is None or needs_renewal(loaded_ca[0], now):
            loaded_ca = issue_ca(now)
            _write_key(ca_key_path, loaded_ca[1])
            _write(files.ca, _pem(loaded_ca[0]))
        ca, ca_key = loaded_ca
        server = _load(files.cert, files.key)
        if server is None or needs_renewal(server[0], now) or not _signed_by(server[0], ca):
            cert, key = issue_server(ca, ca_key, now)
            _write_key(files.key, key)
            _write(files.cert, _pem(cert))
        _write(files.trust, _base_bundles(os.environ if env is None else env) + _pem(ca))
    return files
