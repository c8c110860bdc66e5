"""Encryption in transit on the local cluster, shown by handshakes and refusals, not by config:

- the gateway's port answers a ClientHello with a ServerHello and a plain HTTP request with no
  HTTP at all; a client trusting another CA, or expecting another name, is refused;
- the front door, given the wrong CA bundle or a plain-HTTP route, fails closed with a
  ``service_error`` that says why;
- a serving certificate near expiry is replaced before it expires, the gateway picks it up
  without a restart, and requests running meanwhile all succeed (bounded load);
- two operators starting or rotating the CA at once end with one CA;
- with cert-manager (its real CRDs), the operator writes a Certificate instead of a Secret;
- both SDKs reach a front door serving TLS with a custom CA, and refuse it without that CA.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paitient_secure_model as sdk
import pytest
from cryptography import x509 as cx509

from paitient_cli import admin
from paitient_common.kubeapi import Kube, KubeError
from paitient_common.resources.install import CRD, install_crds
from paitient_common.secrets import CA_BUNDLE_CONFIGMAP, CA_BUNDLE_KEY, CA_SECRET
from paitient_common.tls import client_context
from paitient_localcluster.upstream.certmanager import fetch_crds
from paitient_operator.certificates import x509
from paitient_operator.certificates.authority import AuthorityStore
from paitient_operator.config import TLSConfig
from tests.integration.frontdoor_process import ApiProcess, call
from tests.integration.gateway_tls import SYSTEM, Gateway, ca_bundle, gateway, route_entry
from tests.integration.operator_process import OperatorProcess
from tests.integration.stack_helpers import REPO, make_tenant
from tests.integration.waiting import wait_for

MD = ("paitient.ai/v1alpha1", "ModelDeployment")
CERTIFICATE = ("cert-manager.io/v1", "Certificate")
NOW = datetime.now(UTC)
STRANGER_CA = x509.new_authority("a CA nobody here trusts", timedelta(days=1), NOW)


def _routes(stack: ApiProcess) -> Path:
    return Path(stack.gateway_url.removeprefix("file:"))


@pytest.fixture
def served(stack: ApiProcess, stack_tenant: dict[str, str], kube: Kube) -> Gateway:
    """The gateway of the stack's deployment-123."""
    return gateway(_routes(stack), f"{stack_tenant['namespace']}/deployment-123", kube)


def _model_deployment(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "paitient.ai/v1alpha1", "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"model": {"name": "ZimaBlueAI/HuatuoGPT-o1-8B"}, "useGpu": True, "gpu": {"count": 1},
                 "storage": {"size": "5Gi", "storageClassName": "encrypted-local"}},
    }  # fmt: skip


def _headers(tenant: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant['key']}", "X-Client-ID": tenant["client_id"]}


def _completion(gw: Gateway, tenant: dict[str, str]) -> int:
    body = {"model": "x", "prompt": "hello", "max_tokens": 2}
    return gw.call("POST", "/v1/completions", body, _headers(tenant))[0]


