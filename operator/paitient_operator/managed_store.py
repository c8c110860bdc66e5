"""The store the Helm chart runs (Redis, one StatefulSet pod): what the operator does for it.

Every replica makes the password and (with the operator's CA) the certificate at start if they
are missing, before it reads its own store settings, which name them: the first operator of a new
install starts before either exists.

- **Its password**, made once at start: 32 random bytes, never rewritten (a Helm ``lookup``
  would do it too, but Argo CD renders without ``lookup``, and random values in a chart change
  at every render). The Secret holds the password for clients and the server's ACL file, which
  keeps only its SHA-256.
- **Its certificate**, with the operator's CA (``issueCertificate``): signed for the Service's
  names and kept until due, like a gateway's; ``ca.crt`` is the CA bundle clients verify with.
- **A restart when the certificate changes** (any issuer): Redis 7.0 reads it only at start, so
  the certificate's fingerprint is stamped on the StatefulSet's pod template and a change rolls
  the pod. Level-based: every pass reads, compares and writes only what differs.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import tempfile
import threading
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from paitient_common.kubeapi import Kube, KubeError, Obj
from paitient_operator.certificates import serving, x509
from paitient_operator.certificates.authority import AuthorityStore
from paitient_operator.children import sync_child
from paitient_operator.config import OperatorConfig

log = logging.getLogger(__name__)

PASSWORD_KEY: Final = "password"  # noqa: S105 - a key's name
ACL_KEY: Final = "users.acl"
CA_KEY: Final = "ca.crt"
PASSWORD_ENV: Final = "PAITIENT_STORE_PASSWORD"  # noqa: S105 - a variable's name
CA_FILE_ENV: Final = "PAITIENT_STORE_CA_FILE"
CERTIFICATE_ANNOTATION: Final = "paitient.ai/store-certificate"
LABELS: Final = {
    "app.kubernetes.io/managed-by": "paitient-operator",
    "app.kubernetes.io/part-of": "paitient",
    "app.kubernetes.io/component": "store",
}


def acl_file(password: str) -> str:
    """Redis's ACL file: the default user, with this password (as its SHA-256), may do all."""
    digest = hashlib.sha256(password.encode()).hexdigest()
    return f"user default on sanitize-payload #{digest} ~* &* +@all\n"


def build_password_secret(namespace: str, name: str, password: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(LABELS)},
        "data": {
            PASSWORD_KEY: base64.b64encode(password.encode()).decode(),
            ACL_KEY: base64.b64encode(acl_file(password).encode()).decode(),
        },
    }


def _password_in(secret: Obj) -> str:
    return base64.b64decode((secret.get("data") or {}).get(PASSWORD_KEY, "")).decode()


def ensure_password(kube: Kube, config: OperatorConfig) -> str | None:
    """The store's password: the Secret's, made now if it is missing (another replica's if it
    made it first). None when the chart runs no store."""
    name, namespace = config.managed_store.password_secret, config.system_namespace
    if not name:
        return None
    live = kube.get("v1", "Secret", name, namespace=namespace)
    if live is None:
        try:
            live = kube.create(build_password_secret(namespace, name, secrets.token_urlsafe(32)))
            log.info("made the store's password (Secret %s/%s)", namespace, name)
        except KubeError as exc:
            if exc.status != 409:
                raise
            live = kube.get("v1", "Secret", name, namespace=namespace) or {}
    return _password_in(live) or None


def adopt_password(password: str | None, environ: MutableMapping[str, str]) -> None:
    """This pod's own ``PAITIENT_STORE_PASSWORD`` comes from the Secret, which did not exist yet
    when the first operator pod started: that operator takes the password it made."""
    if password and not environ.get(PASSWORD_ENV):
        environ[PASSWORD_ENV] = password


def ensure_certificate(kube: Kube, config: OperatorConfig, now: datetime) -> Obj | None:
    """The store's TLS Secret: made now when the operator issues it and it is missing (never
    replaced here: renewals are the leader's, ``ManagedStore.sync``); None while someone else
    (cert-manager, an administrator) has not written it yet."""
    store, namespace = config.managed_store, config.system_namespace
    live = kube.get("v1", "Secret", store.tls_secret, namespace=namespace)
    if live is not None or not store.issue_certificate:
        return live
    authorities = AuthorityStore(kube, config.ca_namespace, namespace, config.tls, lambda: now)
    authority = authorities.current()
    names = service_names(store.service, namespace)
    pair = x509.issue(authority.signer, names, config.tls.certificate_lifetime, now)
    secret = build_tls_secret(namespace, store.tls_secret, pair, authority.bundle_pem, config)
    try:
        made = kube.create(secret)
        log.info(
            "issued the store's serving certificate, valid until %s", pair.cert.not_valid_after_utc
        )
        return made
    except KubeError as exc:
        if exc.status != 409:
            raise
        return kube.get("v1", "Secret", store.tls_secret, namespace=namespace)


