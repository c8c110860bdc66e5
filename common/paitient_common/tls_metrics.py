"""``paitient_tls_certificate_expiry_timestamp_seconds``: when the certificate a server is serving
now expires, read at scrape time from its reloading certificate (registered only by a server that serves TLS).

One series per process, so the alert on it names the pod whose certificate did not reach it.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paitient_common.tls import ReloadingCertificate

EXPIRY_METRIC = "paitient_tls_certificate_expiry_timestamp_seconds"


class CertificateExpiryCollector(Collector):
    """Reads the certificate's ``not_after`` on every scrape, so a reload shows at once."""

    def __init__(self, certificate: ReloadingCertificate) -> None:
        self.certificate = certificate

    def collect(self) -> Iterator[Metric]:
        expiry = GaugeMetricFamily(
            EXPIRY_METRIC,
            "Unix time at which the TLS certificate this server presents expires (after reloads).",
        )
        expiry.add_metric([], self.certificate.not_after.timestamp())
        yield expiry
