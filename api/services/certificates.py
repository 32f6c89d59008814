"""HTTPS for a trial without a domain: a local certificate authority, server certificates it
signs for given host names and addresses, and the check ``sitewatch serve`` makes of a
certificate and key before it serves them.

Phones give a page their position only in a secure context, so a trial on an office network
needs HTTPS even without a public name. The authority is made once per folder and reused, so
phones that trusted its ``ca.pem`` keep trusting every server certificate it signs later.
Production uses a real certificate behind a reverse proxy instead (docs/deploy.md).
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from layers.errors import DomainError

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
SERVER_CERT = "server.pem"
SERVER_KEY = "server-key.pem"
# iOS and macOS refuse TLS server certificates valid for longer than 825 days, even from an
# authority the user installed; Android accepts them.
SERVER_DAYS = 825
CA_DAYS = 10 * 365
# Clocks of phones and servers differ by minutes; a certificate valid from "now" would be
# refused by a phone a little behind.
BACKDATE = timedelta(hours=1)
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class CertificateError(DomainError, code="certificate", title="Certificate problem"):
    """A certificate or key that cannot be made, read or used."""


@dataclass(frozen=True)
class Issued:
    """What :func:`make` wrote: the files, whether the authority existed before, and when the
    server certificate expires."""

    ca_cert: Path
    ca_key: Path
    cert: Path
    key: Path
    ca_reused: bool
    not_after: datetime
    ca_fingerprint: str


def host_name(text: str) -> str:
    """``text`` as a DNS name for a certificate (lower case, no trailing dot), or
    :class:`CertificateError`.

    >>> host_name("Sitewatch.Office.LAN.")
    'sitewatch.office.lan'
    """
    name = text.strip().rstrip(".").lower()
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(p) for p in name.split(".")):
        raise CertificateError(f"{text!r} is not a host name (letters, digits, hyphens and "
                               "dots; give addresses with --ip)")
    return name


def ip_address(text: str) -> IPAddress:
    """``text`` as an IPv4 or IPv6 address, or :class:`CertificateError`."""
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        raise CertificateError(f"{text!r} is not an IP address") from None


def make(folder: Path, hosts: Sequence[str], ips: Sequence[str],
         now: datetime | None = None) -> Issued:
    """Write a server certificate for ``hosts`` and ``ips`` (and its key) into ``folder``,
    signed by the folder's authority, which is made first when the folder has none.

    Keys are written readable by their owner only. The server certificate is valid for
    :data:`SERVER_DAYS` at most, and never beyond its authority.
    """
    names = [host_name(h) for h in hosts]
    addresses = [ip_address(a) for a in ips]
    if not names and not addresses:
        raise CertificateError("name the server: give at least one --host or --ip")
    now = now or datetime.now(UTC)
    folder.mkdir(parents=True, exist_ok=True)
    ca_cert_path, ca_key_path = folder / CA_CERT, folder / CA_KEY
    reused = ca_cert_path.exists() or ca_key_path.exists()
    if reused:
        ca_cert, ca_key = _load_authority(ca_cert_path, ca_key_path, now)
    else:
        ca_cert, ca_key = _new_authority(now)
        _write(ca_key_path, _key_pem(ca_key), private=True)
        _write(ca_cert_path, ca_cert.public_bytes(serialization.Encoding.PEM))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _server_certificate(key.public_key(), names, addresses, ca_cert, ca_key, now)
    _write(folder / SERVER_KEY, _key_pem(key), private=True)
    _write(folder / SERVER_CERT, cert.public_bytes(serialization.Encoding.PEM))
    return Issued(ca_cert=ca_cert_path, ca_key=ca_key_path, cert=folder / SERVER_CERT,
                  key=folder / SERVER_KEY, ca_reused=reused,
                  not_after=cert.not_valid_after_utc,
                  ca_fingerprint=ca_cert.fingerprint(hashes.SHA256()).hex(":").upper())


def check_pair(cert: Path, key: Path, now: datetime | None = None) -> datetime:
    """Load ``cert`` and ``key`` as the server will and return when the certificate expires;
    :class:`CertificateError` naming the file when either cannot be read, is not PEM, the key
    is encrypted, or the two do not belong together."""
    for path in (cert, key):
        if not path.is_file():
            raise CertificateError(f"{path}: no such file")
        if not os.access(path, os.R_OK):
            raise CertificateError(f"{path}: not readable by this user")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # A password callback that answers nothing: an encrypted key fails here rather than
        # prompting on the terminal of a service.
        context.load_cert_chain(cert, key, password=lambda: b"")
    except ssl.SSLError as exc:
        reason = exc.reason or exc.__class__.__name__
        hint = ("the key does not belong to the certificate" if "MISMATCH" in reason else
                "not a PEM certificate and an unencrypted PEM key")
        raise CertificateError(f"cannot use {cert} with {key}: {hint} ({reason})") from None
    leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    expires = leaf.not_valid_after_utc
    if expires <= (now or datetime.now(UTC)):
        raise CertificateError(f"{cert} expired on {expires:%Y-%m-%d}: browsers refuse it; "
                               "make a new one (`sitewatch tls make` for a trial)")
    return expires


def _new_authority(now: datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sitewatch"),
        x509.NameAttribute(NameOID.COMMON_NAME,
                           f"sitewatch local CA {now:%Y-%m-%d %H%M%S}"),
    ])
    public = key.public_key()
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + timedelta(days=CA_DAYS))
            # pathlen 0: it signs server certificates only, never another authority.
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _load_authority(cert_path: Path, key_path: Path, now: datetime
                    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The folder's authority, checked: both files there, a CA whose key matches, not
    expired."""
    for path in (cert_path, key_path):
        if not path.is_file():
            raise CertificateError(f"{path.parent} has half an authority: {path.name} is "
                                   f"missing (restore it, or empty the folder for a new one)")
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"cannot read the authority in {cert_path.parent}: {exc}"
                               ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise CertificateError(f"{key_path} is not the key of {cert_path}")
    if cert.not_valid_after_utc <= now + timedelta(days=1):
        raise CertificateError(f"the authority {cert_path} has expired: move the folder's "
                               "files away to make a new one (phones must then trust it anew)")
    return cert, key


def _server_certificate(public: ec.EllipticCurvePublicKey, names: list[str],
                        addresses: list[IPAddress], ca_cert: x509.Certificate,
                        ca_key: ec.EllipticCurvePrivateKey, now: datetime) -> x509.Certificate:
    start = now - BACKDATE
    end = min(start + timedelta(days=SERVER_DAYS), ca_cert.not_valid_after_utc)
    alternatives: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    alternatives += [x509.IPAddress(a) for a in addresses]
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(
                NameOID.COMMON_NAME, names[0] if names else str(addresses[0]))]))
            .issuer_name(ca_cert.subject).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write ``data`` to ``path``; a private file is created, or narrowed, to mode 0600
    before any byte is written."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                         0o600 if private else 0o644)
    with os.fdopen(descriptor, "wb") as out:
        if private:
            os.fchmod(out.fileno(), 0o600)
        out.write(data)
