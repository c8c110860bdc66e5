"""Encryption in transit on the local cluster, shown by handshakes and refusals, not by config:

- the gateway's port answers a ClientHello with a ServerHello and a plain HTTP request with no
  HTTP at all; a client trusting another CA, or expecting another name, is refused;
- the front door, given the wrong CA bundle or a plain-HTTP route, fails closed with a
  ``service_error`` that says why;
- both SDKs reach a front door serving TLS with a custom CA, and refuse it without that CA.

Renewal: ``test_tls_renewal.py``; the CA (where its key is, two operators, rotation):
``test_tls_ca.py``; cert-manager's issuer, with cert-manager's own controllers:
``test_tls_cert_manager.py``.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paitient_secure_model as sdk
import pytest
from cryptography import x509 as cx509

from paitient_common.kubeapi import Kube
from paitient_common.secrets import CA_BUNDLE_KEY
from paitient_common.tls import client_context
from paitient_operator.certificates import x509
from tests.integration.frontdoor_process import ApiProcess, call
from tests.integration.gateway_tls import SYSTEM, Gateway, gateway
from tests.integration.stack_helpers import REPO
from tests.integration.tls_helpers import completion, headers, routes_of
from tests.integration.waiting import wait_for

NOW = datetime.now(UTC)
STRANGER_CA = x509.new_authority("a CA nobody here trusts", timedelta(days=1), NOW)


@pytest.fixture
def served(stack: ApiProcess, stack_tenant: dict[str, str], kube: Kube) -> Gateway:
    """The gateway of the stack's deployment-123."""
    return gateway(routes_of(stack), f"{stack_tenant['namespace']}/deployment-123", kube)


# -- the gateway's port ---------------------------------------------------------------------------


def test_the_gateway_port_answers_a_client_hello_with_a_server_hello(served: Gateway) -> None:
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = served.context.wrap_bio(incoming, outgoing, server_hostname=served.server_name)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    assert hello[0] == 0x16 and hello[5] == 0x01  # a handshake record holding a ClientHello
    with socket.create_connection(served.address, timeout=10) as sock:
        sock.sendall(hello)
        answer = sock.recv(65536)
        # The first bytes back: a TLS handshake record (0x16, legacy version 3.3) that opens
        # with a ServerHello (type 2). Nothing of HTTP.
        assert answer[0] == 0x16 and answer[1:3] == b"\x03\x03" and answer[5] == 0x02, answer[:8]
        incoming.write(answer)
        while True:  # finish the handshake over the same socket
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if pending := outgoing.read():
                    sock.sendall(pending)
                incoming.write(sock.recv(65536))
        sock.sendall(outgoing.read())
    assert tls.version() == "TLSv1.3"
    assert served.server_name in x509.names_of(
        cx509.load_der_x509_certificate(tls.getpeercert(binary_form=True) or b"")
    )


def test_plain_http_to_the_gateway_gets_no_http_answer(served: Gateway) -> None:
    with socket.create_connection(served.address, timeout=10) as sock:
        sock.sendall(b"GET /healthz/live HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n")
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    assert not received.startswith(b"HTTP/"), received[:64]
    # At most a TLS alert record (0x15), then the connection is closed.
    assert received == b"" or received[0] == 0x15, received[:16]
    host, port = served.address
    with pytest.raises((http.client.HTTPException, ConnectionError, urllib.error.URLError)):
        urllib.request.urlopen(f"http://{host}:{port}/healthz/live", timeout=10)


def test_a_client_with_another_ca_or_expecting_another_name_is_refused(
    served: Gateway, stack_tenant: dict[str, str]
) -> None:
    assert completion(served, stack_tenant) == 200
    stranger = Gateway(served.url, served.server_name, client_context(STRANGER_CA.cert_pem))
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        completion(stranger, stack_tenant)
    elsewhere = Gateway(served.url, "deployment-123.other-tenant.svc", served.context)
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        completion(elsewhere, stack_tenant)


# -- the front door fails closed ------------------------------------------------------------------


