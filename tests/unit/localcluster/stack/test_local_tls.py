"""The local front door's certificate: made once, kept while valid, re-issued before it expires
by the same CA, and a new CA only when the old one nears its own end."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from paitient_localcluster.stack.local_tls import (
    LIFETIME,
    NAMES,
    RENEW_BEFORE,
    LocalCertificate,
    front_door_certificate,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def _read(files: LocalCertificate) -> tuple[x509.Certificate, x509.Certificate]:
    ca = x509.load_pem_x509_certificate(files.ca_bundle.read_bytes())
    leaf = x509.load_pem_x509_certificate(files.cert_file.read_bytes())
    return ca, leaf


def test_the_first_call_makes_a_ca_and_a_certificate_for_the_loopback_names(
    tmp_path: Path,
) -> None:
    files = front_door_certificate(tmp_path, T0)
    ca, leaf = _read(files)
    leaf.verify_directly_issued_by(ca)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = sans.get_values_for_type(x509.DNSName)
    names += [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]
    assert sorted(names) == sorted(NAMES)
    assert leaf.not_valid_after_utc - T0 <= LIFETIME
    for secret in (files.key_file, tmp_path / "ca.key"):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_a_valid_certificate_is_kept_and_one_near_its_end_is_reissued_by_the_same_ca(
    tmp_path: Path,
) -> None:
    files = front_door_certificate(tmp_path, T0)
    first = files.cert_file.read_bytes()
    _, leaf = _read(files)
    before_renewal = leaf.not_valid_after_utc - RENEW_BEFORE - timedelta(seconds=1)
    assert front_door_certificate(tmp_path, before_renewal).cert_file.read_bytes() == first
    ca_before = files.ca_bundle.read_bytes()
    renewed = front_door_certificate(tmp_path, before_renewal + timedelta(seconds=2))
    assert renewed.cert_file.read_bytes() != first
    assert renewed.ca_bundle.read_bytes() == ca_before, "clients keep trusting the same CA"
    ca, new_leaf = _read(renewed)
    new_leaf.verify_directly_issued_by(ca)


def test_a_ca_that_would_outlive_no_new_certificate_is_replaced(tmp_path: Path) -> None:
    files = front_door_certificate(tmp_path, T0)
    ca, _ = _read(files)
    late = ca.not_valid_after_utc - LIFETIME + timedelta(seconds=1)
    renewed = front_door_certificate(tmp_path, late)
    new_ca, leaf = _read(renewed)
    assert new_ca.serial_number != ca.serial_number
    leaf.verify_directly_issued_by(new_ca)