def _served_certificate(gw: Gateway) -> cx509.Certificate:
    with (
        socket.create_connection(gw.address, timeout=10) as raw,
        gw.context.wrap_socket(raw, server_hostname=gw.server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return cx509.load_der_x509_certificate(der)


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
    assert _completion(served, stack_tenant) == 200
    stranger = Gateway(served.url, served.server_name, client_context(STRANGER_CA.cert_pem))
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        _completion(stranger, stack_tenant)
    elsewhere = Gateway(served.url, "deployment-123.other-tenant.svc", served.context)
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        _completion(elsewhere, stack_tenant)


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
            answer = call("POST", f"{untrusting.base_url}/generate", body, _headers(stack_tenant))
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
        status, _, answer = call("POST", f"{plain.base_url}/generate", body, _headers(stack_tenant))
        assert status == 502 and answer["error"]["type"] == "service_error"
        assert "not HTTPS" in answer["error"]["message"]
    finally:
        untrusting.stop()
        plain.stop()
        kube.delete("v1", "ConfigMap", wrong, namespace=SYSTEM)


# -- renewal ---------------------------------------------------------------------------------------


@dataclass
class Load:
    """Bounded load on a gateway from two threads, each at most ``rate`` requests a second
    (the tier's rate limit stays far away) and ``limit`` in all: one opening a connection (and
    handshake) per request, one keeping a single connection open across renewals."""

    gw: Gateway
    tenant: dict[str, str]
    limit: int = 3000
    rate: float = 20.0
    statuses: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def _paced(self) -> Iterator[None]:
        due = time.monotonic()
        for _ in range(self.limit):
            if self.stop.wait(max(0.0, due - time.monotonic())):
                return
            due += 1 / self.rate
            yield

    def _fresh(self) -> None:
        for _ in self._paced():
            try:
                self.statuses.append(_completion(self.gw, self.tenant))
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(f"fresh: {type(exc).__name__}: {exc}")

    def _kept(self) -> None:
        host, port = self.gw.address
        raw = socket.create_connection((host, port), timeout=30)
        conn = http.client.HTTPSConnection(host, port, timeout=30, context=self.gw.context)
        conn.sock = self.gw.context.wrap_socket(raw, server_hostname=self.gw.server_name)
        body = json.dumps({"model": "x", "prompt": "hello", "max_tokens": 2})
        headers = {"Content-Type": "application/json", **_headers(self.tenant)}
        try:
            for _ in self._paced():
                try:
                    conn.request("POST", "/v1/completions", body, headers)
                    response = conn.getresponse()
                    response.read()
                    self.statuses.append(response.status)
                except (OSError, http.client.HTTPException) as exc:
                    self.failures.append(f"kept: {type(exc).__name__}: {exc}")
                    return
        finally:
            conn.close()

    def start(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._fresh), threading.Thread(target=self._kept)]
        for thread in threads:
            thread.start()
        return threads


def test_a_certificate_near_expiry_is_replaced_before_it_expires_and_no_request_is_lost(
    stack: ApiProcess, kube: Kube, kubeconfig: Path, tmp_path: Path
) -> None:
    short = OperatorProcess.for_cluster(
        kubeconfig,
        tmp_path / "operator.log",
        # 60 s certificates replaced 45 s before expiry: a renewal every ~15 s.
        env={
            "PAITIENT_TLS_CERTIFICATE_LIFETIME": "60s",
            "PAITIENT_TLS_RENEW_BEFORE": "45s",
            "PAITIENT_TLS_RENEWAL_CHECK_SECONDS": "1",
        },
    )
    tenant = make_tenant(kube, tier="enterprise")  # 6,000 requests a minute: no 429 here
    namespace, name = tenant["namespace"], "renewing"
    seen: dict[int, tuple[float, datetime]] = {}  # serial -> (first seen, notAfter)
    try:
        with OperatorProcess.others_paused():
            short.start()
            try:
                kube.create(_model_deployment(name, namespace))
                key = f"{namespace}/{name}"
                gw = gateway(_routes(stack), key, kube, timeout=120)
                wait_for(lambda: _completion(gw, tenant) == 200, what="the gateway to serve")
                load = Load(gw, tenant)
                threads = load.start()
                deadline = time.monotonic() + 150
                try:
                    while len(seen) < 3 and time.monotonic() < deadline:  # two renewals
                        cert = _served_certificate(gw)
                        seen.setdefault(cert.serial_number, (time.time(), cert.not_valid_after_utc))
                        time.sleep(0.25)
                finally:
                    load.stop.set()
                    for thread in threads:
                        thread.join(timeout=60)
                still = route_entry(_routes(stack), key)
                status = (kube.get(*MD, name, namespace=namespace) or {}).get("status") or {}
            finally:
                short.stop()
    finally:
        admin.delete_tenant(kube, tenant["name"], force=True)

    assert len(seen) >= 3, f"saw {len(seen)} certificates in 150 s:\n{short.tail()}"
    ordered = sorted(seen.values())
    for (_, expires), (replaced_at, _) in itertools.pairwise(ordered):
        assert replaced_at < expires.timestamp(), "a certificate was served until it expired"
    assert not load.failures, load.failures[:5]
    assert load.statuses and set(load.statuses) == {200}, sorted(set(load.statuses))
    # the same gateway process, the only replica, served throughout
    assert (still["url"], still["serverName"]) == (gw.url, gw.server_name)
    assert [r["url"] for r in still.get("replicas", [])] == [gw.url]
    (log,) = (_routes(stack).parent / "dataplane" / "logs").glob(
        f"gateway-{namespace}-{name}-*.log"
    )
    assert log.read_text().count("reloaded the TLS certificate") >= 2
    assert status["servingCertificate"]["secretName"] == f"{name}-tls"
    assert status["servingCertificate"]["issuer"] == "paitient-operator"


# -- the CA -----------------------------------------------------------------------------------------


def test_two_operators_making_or_rotating_the_ca_at_once_end_with_one(
    kubeconfig: Path, namespace: str
) -> None:
    config = TLSConfig(ca_lifetime=timedelta(days=100), ca_renew_before=timedelta(days=30))

    def race(clock: datetime, fresh: bool) -> list[Any]:
        stores = [
            AuthorityStore(
                Kube.from_kubeconfig(str(kubeconfig)), namespace, namespace, config, lambda: clock
            )
            for _ in range(2)
        ]
        start, results = threading.Barrier(2), [None, None]

        def run(i: int) -> None:
            start.wait()
            results[i] = stores[i].current(fresh=fresh)  # type: ignore[call-overload]

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        return results

    kube = Kube.from_kubeconfig(str(kubeconfig))
    first = race(NOW, fresh=False)
    assert first[0].signer == first[1].signer  # the loser of the create uses the winner's CA
    secret = kube.get("v1", "Secret", CA_SECRET, namespace=namespace) or {}
    assert secret["type"] == "kubernetes.io/tls"

    later = race(NOW + timedelta(days=75), fresh=True)  # both find it due
    assert later[0].signer == later[1].signer != first[0].signer
    # One rotation, not two: the new CA and the previous one, still trusted.
    assert [x509.fingerprint(c) for c in later[0].trusted] == [
        x509.fingerprint(later[0].signer.cert),
        x509.fingerprint(first[0].signer.cert),
    ]
    published = kube.get("v1", "ConfigMap", CA_BUNDLE_CONFIGMAP, namespace=namespace) or {}
    assert x509.load_certificates(published["data"][CA_BUNDLE_KEY]) == list(later[0].trusted)


def _may(kube: Kube, user: str, verb: str, namespace: str, name: str = "") -> bool:
    review = kube.request(
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user,
                "groups": ["system:serviceaccounts", "system:authenticated"],
                "resourceAttributes": {
                    "verb": verb, "resource": "secrets", "namespace": namespace, "name": name,
                },
            },
        },
    )  # fmt: skip
    return bool(review["status"].get("allowed"))


