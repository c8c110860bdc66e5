"""The data plane runs each gateway as its pod's ServiceAccount: the TokenRequest, the kubeconfig
built from it (as data), the file's mode, renewal, and the gateway's command line."""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from paitient_localcluster.controlplane.kubeconfig import write_kubeconfig
from paitient_localcluster.simulated import dataplane
from paitient_localcluster.simulated.dataplane import DataPlane, service_account_name
from paitient_localcluster.simulated.sa_kubeconfig import (
    ServiceAccountToken,
    mint_token,
    service_account_kubeconfig,
    service_account_user,
    token_request,
)

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
ADMIN: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [
        {"name": "other", "cluster": {"server": "https://10.0.0.1:6443"}},
        {
            "name": "local",
            "cluster": {
                "server": "https://127.0.0.1:16443",
                "certificate-authority": "pki/ca.crt",
                "tls-server-name": "kubernetes",
            },
        },
    ],
    "users": [
        {"name": "admin", "user": {"client-certificate": "pki/admin.crt", "client-key": "k"}}
    ],
    "contexts": [
        {"name": "other", "context": {"cluster": "other", "user": "admin"}},
        {"name": "local", "context": {"cluster": "local", "user": "admin"}},
    ],
    "current-context": "local",
}


class FakeKube:
    """Answers TokenRequests, lists the Deployments it was given with a running pod each on a
    simulated node, and records status patches."""

    def __init__(self, deployments: list[dict[str, Any]] | None = None) -> None:
        self.deployments = deployments or []
        self.requests: list[tuple[str, str, Any]] = []
        self.patches: list[tuple[str, dict[str, Any]]] = []

    def request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        self.requests.append((method, path, body))
        n = len(self.requests)
        expires = T0 + timedelta(seconds=body["spec"]["expirationSeconds"])
        return {
            "kind": "TokenRequest",
            "status": {
                "token": f"token-{n}",
                "expirationTimestamp": f"{expires:%Y-%m-%dT%H:%M:%SZ}",
            },
        }

    def list(self, api_version: str, kind: str, **_: Any) -> list[dict[str, Any]]:
        if kind == "Node":
            return [{"metadata": {"name": "cpu-node-0"}}]
        if kind == "Pod":
            return [
                _running_pod(d["metadata"]["namespace"], d["metadata"]["name"])
                for d in self.deployments
            ]
        assert (api_version, kind) == ("apps/v1", "Deployment")
        return self.deployments

    def patch(
        self, api_version: str, kind: str, name: str, patch: dict[str, Any], **kw: Any
    ) -> None:
        assert (kind, kw["subresource"]) == ("Pod", "status")
        self.patches.append((name, patch))


def _running_pod(namespace: str, deployment: str, ready: str = "False") -> dict[str, Any]:
    return {
        "metadata": {"namespace": namespace, "name": f"{deployment}-abc", "resourceVersion": "7",
                     "labels": {"paitient.ai/modeldeployment": deployment}},
        "spec": {"nodeName": "cpu-node-0"},
        "status": {"phase": "Running", "conditions": [
            {"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": ready}],
            "containerStatuses": [{"name": "gateway", "ready": ready == "True"}]},
    }  # fmt: skip


def _deployment(namespace: str, name: str, account: str | None) -> dict[str, Any]:
    pod: dict[str, Any] = {"containers": [{"name": "gateway", "env": []}]}
    if account is not None:
        pod["serviceAccountName"] = account
    return {
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"template": {"spec": pod}},
        "status": {"readyReplicas": 1},
    }


def test_the_token_request_asks_the_accounts_token_subresource_for_the_lifetime() -> None:
    kube = FakeKube()
    token = mint_token(kube, "tenant-a", "md-a", 86400, now=T0)
    assert kube.requests == [
        (
            "POST",
            "/api/v1/namespaces/tenant-a/serviceaccounts/md-a/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": 86400},
            },
        )
    ]
    assert token_request(3600)["spec"] == {"expirationSeconds": 3600}
    # The lifetime is the API server's answer, not the one asked for (the server may shorten
    # it); that the token really authenticates is checked against the API server itself
    # (tests/integration/test_control_plane.py).
    assert token.issued_at == T0 and token.expires_at == T0 + timedelta(days=1)
    assert token.user == "system:serviceaccount:tenant-a:md-a"
    assert token.token not in repr(token)


def test_an_answer_without_a_token_is_an_error() -> None:
    class Empty:
        def request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
            return {"status": {}}

    with pytest.raises(ValueError, match="no token"):
        mint_token(Empty(), "ns", "sa", 600)


