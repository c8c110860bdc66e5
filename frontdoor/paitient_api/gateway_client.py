"""The front door's way to a deployment's gateway: HTTPS that trusts only the gateways' CA
bundle, verifies the name its route gives, and fails closed with a ``service_error`` saying why.

The bundle is the ConfigMap ``paitient-ca-bundle`` in the system namespace (published by the
operator: its own CA, or the cert-manager issuer's), re-read every few seconds, so a CA rotation
reaches the front door without a restart. A new bundle makes a new ``SSLContext``; connections
are pooled per context, so the old context's idle connections simply age out.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from paitient_api.routing import GatewayRoute
from paitient_common.errors import ServiceError
from paitient_common.kubeapi import Obj
from paitient_common.secrets import CA_BUNDLE_CONFIGMAP, CA_BUNDLE_KEY
from paitient_common.tls import client_context

log = logging.getLogger("paitient.api")
REFRESH_SECONDS = 5.0
# A gateway that refuses the connection of a deployment just reported Ready: in a cluster the
# Service's endpoints reach kube-proxy up to its sync period (1 s by default) after the pod
# turned Ready. Nothing was sent, so trying again is safe; 2.5 s in all covers that window.
CONNECT_RETRY_DELAYS = (0.1, 0.2, 0.4, 0.8, 1.0)

# Reads the bundle ConfigMap: (namespace, name) -> object or None.
ReadConfigMap = Callable[[str, str], Awaitable[Obj | None]]


@dataclass
class GatewayTrust:
    """The client ``SSLContext`` for gateways, built from the CA bundle last read."""

    namespace: str
    name: str = CA_BUNDLE_CONFIGMAP
    interval: float = REFRESH_SECONDS
    context: ssl.SSLContext | None = None
    _pem: str = field(default="", repr=False)

    def update(self, pem: str) -> bool:
        """Use ``pem`` from now on; True if it changed. A bundle that does not load keeps the
        previous one (and says so)."""
        if pem == self._pem:
            return False
        try:
            context = client_context(pem)
        except (ssl.SSLError, ValueError) as exc:
            log.error("the CA bundle %s/%s is not usable (%s); keeping the previous one",
                      self.namespace, self.name, exc)  # fmt: skip
            self._pem = pem
            return False
        self.context, self._pem = context, pem
        log.info("loaded the gateways' CA bundle from ConfigMap %s/%s", self.namespace, self.name)
        return True

    async def refresh(self, read: ReadConfigMap) -> None:
        found = await read(self.namespace, self.name)
        if found is None:
            log.warning("ConfigMap %s/%s (the gateways' CA bundle) does not exist yet",
                        self.namespace, self.name)  # fmt: skip
            return
        self.update(str((found.get("data") or {}).get(CA_BUNDLE_KEY, "")))

    async def run(self, read: ReadConfigMap) -> None:
        while True:
            try:
                await self.refresh(read)
            except Exception as exc:  # the API may be away a moment: keep the last bundle
                log.warning("could not read the gateways' CA bundle: %s", type(exc).__name__)
            await asyncio.sleep(self.interval)


def _certificate_problem(exc: aiohttp.ClientConnectorCertificateError) -> str:
    error = exc.certificate_error
    detail = getattr(error, "verify_message", "") or str(error)
    return str(detail).rstrip(".")


async def post_to_gateway(
    http: aiohttp.ClientSession,
    routes: GatewayRoute,
    trust: GatewayTrust,
    deployment: Obj,
    path: str,
    headers: dict[str, str],
    *,
    json: Any = None,
    data: bytes | None = None,
) -> aiohttp.ClientResponse:
    """POST ``json`` (or the raw ``data``) to ``path`` on the deployment's gateway, over
    verified TLS only; the response unread, whatever its status."""
    meta = deployment["metadata"]
    name = meta["name"]
    route = routes.route(name, meta["namespace"])
    if route is None:
        raise ServiceError(f"deployment {name} has no gateway yet", status=503)
    if not route.is_tls:
        raise ServiceError(
            f"the route to deployment {name}'s gateway is not HTTPS; prompts are never sent in "
            "plain text",
            status=502,
        )
    context = trust.context
    if context is None:
        raise ServiceError(
            "the front door has not loaded the gateways' CA bundle yet "
            f"(ConfigMap {trust.namespace}/{trust.name})",
            status=503,
        )
    try:
        return await post_retrying_refusals(
            lambda: http.post(
                route.url + path,
                json=json,
                data=data,
                headers=headers,
                ssl=context,
                server_hostname=route.server_name,
            )
        )
    except aiohttp.ClientConnectorCertificateError as exc:
        raise ServiceError(
            f"the gateway of deployment {name} presented a certificate the front door does not "
            f"trust ({_certificate_problem(exc)})",
            status=502,
        ) from None
    except aiohttp.ClientSSLError:
        raise ServiceError(
            f"the TLS handshake with the gateway of deployment {name} failed", status=502
        ) from None
    except (aiohttp.ClientError, TimeoutError):
        raise ServiceError(f"the gateway of deployment {name} is unreachable", status=502) from None


async def post_retrying_refusals(
    post: Callable[[], Awaitable[aiohttp.ClientResponse]],
) -> aiohttp.ClientResponse:
    """``post()``, tried again only while the connection is refused or the name does not resolve
    (the request was never sent); a TLS failure is final at once."""
    for delay in (*CONNECT_RETRY_DELAYS, None):
        try:
            return await post()
        except aiohttp.ClientSSLError:
            raise
        except aiohttp.ClientConnectorError:
            if delay is None:
                raise
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")