def test_the_ca_key_is_where_no_gateway_or_front_door_can_read_it(
    stack: ApiProcess, stack_tenant: dict[str, str], kube: Kube
) -> None:
    ca_namespace = f"{SYSTEM}-ca"
    assert kube.get("v1", "Secret", CA_SECRET, namespace=SYSTEM) is None
    assert kube.get("v1", "Secret", CA_SECRET, namespace=ca_namespace) is not None
    gateway_user = f"system:serviceaccount:{stack_tenant['namespace']}:paitient-gateway"
    assert _may(kube, gateway_user, "list", SYSTEM)  # the key records: why the CA is elsewhere
    assert not _may(kube, gateway_user, "list", ca_namespace)
    assert not _may(kube, gateway_user, "get", ca_namespace, CA_SECRET)


# -- cert-manager ----------------------------------------------------------------------------------


@pytest.fixture
def cert_manager_crds(kube: Kube) -> Iterator[None]:
    """cert-manager's real CRDs, installed for one test and removed after it."""
    names = install_crds(kube, fetch_crds())
    try:
        yield
    finally:
        for crd in names:
            kube.delete(*CRD, crd)


def test_with_cert_manager_the_operator_asks_it_for_the_certificate(
    cert_manager_crds: None, kube: Kube, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    issuer_ca = x509.new_authority("the clinic's cert-manager CA", timedelta(days=1), NOW)
    operator = OperatorProcess.for_cluster(
        kubeconfig,
        tmp_path / "operator.log",
        env={
            "PAITIENT_TLS_ISSUER": "cert-manager",
            "PAITIENT_TLS_CERT_MANAGER_ISSUER_NAME": "clinic-ca",
            "PAITIENT_TLS_CERT_MANAGER_CA_BUNDLE": issuer_ca.cert_pem,
        },
    )
    name = "managed"
    with OperatorProcess.others_paused():
        operator.start()
        try:
            # The bundle the front door trusts is now the issuer's.
            assert ca_bundle(kube) == issuer_ca.cert_pem
            kube.create(_model_deployment(name, namespace))
            cert = wait_for(
                lambda: kube.get(*CERTIFICATE, f"{name}-tls", namespace=namespace),
                what="the Certificate",
            )
            deployment = wait_for(
                lambda: kube.get("apps/v1", "Deployment", name, namespace=namespace),
                what="the Deployment",
            )
            # cert-manager's own controller is not here: play its part in the status only,
            # which is what the operator reads.
            kube.patch(
                *CERTIFICATE, f"{name}-tls",
                {"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Ready",
                                            "message": "Certificate is up to date and has not expired"}],
                            "notAfter": "2030-01-01T00:00:00Z", "renewalTime": "2029-12-01T00:00:00Z"}},
                namespace=namespace, subresource="status",
            )  # fmt: skip
            status = wait_for(
                lambda: (
                    (s := (kube.get(*MD, name, namespace=namespace) or {}).get("status") or {})
                    .get("servingCertificate", {}).get("notAfter")
                    and s
                ),
                what="the deployment's status to show the issued certificate",
            )  # fmt: skip
            # Checked while only this operator runs: the session's (operator issuer) comes
            # back after this block and would issue a Secret for the deployment it finds.
            assert kube.get("v1", "Secret", f"{name}-tls", namespace=namespace) is None
            bad = {**cert, "metadata": {"name": "bad", "namespace": namespace}}
            bad["spec"] = {**cert["spec"], "privateKey": {"algorithm": "DSA"}}
            with pytest.raises(KubeError, match="algorithm"):
                kube.create(bad)  # cert-manager's schema is really enforced
        finally:
            operator.stop()
    spec = cert["spec"]
    assert spec["secretName"] == f"{name}-tls"
    assert spec["dnsNames"] == [f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.cluster.local"]
    assert spec["issuerRef"] == {
        "name": "clinic-ca",
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }
    assert cert["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert {"secretName": f"{name}-tls", "defaultMode": 0o440} in [v.get("secret") for v in volumes]
    assert status["servingCertificate"] == {
        "secretName": f"{name}-tls",
        "issuer": "ClusterIssuer/clinic-ca",
        "notAfter": "2030-01-01T00:00:00Z",
        "renewAfter": "2029-12-01T00:00:00Z",
    }
    ready = next(c for c in status["conditions"] if c["type"] == "CertificateReady")
    assert ready["status"] == "True"


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
