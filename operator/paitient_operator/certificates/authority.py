"""The operator's own CA: a Secret in a namespace of its own, made at first start, replaced before
it expires, and the public bundle every client of a gateway trusts.

The Secret ``paitient-ca`` (type ``kubernetes.io/tls``) lives in ``<systemNamespace>-ca``, not in
the system namespace, where gateways and the front door may list Secrets (the key records):
whoever held the CA key could pose as any gateway. ``tls.crt`` / ``tls.key`` are the CA that
signs now; ``ca.crt`` is the bundle, that CA and every earlier one not yet expired. A rotation
makes a new CA and keeps the old one in the bundle, so certificates it signed stay trusted until
their own renewal (a leaf never outlives its CA, so all are renewed before the old CA expires).
The bundle is published as the ConfigMap ``paitient-ca-bundle`` in the system namespace: public
material, like ``kube-root-ca.crt``.

Two operators at once: both find no CA and make one; the API server accepts one create, the
other gets 409 and reads the winner's. A rotation is a patch carrying the ``resourceVersion`` it
read, so of two operators rotating at once one wins and the other, refused with 409, reads the
new CA rather than overwriting it. Nothing is kept that the Secret does not hold.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography import x509 as cx509

from paitient_common.kubeapi import Kube, KubeError, Obj
from paitient_common.secrets import CA_BUNDLE_CONFIGMAP, CA_BUNDLE_KEY, CA_SECRET
from paitient_operator.certificates import x509
from paitient_operator.children import sync_child
from paitient_operator.config import TLSConfig
from paitient_operator.observed_metrics import OBSERVED

log = logging.getLogger(__name__)

LABELS: Final = {
    "app.kubernetes.io/managed-by": "paitient-operator",
    "app.kubernetes.io/part-of": "paitient",
}
CA_COMMON_NAME: Final = "PaiTIENT gateway CA"
# How long a read of the CA Secret is trusted before it is read again, so a CA another
# operator rotated (or an admin replaced) is picked up without a restart.
REREAD_SECONDS: Final = 60.0


class AuthorityUnavailable(RuntimeError):
    """The CA Secret exists but cannot be used: a person has to look (reconciles retry)."""


@dataclass(frozen=True)
class Authority:
    """The CA that signs now and every CA still trusted (itself included)."""

    signer: x509.KeyPair
    trusted: tuple[cx509.Certificate, ...]
    resource_version: str = ""

    @property
    def bundle_pem(self) -> str:
        return x509.bundle_pem(self.trusted)

    def due_for_rotation(self, now: datetime, renew_before: timedelta) -> bool:
        return now >= self.signer.cert.not_valid_after_utc - renew_before


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _text(data: dict[str, str], key: str) -> str:
    return base64.b64decode(data.get(key, "")).decode()


def parse_authority(secret: Obj) -> Authority:
    """The CA held by the Secret; ValueError when it is not a usable one."""
    data = secret.get("data") or {}
    signer = x509.KeyPair(_text(data, "tls.crt"), _text(data, "tls.key"))
    _ = signer.cert, signer.key  # parsed now: a broken Secret must fail here, not when signing
    trusted = x509.load_certificates(_text(data, CA_BUNDLE_KEY))
    if not any(c == signer.cert for c in trusted):
        trusted.insert(0, signer.cert)
    rv = str((secret.get("metadata") or {}).get("resourceVersion", ""))
    return Authority(signer, tuple(trusted), rv)


def rotate(previous: Authority | None, config: TLSConfig, now: datetime) -> Authority:
    """A new signing CA; the previous ones stay trusted until they expire."""
    signer = x509.new_authority(CA_COMMON_NAME, config.ca_lifetime, now)
    kept = tuple(c for c in (previous.trusted if previous else ()) if c.not_valid_after_utc > now)
    return Authority(signer, (signer.cert, *kept))


def build_ca_secret(namespace: str, authority: Authority) -> Obj:
    meta: Obj = {"name": CA_SECRET, "namespace": namespace, "labels": dict(LABELS)}
    if authority.resource_version:  # the update is refused if someone changed it meanwhile
        meta["resourceVersion"] = authority.resource_version
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": meta,
        "data": {
            "tls.crt": _b64(authority.signer.cert_pem),
            "tls.key": _b64(authority.signer.key_pem),
            CA_BUNDLE_KEY: _b64(authority.bundle_pem),
        },
    }


def build_ca_bundle_configmap(namespace: str, bundle_pem: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CA_BUNDLE_CONFIGMAP, "namespace": namespace, "labels": dict(LABELS)},
        "data": {CA_BUNDLE_KEY: bundle_pem},
    }


def publish_bundle(kube: Kube, namespace: str, bundle_pem: str) -> None:
    """Write the bundle ConfigMap when it differs (the cert-manager issuer's bundle too)."""
    sync_child(kube, build_ca_bundle_configmap(namespace, bundle_pem))


@dataclass
class AuthorityStore:
    """The CA as the Secret holds it, read again every ``REREAD_SECONDS`` (or on demand),
    created when missing and rotated when due. Thread-safe: reconciles run in a pool."""

    kube: Kube
    namespace: str  # of the CA's Secret
    bundle_namespace: str  # of the published bundle (the system namespace)
    config: TLSConfig
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    _cached: Authority | None = field(default=None, init=False)
    _read_at: float = field(default=0.0, init=False)
    _published: str = field(default="", init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def current(self, *, fresh: bool = False) -> Authority:
        """The CA to sign with; ``fresh`` reads the Secret even if the last read is recent
        (before signing, so a rotation elsewhere is never missed)."""
        with self._lock:
            recent = time.monotonic() - self._read_at < REREAD_SECONDS
            if self._cached is None or fresh or not recent:
                self._cached = self._read_or_make()
                self._read_at = time.monotonic()
                OBSERVED.certificate("ca", self._cached.signer.cert.not_valid_after_utc
                                     - self.config.ca_renew_before)  # fmt: skip
                if self._cached.bundle_pem != self._published:
                    publish_bundle(self.kube, self.bundle_namespace, self._cached.bundle_pem)
                    self._published = self._cached.bundle_pem
            return self._cached

    def _read_or_make(self) -> Authority:
        for _ in range(5):  # each round ends in a CA, or in losing a race and reading again
            secret = self.kube.get("v1", "Secret", CA_SECRET, namespace=self.namespace)
            now = self.clock()
            if secret is None:
                self._ensure_namespace()
                made = rotate(None, self.config, now)
                try:
                    created = self.kube.create(build_ca_secret(self.namespace, made))
                except KubeError as exc:
                    if exc.status == 409:
                        continue  # another operator made it first: use theirs
                    raise
                log.info("created the gateway CA (Secret %s/%s)", self.namespace, CA_SECRET)
                return parse_authority(created)
            try:
                authority = parse_authority(secret)
            except ValueError as exc:
                raise AuthorityUnavailable(
                    f"Secret {self.namespace}/{CA_SECRET} holds no usable CA ({exc}); delete it "
                    "and the operator makes a new one (every serving certificate is re-issued)"
                ) from None
            if not authority.due_for_rotation(now, self.config.ca_renew_before):
                return authority
            rotated = rotate(authority, self.config, now)
            rotated = Authority(rotated.signer, rotated.trusted, authority.resource_version)
            try:
                patched = self.kube.patch(
                    "v1", "Secret", CA_SECRET, build_ca_secret(self.namespace, rotated),
                    namespace=self.namespace,
                )  # fmt: skip
            except KubeError as exc:
                if exc.status == 409:
                    continue  # rotated by someone else since the read: read theirs
                raise
            log.info("rotated the gateway CA; the previous one stays trusted until it expires")
            return parse_authority(patched)
        raise AuthorityUnavailable(f"Secret {self.namespace}/{CA_SECRET} keeps changing")

    def _ensure_namespace(self) -> None:
        namespace = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": self.namespace, "labels": dict(LABELS)},
        }
        try:
            self.kube.create(namespace)
        except KubeError as exc:
            if exc.status != 409:  # there already (made by another operator, or by hand)
                raise
