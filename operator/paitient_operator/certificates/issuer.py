"""The reconciler's certificate step: the serving Secret (operator issuer) or cert-manager
Certificate a ModelDeployment needs now, and what its status says about it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from cryptography.x509 import Certificate

from paitient_common.kubeapi import Kube, Obj
from paitient_common.resources.modeldeployment import ModelDeployment
from paitient_operator.builders.metadata import service_names, serving_secret_name
from paitient_operator.certificates import serving, x509
from paitient_operator.certificates.authority import AuthorityStore, publish_bundle
from paitient_operator.children import adopt
from paitient_operator.config import OperatorConfig

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ServingIssuer:
    """Renders each deployment's certificate child; signs with the operator's CA when the
    live certificate will not do."""

    kube: Kube
    config: OperatorConfig
    clock: Callable[[], datetime] = _now
    authorities: AuthorityStore = field(init=False)

    def __post_init__(self) -> None:
        self.authorities = AuthorityStore(
            self.kube,
            self.config.ca_namespace,
            self.config.system_namespace,
            self.config.tls,
            self.clock,
        )

    @property
    def by_operator(self) -> bool:
        return self.config.tls.issuer == "operator"

    def prepare(self) -> None:
        """At start: make the CA if there is none (operator issuer), and publish the bundle
        the front door trusts (the cert-manager issuer's, from the configuration)."""
        if self.by_operator:
            self.authorities.current(fresh=True)
        else:
            publish_bundle(
                self.kube, self.config.system_namespace, self.config.tls.cert_manager.ca_bundle
            )

    def desired(
        self, md: ModelDeployment, owner: Obj, cached: Obj | Literal[False] | None = False
    ) -> tuple[Obj, Obj | Literal[False] | None]:
        """The adopted child and, when it was read, the live copy (for ``sync_child``).
        ``cached``: the live Secret as a cache has it (None: absent; False: none, ask)."""
        tls = self.config.tls
        if not self.by_operator:
            return adopt(serving.build_certificate(md, tls), owner), False
        name = serving_secret_name(md)
        live = (
            self.kube.get("v1", "Secret", name, namespace=md.namespace)
            if cached is False
            else cached
        )
        pair = self._kept_or_issued(md, serving.keypair_of(live))
        return adopt(serving.build_serving_secret(md, pair, tls.renew_before), owner), live

    def _kept_or_issued(self, md: ModelDeployment, pair: x509.KeyPair | None) -> x509.KeyPair:
        """The live pair if it will do, else a new one from the CA as the API has it now."""
        tls, names, now = self.config.tls, service_names(md), self.clock()

        def reason(trusted: Sequence[Certificate]) -> str | None:
            return serving.renewal_reason(pair, names, trusted, now, tls.renew_before)

        if pair is not None and reason(self.authorities.current().trusted) is None:
            return pair
        authority = self.authorities.current(fresh=True)  # never sign with a stale CA
        why = reason(authority.trusted)
        if pair is not None and why is None:
            return pair
        issued = x509.issue(authority.signer, names, tls.certificate_lifetime, now)
        log.info("issued a serving certificate for %s/%s (%s), valid until %s",
                 md.namespace, md.name, why, issued.cert.not_valid_after_utc)  # fmt: skip
        return issued

    def state(self, md: ModelDeployment, live: Obj | None) -> serving.ServingCertificate:
        """The status of the child as synced (``live``: the object the API returned)."""
        if not self.by_operator:
            return serving.certificate_state(md, live, self.config.tls)
        pair = serving.keypair_of(live)
        if pair is None:
            return serving.ServingCertificate(
                serving_secret_name(md), serving.OPERATOR_ISSUER, ready=False,
                message="no serving certificate yet",
            )  # fmt: skip
        cert = pair.cert
        return serving.ServingCertificate(
            secret_name=serving_secret_name(md),
            issuer=serving.OPERATOR_ISSUER,
            not_after=cert.not_valid_after_utc,
            renew_after=serving.renew_after(cert, self.config.tls.renew_before),
            message=f"valid until {cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}",
        )
