"""The served certificate's expiry as a metric: the one loaded, and the new one after a reload;
a pair that does not load leaves the old value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry

from paitient_common.tls import ReloadingCertificate
from paitient_common.tls_metrics import EXPIRY_METRIC, CertificateExpiryCollector
from paitient_localcluster.simulated.volumes import write_atomically
from paitient_operator.certificates import x509

NOW = datetime.now(UTC).replace(microsecond=0)
CA = x509.new_authority("test CA", timedelta(days=90), NOW)


def _write(directory: Path, pair: x509.KeyPair) -> None:
    write_atomically(
        directory, {"tls.crt": pair.cert_pem.encode(), "tls.key": pair.key_pem.encode()}
    )


def test_expiry_follows_the_certificate_served(tmp_path: Path) -> None:
    first = x509.issue(CA, ["a.ns.svc"], timedelta(days=30), NOW)
    _write(tmp_path, first)
    served = ReloadingCertificate(tmp_path / "tls.crt", tmp_path / "tls.key")
    registry = CollectorRegistry()
    registry.register(CertificateExpiryCollector(served))
    assert registry.get_sample_value(EXPIRY_METRIC) == (NOW + timedelta(days=30)).timestamp()
    _write(tmp_path, x509.issue(CA, ["a.ns.svc"], timedelta(days=60), NOW))
    assert served.check()
    assert registry.get_sample_value(EXPIRY_METRIC) == (NOW + timedelta(days=60)).timestamp()
    mismatched = x509.KeyPair(first.cert_pem, x509.issue(CA, ["b"], timedelta(1), NOW).key_pem)
    _write(tmp_path, mismatched)
    assert not served.check()
    assert registry.get_sample_value(EXPIRY_METRIC) == (NOW + timedelta(days=60)).timestamp()
