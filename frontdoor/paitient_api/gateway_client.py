"""The front door's way to a deployment's gateway: HTTPS that trusts only the gateways' CA
bundle, verifies the name its route gives, and fails closed with a ``service_error`` saying why.

A request tries the routes it is given in order (the replica picker's, or the Service's): a
route that refuses the connection, or does not accept it in time, gets nothing, so the next one
is tried; once a connection is made the request is that route's, whatever happens next: a
request a gateway may have started is never sent twice.

The bundle is the ConfigMap ``paitient-ca-bundle`` in the system namespace (published by the
operator: its own CA, or the cert-manager issuer's), re-read every few seconds, so a CA rotation
reaches the front door without a restart. A new bundle makes a new ``SSLContext``; connections
are pooled per context, so the old context's idle connections simply age out.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from paitient_api.replicas.metrics import FALLBACKS
from paitient_api.routing import GatewayRoute, Route
from paitient_common.errors import ServiceError
from paitient_common.kubeapi import Obj
from paitient_common.secrets import CA_BUNDLE_CONFIGMAP, CA_BUNDLE_KEY
from paitient_common.tls import client_context

log = logging.getLogger("paitient.api")
REFRESH_SECONDS = 5.0
# When every route refused the connection (a deployment just reported Ready: in a cluster the
# Service's endpoints reach kube-proxy up to its sync period, 1 s by default, after the pod
# turned Ready), all are tried again after these pauses. Nothing was sent, so trying again is
# safe; 2.5 s in all covers that window.
CONNECT_RETRY_DELAYS = (0.1, 0.2, 0.4, 0.8, 1.0)


class Lease(Protocol):
    """A request counted against a route's load until ``release``."""

    def release(self) -> None: ...


class _Untracked:
    def release(self) -> None:
        return None


def untracked(_route: Route) -> Lease:
    return _Untracked()


# The lease of each response still open, released when it is closed (``finished``) or, should
# a path forget that, when the response is garbage-collected.
_LEASES: weakref.WeakKeyDictionary[aiohttp.ClientResponse, weakref.finalize[Any, Any]] = (
    weakref.WeakKeyDictionary()
)


def _hold(response: aiohttp.ClientResponse, lease: Lease) -> None:
    _LEASES[response] = weakref.finalize(response, lease.release)


def finished(response: aiohttp.ClientResponse) -> None:
    """The request on ``response`` has ended: its route's load goes down."""
    release = _LEASES.pop(response, None)
    if release is not None:
        release()


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
    replicas: Sequence[Route] = (),
    start: Callable[[Route], Lease] = untracked,
) -> aiohttp.ClientResponse:
    """POST ``json`` (or the raw ``data``) to ``path`` on the deployment's gateway, over
    verified TLS only; the response unread, whatever its status. ``replicas``: the routes to
    try in order (the Service's when none); ``start`` counts the request against the route that
    takes it, until ``finished``."""
    meta = deployment["metadata"]
    name = meta["name"]
    candidates = list(replicas)
    if not candidates:
        route = routes.route(name, meta["namespace"])
        if route is None:
            raise ServiceError(f"deployment {name} has no gateway yet", status=503)
        candidates = [route]
    if not all(route.is_tls for route in candidates):
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
        return await post_first_reachable(
            candidates,
            lambda route: http.post(
                route.url + path,
                json=json,
                data=data,
                headers=headers,
                ssl=context,
                server_hostname=route.server_name,
            ),
            start,
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


async def post_first_reachable(
    routes: Sequence[Route],
    post: Callable[[Route], Awaitable[aiohttp.ClientResponse]],
    start: Callable[[Route], Lease] = untracked,
) -> aiohttp.ClientResponse:
    """``post(route)`` on the first route that accepts the connection. A refusal, a name that
    does not resolve or a connection not made in time (nothing was sent) moves on to the next
    route; when every route refused, all are tried again after each pause of
    ``CONNECT_RETRY_DELAYS`` (one that timed out is not tried again). A TLS failure is final at
    once, and so is anything that happens once the connection is made."""
    remaining = list(routes)
    failure: BaseException | None = None
    for delay in (0.0, *CONNECT_RETRY_DELAYS):
        if delay:
            await asyncio.sleep(delay)
        for route in list(remaining):
            lease = start(route)
            try:
                response = await post(route)
            except aiohttp.ClientSSLError:
                lease.release()
                raise
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                lease.release()
                failure = exc
                if isinstance(exc, aiohttp.ConnectionTimeoutError):
                    remaining.remove(route)
                if len(routes) > 1:
                    FALLBACKS.labels("refused").inc()
                continue
            except BaseException:
                lease.release()
                raise
            _hold(response, lease)
            return response
        if not remaining:
            break
    assert failure is not None
    raise failure
