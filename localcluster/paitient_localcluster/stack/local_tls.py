"""The local front door's HTTPS certificate: a CA of this checkout's own and a certificate for
127.0.0.1 and localhost, kept in the cluster's state directory and re-issued before it expires.
Clients trust it through ``PAITIENT_CA_BUNDLE`` (``make up`` prints the export line)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from paitient_operator.certificates import x509

LIFETIME: Final = timedelta(days=30)
RENEW_BEFORE: Final = timedelta(days=10)
NAMES: Final = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class LocalCertificate:
    ca_bundle: Path
    cert_file: Path
    key_file: Path


def _write(path: Path, text: str, mode: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=mode)
    tmp.chmod(mode)
    tmp.write_text(text)
    tmp.replace(path)


def front_door_certificate(directory: Path, now: datetime | None = None) -> LocalCertificate:
    """The files, made on first use and again when the certificate nears its expiry (a new CA
    only when the old one is gone or expiring too)."""
    now = now or datetime.now(UTC)
    files = LocalCertificate(directory / "ca.crt", directory / "tls.crt", directory / "tls.key")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = directory / "ca.key"
    try:
        leaf = x509.load_certificates(files.cert_file.read_text())[0]
        if now < leaf.not_valid_after_utc - RENEW_BEFORE:
            return files
    except (OSError, IndexError, ValueError):
        pass
    try:
        ca = x509.KeyPair(files.ca_bundle.read_text(), ca_key.read_text())
        if now >= ca.cert.not_valid_after_utc - LIFETIME:
            raise ValueError("the local CA expires soon")
    except (OSError, ValueError):
        ca = x509.new_authority("PaiTIENT local front door CA", timedelta(days=3650), now)
        _write(ca_key, ca.key_pem, 0o600)
        _write(files.ca_bundle, ca.cert_pem, 0o644)
    leaf_pair = x509.issue(ca, list(NAMES), LIFETIME, now)
    _write(files.key_file, leaf_pair.key_pem, 0o600)
    _write(files.cert_file, leaf_pair.cert_pem, 0o644)
    return files