def test_the_front_door_refuses_a_gateway_it_cannot_verify_with_a_service_error(
    stack: ApiProcess, stack_tenant: dict[str, str], kube: Kube, kubeconfig: Path, tmp_path: Path
) -> None:
    wrong = f"paitient-ca-bundle-wrong-{uuid.uuid4().hex[:6]}"
    kube.create(
        {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": wrong, "namespace": SYSTEM},
            "data": {CA_BUNDLE_KEY: STRANGER_CA.cert_pem},
        }
    )  # fmt: skip
    untrusting = ApiProcess(
        kubeconfig, tmp_path / "untrusting.log", gateway_url=stack.gateway_url,
        extra_args=("--gateway-ca-configmap", wrong),
    )  # fmt: skip
    plain = ApiProcess(
        kubeconfig, tmp_path / "plain.log", gateway_url="http://{name}.{namespace}.svc:8443"
    )
    body = {"deployment_id": "deployment-123", "prompt": "hi", "max_tokens": 2}
    try:
        untrusting.start()

        def generate() -> tuple[int, dict[str, str], Any] | None:
            answer = call("POST", f"{untrusting.base_url}/generate", body, headers(stack_tenant))
            return None if "not loaded the gateways' CA bundle" in str(answer[2]) else answer

        status, _, answer = wait_for(generate, what="the front door to load the (wrong) bundle")
        assert status == 502, answer
        assert answer["error"]["type"] == "service_error"
        assert "presented a certificate the front door does not trust" in answer["error"]["message"]
        assert "unable to get local issuer certificate" in answer["error"]["message"]
        client = sdk.SecureModelClient(
            api_key=stack_tenant["key"], client_id=stack_tenant["client_id"],
            base_url=untrusting.base_url, max_retries=0,
        )  # fmt: skip
        with pytest.raises(sdk.ServiceError, match="does not trust"):
            client.generate(deployment_id="deployment-123", prompt="hi", max_tokens=2)
        client.close()

        plain.start()
        status, _, answer = call("POST", f"{plain.base_url}/generate", body, headers(stack_tenant))
        assert status == 502 and answer["error"]["type"] == "service_error"
        assert "not HTTPS" in answer["error"]["message"]
    finally:
        untrusting.stop()
        plain.stop()
        kube.delete("v1", "ConfigMap", wrong, namespace=SYSTEM)


# -- the SDKs against a TLS front door ---------------------------------------------------------------


@pytest.fixture
def tls_front_door(
    stack: ApiProcess, stack_tenant: dict[str, str], kubeconfig: Path, tmp_path: Path
) -> Iterator[tuple[ApiProcess, Path]]:
    """A second front door serving HTTPS with a certificate from a CA of the test's own."""
    ca = x509.new_authority("front door test CA", timedelta(days=1), NOW)
    leaf = x509.issue(ca, ["localhost", "127.0.0.1"], timedelta(days=1), NOW)
    cert, key, bundle = tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "ca.pem"
    cert.write_text(leaf.cert_pem)
    key.write_text(leaf.key_pem)
    bundle.write_text(ca.cert_pem)
    api = ApiProcess(
        kubeconfig, tmp_path / "api.log", gateway_url=stack.gateway_url, tls=(cert, key)
    )
    api.start()
    try:
        yield api, bundle
    finally:
        api.stop()


def test_the_python_sdk_talks_to_a_tls_front_door_with_a_custom_ca(
    tls_front_door: tuple[ApiProcess, Path],
    stack_tenant: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api, bundle = tls_front_door
    assert api.base_url.startswith("https://")
    monkeypatch.delenv("PAITIENT_CA_BUNDLE", raising=False)  # the session's front-door CA
    credentials = {"api_key": stack_tenant["key"], "client_id": stack_tenant["client_id"]}
    with sdk.SecureModelClient(**credentials, base_url=api.base_url, ca_bundle=bundle) as client:
        assert client.get_subscription().tier == "standard"
        text = client.generate(deployment_id="deployment-123", prompt="over TLS", max_tokens=4).text
        assert text
    with (
        sdk.SecureModelClient(**credentials, base_url=api.base_url, max_retries=0) as client,
        pytest.raises(sdk.APIConnectionError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.get_subscription()  # verified by default: the system's CAs do not know it
    monkeypatch.setenv("PAITIENT_CA_BUNDLE", str(bundle))
    monkeypatch.setenv("PAITIENT_BASE_URL", api.base_url)
    with sdk.SecureModelClient(**credentials) as client:  # everything from the environment
        assert client.get_subscription().tier == "standard"


def test_the_javascript_sdk_talks_to_a_tls_front_door_with_a_custom_ca(
    tls_front_door: tuple[ApiProcess, Path], stack_tenant: dict[str, str]
) -> None:
    api, bundle = tls_front_door
    script = (
        "const { SecureModelClient } = require(process.argv[1]);"
        "(async () => {"
        "  const client = new SecureModelClient({ maxRetries: 0 });"
        "  try {"
        "    const sub = await client.getSubscription();"
        "    const gen = await client.generate({ deploymentId: 'deployment-123', prompt: 'over TLS', maxTokens: 4 });"
        "    console.log(JSON.stringify({ tier: sub.tier, text: gen.text }));"
        "  } catch (err) { console.log(JSON.stringify({ error: err.name, message: err.message })); }"
        "})();"
    )
    env = {
        **os.environ,
        "PAITIENT_API_KEY": stack_tenant["key"],
        "PAITIENT_CLIENT_ID": stack_tenant["client_id"],
        "PAITIENT_BASE_URL": api.base_url,
    }
    env.pop("PAITIENT_CA_BUNDLE", None)
    env.pop("NODE_EXTRA_CA_CERTS", None)

    def node(extra: dict[str, str]) -> dict[str, Any]:
        result = subprocess.run(
            ["node", "-e", script, str(REPO / "sdk" / "js")],
            env={**env, **extra}, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        return answer

    trusted = node({"PAITIENT_CA_BUNDLE": str(bundle)})
    assert trusted["tier"] == "standard" and trusted["text"], trusted
    refused = node({})
    assert refused["error"] == "APIConnectionError", refused
    assert "certificate" in refused["message"], refused
