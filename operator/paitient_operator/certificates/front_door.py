"""The front door's HTTPS certificate, from the operator's own CA (``frontDoorCertificate``).

So the front door serves HTTPS from its first start with nobody providing a certificate: the
Secret ``frontDoorCertificate.secretName`` in the system namespace holds ``tls.crt``/``tls.key``
for ``frontDoorCertificate.names`` and ``ca.crt`` (the CA bundle, the one published as
``paitient-ca-bundle``, which clients and a re-encrypting proxy trust). Kept and renewed exactly
like a gateway's serving certificate (``serving.renewal_reason``); the front door pod mounts the
Secret and reloads it in place. A thread looks again every ``tls.renewalCheckSeconds``.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from paitient_common.kubeapi import Kube, Obj
from paitient_common.secrets import CA_BUNDLE_KEY
from paitient_operator.certificates import serving, x509
from paitient_operator.certificates.authority import AuthorityStore
from paitient_operator.children import sync_child
from paitient_operator.config import OperatorConfig
from paitient_operator.observed_metrics import OBSERVED

log = logging.getLogger(__name__)

LABELS: Final = {
    "app.kubernetes.io/managed-by": "paitient-operator",
    "app.kubernetes.io/part-of": "paitient",
    serving.CERTIFICATE_LABEL: "front-door",
}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def build_secret(
    namespace: str, name: str, pair: x509.KeyPair, bundle_pem: str, config: OperatorConfig
) -> Obj:
    """The ``kubernetes.io/tls`` Secret the front door mounts (pure)."""
    cert = pair.cert
    renew = serving.renew_after(cert, config.tls.renew_before)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(LABELS),
            "annotations": {
                serving.NOT_AFTER_ANNOTATION: f"{cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}",
                serving.RENEW_AFTER_ANNOTATION: f"{renew:%Y-%m-%dT%H:%M:%SZ}",
            },
        },
        "data": {
            "tls.crt": _b64(pair.cert_pem),
            "tls.key": _b64(pair.key_pem),
            CA_BUNDLE_KEY: _b64(bundle_pem),
        },
    }


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class FrontDoorCertificate:
    """``sync()``: one level-based pass (read, keep or issue, write what differs)."""

    kube: Kube
    config: OperatorConfig
    authorities: AuthorityStore
    clock: Callable[[], datetime] = _now
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.config.front_door_certificate.secret_name)

    def sync(self) -> Obj | None:
        """The Secret as it is after this pass (None when the operator issues none)."""
        if not self.enabled:
            return None
        wanted, namespace = self.config.front_door_certificate, self.config.system_namespace
        live = self.kube.get("v1", "Secret", wanted.secret_name, namespace=namespace)
        pair, now = serving.keypair_of(live), self.clock()
        authority = self.authorities.current()

        def reason() -> str | None:
            return serving.renewal_reason(
                pair, wanted.names, authority.trusted, now, self.config.tls.renew_before
            )

        if reason() is not None:
            authority = self.authorities.current(fresh=True)  # never sign with a stale CA
        why = reason()
        if pair is None or why is not None:
            pair = x509.issue(
                authority.signer, wanted.names, self.config.tls.certificate_lifetime, now
            )
            log.info("issued the front door's certificate (%s), valid until %s",
                     why, pair.cert.not_valid_after_utc)  # fmt: skip
        desired = build_secret(
            namespace, wanted.secret_name, pair, authority.bundle_pem, self.config
        )
        _, synced = sync_child(self.kube, desired, live)
        OBSERVED.certificate(
            "front-door", serving.renew_after(pair.cert, self.config.tls.renew_before)
        )
        return synced

    def start(self) -> None:
        if not self.enabled:
            return
        self._thread = threading.Thread(target=self._run, name="front-door-tls", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.config.tls.renewal_check_seconds):
            try:
                self.sync()
            except Exception:  # the next pass tries again; the alert on renewal time shows it
                log.exception("keeping the front door's certificate failed")