def test_the_kubeconfig_holds_the_admins_cluster_and_only_the_token_as_user() -> None:
    doc = service_account_kubeconfig(
        ADMIN, Path("/run/cluster/admin.kubeconfig"), "tok", "ns", "sa"
    )
    assert doc == {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {
                    "server": "https://127.0.0.1:16443",
                    # relative to the admin kubeconfig, made absolute: the new file lives elsewhere
                    "certificate-authority": "/run/cluster/pki/ca.crt",
                    "tls-server-name": "kubernetes",
                },
            }
        ],
        "users": [{"name": "ns:sa", "user": {"token": "tok"}}],
        "contexts": [
            {"name": "ns:sa", "context": {"cluster": "local", "user": "ns:sa", "namespace": "ns"}}
        ],
        "current-context": "ns:sa",
    }


def test_inline_ca_data_is_copied_and_nothing_of_the_admin_user_is() -> None:
    admin = {
        **ADMIN,
        "clusters": [
            {"name": "local", "cluster": {"server": "https://k:6443", "certificate-authority-data": "Q0E="}}
        ],
    }  # fmt: skip
    doc = service_account_kubeconfig(admin, Path("admin.kubeconfig"), "tok", "ns", "sa")
    assert doc["clusters"][0]["cluster"] == {
        "server": "https://k:6443",
        "certificate-authority-data": "Q0E=",
    }
    assert "admin" not in yaml.safe_dump(doc) and "client-" not in yaml.safe_dump(doc)


def test_the_file_is_owner_only_and_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfigs" / "a.kubeconfig"
    path.parent.mkdir()
    path.write_text("old")
    path.chmod(0o644)
    write_kubeconfig(path, {"users": [{"user": {"token": "t"}}]})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert yaml.safe_load(path.read_text()) == {"users": [{"user": {"token": "t"}}]}
    assert [p.name for p in path.parent.iterdir()] == ["a.kubeconfig"]  # no temporary left


def test_a_token_is_renewed_past_half_its_life() -> None:
    token = ServiceAccountToken("ns", "sa", "t", T0, T0 + timedelta(hours=24))
    assert not token.due_for_renewal(T0 + timedelta(hours=11, minutes=59))
    assert token.due_for_renewal(T0 + timedelta(hours=12))


def test_the_service_account_is_the_templates_or_default() -> None:
    assert service_account_name(_deployment("ns", "d", "md-d")) == "md-d"
    assert service_account_name(_deployment("ns", "d", None)) == "default"
    assert service_account_user("ns", "md-d") == "system:serviceaccount:ns:md-d"


class FakeProcess:
    def __init__(self, argv: list[str]) -> None:
        self.argv = argv

    def poll(self) -> int:
        return 0

    def wait(self, timeout: float | None = None) -> int:
        return 0


@dataclass
class Harness:
    plane: DataPlane
    kube: FakeKube
    spawned: list[list[str]]
    envs: list[dict[str, str]]
    now: datetime = T0
    gateway_ready: bool = True


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Harness:
    """A data plane whose processes are never really spawned, on a clock the test moves."""
    admin = tmp_path / "cluster" / "admin.kubeconfig"
    admin.parent.mkdir()
    admin.write_text(yaml.safe_dump(ADMIN))
    kube = FakeKube([_deployment("tenant-a", "md-a", "md-a")])
    spawned: list[list[str]] = []
    envs: list[dict[str, str]] = []

    def spawn(_self: DataPlane, argv: list[str], env: dict[str, str], log: Path) -> FakeProcess:
        spawned.append(argv)
        envs.append(env)
        return FakeProcess(argv)

    monkeypatch.setattr(DataPlane, "_spawn", spawn)
    monkeypatch.setattr(dataplane, "wait_http_ok", lambda url, timeout, **_: True)
    monkeypatch.setattr(dataplane, "probe_ready", lambda url: h.gateway_ready)
    monkeypatch.setenv("KUBECONFIG", str(admin))
    plane = DataPlane(
        kube,  # type: ignore[arg-type]
        str(admin),
        tmp_path / "routes.json",
        tmp_path / "state",
        clock=lambda: h.now,
    )
    h = Harness(plane, kube, spawned, envs)
    return h


def _gateway_kubeconfig(argv: list[str]) -> Path:
    assert argv[1:3] == ["-m", "paitient_gateway"]
    return Path(argv[argv.index("--kubeconfig") + 1])


def test_the_gateway_gets_its_accounts_kubeconfig_not_the_admins(
    harness: Harness, tmp_path: Path
) -> None:
    harness.plane.sync()
    gateway, env = next(
        (a, e)
        for a, e in zip(harness.spawned, harness.envs, strict=True)
        if "paitient_gateway" in a
    )
    path = _gateway_kubeconfig(gateway)
    assert "KUBECONFIG" not in env  # no way back to the admin kubeconfig
    assert path == tmp_path / "state" / "kubeconfigs" / "tenant-a_md-a.kubeconfig"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = yaml.safe_load(path.read_text())
    assert doc["users"] == [{"name": "tenant-a:md-a", "user": {"token": "token-1"}}]
    assert doc["clusters"][0]["cluster"]["certificate-authority"] == str(
        tmp_path / "cluster" / "pki" / "ca.crt"
    )
    _, api_path, body = harness.kube.requests[0]
    assert api_path == "/api/v1/namespaces/tenant-a/serviceaccounts/md-a/token"
    assert body["spec"]["expirationSeconds"] == 24 * 3600


