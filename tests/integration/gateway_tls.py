"""Calling a gateway of the local data plane the way the front door does: over TLS to
127.0.0.1, verifying the certificate for the Service name the routes file gives, trusting only
the CA bundle the operator publishes."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from paitient_common.kubeapi import Kube
from paitient_common.secrets import CA_BUNDLE_CONFIGMAP, CA_BUNDLE_KEY
from paitient_common.tls import client_context
from tests.integration.waiting import wait_for

SYSTEM = "paitient-system"


def ca_bundle(kube: Kube, namespace: str = SYSTEM) -> str:
    """The CA bundle the operator published (waits for it)."""
    found = wait_for(
        lambda: kube.get("v1", "ConfigMap", CA_BUNDLE_CONFIGMAP, namespace=namespace),
        what="the CA bundle ConfigMap",
    )
    return str(found["data"][CA_BUNDLE_KEY])


class _Connection(http.client.HTTPSConnection):
    """HTTPS to one address, verifying the certificate for another name (SNI included)."""

    def __init__(
        self, host: str, port: int, server_name: str, context: ssl.SSLContext, timeout: float
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._server_name, self._ctx = server_name, context

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(sock, server_hostname=self._server_name)


@dataclass(frozen=True)
class Gateway:
    """One gateway: where it listens, the name its certificate carries, whom to trust."""

    url: str
    server_name: str
    context: ssl.SSLContext
    timeout: float = 30

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return str(parts.hostname), int(parts.port or 443)

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        """(status, headers, parsed JSON or text), like ``frontdoor_process.call``."""
        connection = _Connection(*self.address, self.server_name, self.context, self.timeout)
        try:
            connection.request(
                method,
                path,
                body=json.dumps(body).encode() if body is not None else None,
                headers={"Content-Type": "application/json", **(headers or {})},
            )
            response = connection.getresponse()
            status, hdrs, payload = response.status, dict(response.headers), response.read()
        finally:
            connection.close()
        text = payload.decode(errors="replace")
        try:
            return status, hdrs, json.loads(text)
        except ValueError:
            return status, hdrs, text


def route_entry(routes: Path, key: str, timeout: float = 30) -> dict[str, str]:
    """The routes file's entry for ``namespace/name`` (waits for it)."""
    return dict(
        wait_for(
            lambda: json.loads(routes.read_text()).get(key) if routes.exists() else None,
            timeout=timeout,
            what=f"a route to {key}",
        )
    )


def gateway(routes: Path, key: str, kube: Kube, timeout: float = 30) -> Gateway:
    entry = route_entry(routes, key, timeout)
    return Gateway(entry["url"], entry["serverName"], client_context(ca_bundle(kube)))