def adopt_ca(secret: Obj | None, environ: MutableMapping[str, str], directory: Path) -> None:
    """``PAITIENT_STORE_CA_FILE`` names ``ca.crt`` of the store's TLS Secret, mounted into the
    operator's pod; the first operator pod started before that Secret existed, so its mount is
    still empty: it writes the CA it just made (or read) under ``directory`` and uses that."""
    configured = environ.get(CA_FILE_ENV)
    ca = base64.b64decode(((secret or {}).get("data") or {}).get(CA_KEY, "")).decode()
    if not configured or Path(configured).is_file() or not ca:
        return
    path = directory / "paitient-store-ca.crt"
    path.write_text(ca, encoding="utf-8")
    environ[CA_FILE_ENV] = str(path)


def adopt_store(kube: Kube, config: OperatorConfig, environ: MutableMapping[str, str]) -> None:
    """Before the operator reads its store settings: the chart's store's password and
    certificate, made if this is the first operator, and taken as its own settings when its pod
    started before they existed."""
    if not config.managed_store.password_secret:
        return
    adopt_password(ensure_password(kube, config), environ)
    if config.managed_store.tls_secret:
        secret = ensure_certificate(kube, config, datetime.now(UTC))
        adopt_ca(secret, environ, Path(tempfile.gettempdir()))


def service_names(service: str, namespace: str) -> list[str]:
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def build_tls_secret(
    namespace: str, name: str, pair: x509.KeyPair, bundle_pem: str, config: OperatorConfig
) -> Obj:
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
            "tls.crt": base64.b64encode(pair.cert_pem.encode()).decode(),
            "tls.key": base64.b64encode(pair.key_pem.encode()).decode(),
            CA_KEY: base64.b64encode(bundle_pem.encode()).decode(),
        },
    }


def certificate_fingerprint(secret: Obj | None) -> str | None:
    """What identifies the certificate a TLS Secret holds (None: it holds none yet)."""
    crt = ((secret or {}).get("data") or {}).get("tls.crt")
    return hashlib.sha256(crt.encode()).hexdigest()[:16] if crt else None


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ManagedStore:
    """One pass over the store's certificate and the pod that serves it (``sync``), and the
    thread that runs a pass every ``interval`` seconds on the leader."""

    kube: Kube
    config: OperatorConfig
    authorities: AuthorityStore
    clock: Callable[[], datetime] = _now
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sync(self) -> None:
        store, namespace = self.config.managed_store, self.config.system_namespace
        if not store.tls_secret:
            return
        live = self.kube.get("v1", "Secret", store.tls_secret, namespace=namespace)
        if store.issue_certificate:
            live = self._issued(live)
        fingerprint = certificate_fingerprint(live)
        if fingerprint and store.stateful_set:
            self._roll_when_changed(fingerprint)

    def _issued(self, live: Obj | None) -> Obj:
        """The Secret with a certificate that will do: the live one, or one signed now."""
        store, namespace = self.config.managed_store, self.config.system_namespace
        names, now = service_names(store.service, namespace), self.clock()
        pair = serving.keypair_of(live)
        authority = self.authorities.current()
        why = serving.renewal_reason(
            pair, names, authority.trusted, now, self.config.tls.renew_before
        )
        if why is not None:
            authority = self.authorities.current(fresh=True)  # never sign with a stale CA
            why = serving.renewal_reason(
                pair, names, authority.trusted, now, self.config.tls.renew_before
            )
        if pair is None or why is not None:
            pair = x509.issue(authority.signer, names, self.config.tls.certificate_lifetime, now)
            log.info("issued the store's serving certificate (%s), valid until %s",
                     why, pair.cert.not_valid_after_utc)  # fmt: skip
        desired = build_tls_secret(
            namespace, store.tls_secret, pair, authority.bundle_pem, self.config
        )
        _, synced = sync_child(self.kube, desired, live)
        return synced

    def _roll_when_changed(self, fingerprint: str) -> None:
        name, namespace = self.config.managed_store.stateful_set, self.config.system_namespace
        stateful_set = self.kube.get("apps/v1", "StatefulSet", name, namespace=namespace)
        if stateful_set is None:
            return
        template = stateful_set["spec"]["template"].get("metadata") or {}
        if (template.get("annotations") or {}).get(CERTIFICATE_ANNOTATION) == fingerprint:
            return
        patch = {"spec": {"template": {"metadata": {"annotations": {
            CERTIFICATE_ANNOTATION: fingerprint}}}}}  # fmt: skip
        self.kube.patch("apps/v1", "StatefulSet", name, patch, namespace=namespace)
        log.info("the store's certificate changed: restarting it to load %s", fingerprint)

    def start(self, interval: float) -> None:
        self._thread = threading.Thread(
            target=self._run, args=(interval,), name="managed-store", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.sync()
            except Exception:  # the next pass tries again
                log.exception("keeping the store's certificate failed")