def test_a_pod_is_restarted_with_a_fresh_token_past_half_life_and_its_file_goes_with_it(
    harness: Harness,
) -> None:
    harness.plane.sync()
    harness.now = T0 + timedelta(hours=11)
    harness.plane.sync()
    assert len(harness.spawned) == 2  # stand-in and gateway, once
    harness.now = T0 + timedelta(hours=12)
    harness.plane.sync()
    assert len(harness.spawned) == 4
    path = _gateway_kubeconfig(harness.spawned[-1])
    assert yaml.safe_load(path.read_text())["users"][0]["user"]["token"] == "token-2"
    harness.kube.deployments = []
    harness.plane.sync()
    assert not path.exists() and harness.plane.pods == {}


def test_a_token_that_cannot_be_minted_starts_nothing_and_is_retried(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = FakeKube.request
    calls = []

    def refuse_once(self: FakeKube, method: str, path: str, body: Any = None) -> dict[str, Any]:
        calls.append(path)
        if len(calls) == 1:
            raise RuntimeError('serviceaccounts "md-a" not found')
        return real(self, method, path, body)

    monkeypatch.setattr(FakeKube, "request", refuse_once)
    with pytest.raises(RuntimeError, match="tenant-a/md-a: RuntimeError"):
        harness.plane.sync()
    assert harness.spawned == [] and harness.plane.pods == {}
    harness.plane.sync()
    assert len(harness.spawned) == 2 and list(harness.plane.pods) == ["tenant-a/md-a"]


# -- readiness: the pod turns Ready from its gateway's probe, after its route exists --------


def test_running_model_pods_are_those_kwok_runs_on_simulated_nodes() -> None:
    pods = [
        _running_pod("ns", "a"),
        {**_running_pod("ns", "b"), "spec": {"nodeName": "a-real-node"}},
        {**_running_pod("ns", "c"), "status": {"phase": "Pending"}},
    ]
    deleting = _running_pod("ns", "d")
    deleting["metadata"]["deletionTimestamp"] = "2030-01-01T00:00:00Z"
    running = dataplane.running_model_pods([*pods, deleting], {"cpu-node-0"})
    assert list(running) == ["ns/a"]


def test_the_readiness_patch_flips_ready_and_containers_ready_and_keeps_the_rest() -> None:
    pod = _running_pod("ns", "a")
    patch = dataplane.readiness_patch(pod, True, T0)
    assert patch is not None and patch["metadata"] == {"resourceVersion": "7"}
    conditions = {c["type"]: c["status"] for c in patch["status"]["conditions"]}
    assert conditions == {"PodScheduled": "True", "Ready": "True", "ContainersReady": "True"}
    assert patch["status"]["containerStatuses"] == [{"name": "gateway", "ready": True}]
    assert dataplane.readiness_patch(pod, False, T0) is None  # already not Ready
    back = dataplane.readiness_patch(_running_pod("ns", "a", ready="True"), False, T0)
    assert back is not None
    ready = next(c for c in back["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "ContainersNotReady" and "/healthz/ready" in ready["message"]


def test_a_pod_turns_ready_only_once_its_gateway_answers_and_its_route_is_written(
    harness: Harness, tmp_path: Path
) -> None:
    harness.gateway_ready = False
    harness.plane.sync()
    assert harness.kube.patches == []  # started, routed, not ready: nothing to report yet
    routes = json.loads((tmp_path / "routes.json").read_text())
    assert list(routes) == ["tenant-a/md-a"]
    harness.gateway_ready = True
    harness.plane.sync()
    [(name, patch)] = harness.kube.patches
    assert name == "md-a-abc"
    assert {"type": "Ready", "status": "True"}.items() <= next(
        c for c in patch["status"]["conditions"] if c["type"] == "Ready"
    ).items()


def test_a_gateway_with_a_metrics_port_gets_a_free_one_of_its_own_in_the_routes(
    harness: Harness, tmp_path: Path
) -> None:
    """In a pod, gateway.metricsPort is the pod's own port; on the host every gateway shares
    one loopback, so each gets a free port, published per replica as metricsUrl."""
    container = harness.kube.deployments[0]["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "PAITIENT_METRICS_PORT", "value": "9090"}]
    harness.plane.sync()
    gateway_env = next(
        e for a, e in zip(harness.spawned, harness.envs, strict=True) if "paitient_gateway" in a
    )
    port = gateway_env["PAITIENT_METRICS_PORT"]
    assert port != "9090" and port.isdigit()
    (replica,) = json.loads((tmp_path / "routes.json").read_text())["tenant-a/md-a"]["replicas"]
    assert replica["metricsUrl"] == f"http://127.0.0.1:{port}"
