"""Kubeconfigs that authenticate as a ServiceAccount, for the processes the local data plane runs
in place of a pod's containers.

On a real node the kubelet mints a token for the pod's ServiceAccount (TokenRequest API) and
projects it into the container, so the gateway is held to exactly what RBAC grants that account.
Here the data plane does the same: ``mint_token`` asks the API server for a token,
``service_account_kubeconfig`` (pure) puts it in a kubeconfig next to the admin kubeconfig's
server and CA, and ``kubeconfig.write_kubeconfig`` writes that file readable by its owner only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

# The cluster entry's keys that say how to reach and trust the API server; nothing else of the
# admin kubeconfig (least of all its user) goes into a ServiceAccount's kubeconfig.
CLUSTER_KEYS = (
    "server",
    "certificate-authority",
    "certificate-authority-data",
    "tls-server-name",
    "insecure-skip-tls-verify",
    "proxy-url",
)


class Requester(Protocol):
    """What ``mint_token`` needs of ``paitient_common.kubeapi.Kube``."""

    def request(self, method: str, path: str, body: Any = None) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ServiceAccountToken:
    """A minted token and its lifetime (the token itself stays out of ``repr``)."""

    namespace: str
    service_account: str
    token: str = field(repr=False)
    issued_at: datetime
    expires_at: datetime

    @property
    def user(self) -> str:
        return service_account_user(self.namespace, self.service_account)

    def due_for_renewal(self, now: datetime) -> bool:
        """Past half its life, as a margin the kubelet also keeps (it renews at 80 %)."""
        return now >= self.issued_at + (self.expires_at - self.issued_at) / 2


def service_account_user(namespace: str, service_account: str) -> str:
    """The user name the API server gives requests made with the account's tokens."""
    return f"system:serviceaccount:{namespace}:{service_account}"


def token_request(expiration_seconds: int) -> dict[str, Any]:
    """The TokenRequest body (pure). No audience: the API server's own, as the default mount."""
    return {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": expiration_seconds},
    }


def token_path(namespace: str, service_account: str) -> str:
    return f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token"


def mint_token(
    kube: Requester,
    namespace: str,
    service_account: str,
    expiration_seconds: int,
    now: datetime | None = None,
) -> ServiceAccountToken:
    """A new token for ``namespace/service_account``; raises ``KubeError`` if the API refuses
    (for example, the account does not exist yet)."""
    issued_at = now or datetime.now(UTC)  # taken before the request: errs on the early side
    answer = kube.request(
        "POST", token_path(namespace, service_account), body=token_request(expiration_seconds)
    )
    status = answer.get("status") or {}
    token = status.get("token")
    if not token:
        raise ValueError(f"TokenRequest for {namespace}/{service_account} returned no token")
    stamp = status.get("expirationTimestamp")
    expires_at = (
        datetime.fromisoformat(stamp)
        if stamp
        else issued_at + timedelta(seconds=expiration_seconds)
    )
    return ServiceAccountToken(namespace, service_account, token, issued_at, expires_at)


def service_account_kubeconfig(
    admin: Mapping[str, Any], admin_path: Path, token: str, namespace: str, service_account: str
) -> dict[str, Any]:
    """A kubeconfig (pure) with the admin kubeconfig's current cluster (server and CA only)
    and ``token`` as its only user; its context's namespace is the account's, as in the pod.

    A relative ``certificate-authority`` is made absolute against ``admin_path``'s directory,
    where kubectl and the Python client look for it, since the new file lives elsewhere.
    """
    context_name = admin["current-context"]
    context = next(c["context"] for c in admin["contexts"] if c["name"] == context_name)
    source = next(c["cluster"] for c in admin["clusters"] if c["name"] == context["cluster"])
    cluster = {key: source[key] for key in CLUSTER_KEYS if key in source}
    if "certificate-authority" in cluster:
        cluster["certificate-authority"] = str(
            (admin_path.parent / cluster["certificate-authority"]).resolve()
        )
    name = f"{namespace}:{service_account}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context["cluster"], "cluster": cluster}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [
            {
                "name": name,
                "context": {"cluster": context["cluster"], "user": name, "namespace": namespace},
            }
        ],
        "current-context": name,
    }
