"""The operator on the real local control plane: a ModelDeployment becomes a running, locked-down
model server, and its status tells the truth."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from paitient_common.kubeapi import Kube, KubeError
from paitient_localcluster.controlplane import audit
from tests.integration.operator_process import OperatorProcess
from tests.integration.relay import relay_to_api_server, relayed_kubeconfig
from tests.integration.waiting import wait_for
from tests.prerequisites import local_audit_log
from tests.unit.operator.factories import make_md

MD = ("paitient.ai/v1alpha1", "ModelDeployment")
CHILD_KINDS = [
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("v1", "ServiceAccount"),
    ("v1", "PersistentVolumeClaim"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
]
RBAC = "rbac.authorization.k8s.io/v1"
SYSTEM_NAMESPACE = "paitient-system"
REPO = Path(__file__).resolve().parents[2]
KUBECTL = REPO / ".local" / "bin" / "kubectl"


@pytest.fixture
def tenant_ns(kube: Kube, namespace: str) -> str:
    """The test namespace, enforcing Pod Security `restricted` as tenant namespaces do."""
    kube.patch(
        "v1",
        "Namespace",
        namespace,
        {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
    )
    return namespace


def _md(kube: Kube, ns: str, name: str) -> dict[str, Any]:
    obj = kube.get(*MD, name, namespace=ns)
    assert obj is not None
    return obj


def _phase(kube: Kube, ns: str, name: str) -> str | None:
    return _md(kube, ns, name).get("status", {}).get("phase")


def _condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_), {})


def _wait_phase(kube: Kube, ns: str, name: str, phase: str, timeout: float = 60) -> dict[str, Any]:
    wait_for(lambda: _phase(kube, ns, name) == phase, timeout=timeout, what=f"{name} phase {phase}")
    return _md(kube, ns, name)


def _apply(kube: Kube, manifest: dict[str, Any]) -> dict[str, Any]:
    return kube.create(manifest)


def test_gpu_deployment_becomes_ready_with_locked_down_children(
    operator: OperatorProcess, kube: Kube, tenant_ns: str
) -> None:
    _apply(
        kube,
        make_md("gpu-model")
        .namespace(tenant_ns)
        .gpus(1)
        .storage("10Gi", "encrypted-local")
        .manifest(),
    )
    md = _wait_phase(kube, tenant_ns, "gpu-model", "Ready")
    assert md["status"]["readyReplicas"] == 1
    assert md["status"]["endpoint"] == f"https://gpu-model.{tenant_ns}.svc:8443"
    assert md["status"]["observedGeneration"] == md["metadata"]["generation"]
    assert _condition(md, "Ready")["status"] == "True"
    for api_version, kind in CHILD_KINDS:
        child = kube.get(api_version, kind, "gpu-model", namespace=tenant_ns)
        assert child is not None, kind
        owner = child["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["uid"], owner["controller"]) == (
            "ModelDeployment",
            md["metadata"]["uid"],
            True,
        )
    pods = kube.list(
        "v1", "Pod", namespace=tenant_ns, label_selector="paitient.ai/modeldeployment=gpu-model"
    )
    assert len(pods) == 1
    node = kube.get("v1", "Node", pods[0]["spec"]["nodeName"])
    assert node is not None and node["metadata"]["labels"]["nvidia.com/gpu.present"] == "true"
    service = kube.get("v1", "Service", "gpu-model", namespace=tenant_ns)
    assert service is not None and [p["port"] for p in service["spec"]["ports"]] == [8443]
    pvc = kube.get("v1", "PersistentVolumeClaim", "gpu-model", namespace=tenant_ns)
    assert pvc is not None and pvc["status"]["phase"] == "Bound"


def test_kubectl_shows_columns_and_waits_for_ready(
    operator: OperatorProcess, kube: Kube, tenant_ns: str, kubeconfig: Path
) -> None:
    _apply(
        kube,
        make_md("columns")
        .namespace(tenant_ns)
        .gpus(1)
        .storage("5Gi", "encrypted-local")
        .manifest(),
    )
    done = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), "-n", tenant_ns, "wait", "--for=condition=Ready", "md/columns", "--timeout=60s"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), "-n", tenant_ns, "get", "md"],
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert table[0].split() == ["NAME", "MODEL", "GPUS", "READY", "PHASE", "AGE"]
    assert table[1].split()[:5] == ["columns", "ZimaBlueAI/HuatuoGPT-o1-8B", "1", "1", "Ready"]


def test_a_cpu_deployment_is_placed_on_the_real_cpu_node_without_gpus(
    operator: OperatorProcess, kube: Kube, tenant_ns: str
) -> None:
    _apply(
        kube,
        make_md("cpu-model")
        .namespace(tenant_ns)
        .cpu_only()
        .resources("1", "6Gi")  # the real node has 2 CPUs
        .storage("5Gi", "encrypted-local")
        .manifest(),
    )
    pod = wait_for(
        lambda: next(
            (p for p in kube.list("v1", "Pod", namespace=tenant_ns,
                                  label_selector="paitient.ai/modeldeployment=cpu-model")
             if p["spec"].get("nodeName")),
            None,
        ),
        timeout=60, what="the CPU deployment's pod scheduled",
    )  # fmt: skip
    assert "nvidia.com/gpu" not in json.dumps(pod["spec"]["containers"])
    node = kube.get("v1", "Node", pod["spec"]["nodeName"])
    assert node is not None and "nvidia.com/gpu.present" not in node["metadata"]["labels"]
    assert node["metadata"]["labels"]["paitient.ai/simulated"] == "false", "the real node"


def test_unschedulable_gpu_request_is_reported_in_status(
    operator: OperatorProcess, kube: Kube, tenant_ns: str
) -> None:
    _apply(
        kube,
        make_md("no-such-gpu")
        .namespace(tenant_ns)
        .gpus(1)
        .product("NVIDIA-B200")
        .storage("5Gi", "encrypted-local")
        .manifest(),
    )
    md = _wait_phase(kube, tenant_ns, "no-such-gpu", "Pending", timeout=30)
    wait_for(
        lambda: (
            _condition(_md(kube, tenant_ns, "no-such-gpu"), "Ready").get("reason") == "GPUCapacity"
        ),
        timeout=30,
    )
    md = _md(kube, tenant_ns, "no-such-gpu")
    ready = _condition(md, "Ready")
    assert ready["status"] == "False"
    assert "node affinity/selector" in ready["message"] or "nvidia.com/gpu" in ready["message"]


def test_unencrypted_storage_class_is_refused_and_nothing_is_created(
    operator: OperatorProcess, kube: Kube, tenant_ns: str
) -> None:
    _apply(
        kube, make_md("plain").namespace(tenant_ns).gpus(1).storage("5Gi", "plain-local").manifest()
    )
    md = _wait_phase(kube, tenant_ns, "plain", "Failed")
    assert _condition(md, "Ready")["reason"] == "StorageNotEncrypted"
    assert "plain-local" in md["status"]["message"] and "encrypted-local" in md["status"]["message"]
    # The Warning Event is posted after the status: wait for it rather than read once.
    wait_for(
        lambda: any(
            e["reason"] == "StorageNotEncrypted" and e["involvedObject"]["name"] == "plain"
            for e in kube.list("v1", "Event", namespace=tenant_ns)
        ),
        what="the StorageNotEncrypted Warning Event",
    )
    for api_version, kind in CHILD_KINDS:
        assert kube.get(api_version, kind, "plain", namespace=tenant_ns) is None, kind


def test_forbidden_extra_args_fail_with_a_clear_message(
    operator: OperatorProcess, kube: Kube, tenant_ns: str
) -> None:
    _apply(
        kube,
        make_md("bad-args")
        .namespace(tenant_ns)
        .cpu_only()
        .extra_args("--host=0.0.0.0")
        .storage("5Gi", "encrypted-local")
        .manifest(),
    )
    md = _wait_phase(kube, tenant_ns, "bad-args", "Failed")
    assert _condition(md, "Ready")["reason"] == "InvalidSpec"
    assert "--host" in md["status"]["message"]
    assert kube.get("apps/v1", "Deployment", "bad-args", namespace=tenant_ns) is None


def test_schema_rejects_what_a_schema_can_say(
    operator: OperatorProcess, kube: Kube, tenant_ns: str
) -> None:
    manifest = make_md("both").namespace(tenant_ns).cpu_only().manifest()
    manifest["spec"]["gpu"] = {"count": 1}  # gpu only with useGpu
    with pytest.raises(KubeError) as refused:
        kube.create(manifest)
    assert refused.value.status == 422
    manifest = make_md("nine").namespace(tenant_ns).gpus(9).manifest()
    with pytest.raises(KubeError) as refused:
        kube.create(manifest)
    assert refused.value.status == 422


def test_drift_is_repaired_and_updates_roll(
    operator: OperatorProcess, kube: Kube, tenant_ns: str
) -> None:
    _apply(
        kube,
        make_md("drift").namespace(tenant_ns).gpus(1).storage("5Gi", "encrypted-local").manifest(),
    )
    _wait_phase(kube, tenant_ns, "drift", "Ready")
    kube.delete("networking.k8s.io/v1", "NetworkPolicy", "drift", namespace=tenant_ns)
    kube.patch(
        "v1",
        "Service",
        "drift",
        {"spec": {"ports": [{"name": "x", "port": 9999, "targetPort": 9999}]}},
        namespace=tenant_ns,
    )
    wait_for(
        lambda: kube.get("networking.k8s.io/v1", "NetworkPolicy", "drift", namespace=tenant_ns),
        what="policy back",
    )

    def gateway_port_restored() -> bool:
        service = kube.get("v1", "Service", "drift", namespace=tenant_ns) or {}
        ports = {p["port"]: p for p in service["spec"]["ports"]}
        # Server-Side Apply puts the operator's entry back; the hand-made one is another
        # writer's entry in a list merged by key, and stays (docs/operator.md).
        return 8443 in ports and ports[8443]["targetPort"] == "gateway"

    wait_for(gateway_port_restored, what="service port restored")
    kube.patch(
        *MD,
        "drift",
        {"spec": {"replicas": 2, "runtime": {"maxModelLen": 4096}}},
        namespace=tenant_ns,
    )

    def rolled() -> bool:
        dep = kube.get("apps/v1", "Deployment", "drift", namespace=tenant_ns) or {}
        args = json.dumps(dep["spec"]["template"]["spec"]["containers"])
        return dep["spec"]["replicas"] == 2 and "4096" in args

    wait_for(rolled, what="Deployment updated in place")
    # The status may count the new replicas (a Deployment event) before the operator has
    # handled the new generation: wait for both.
    wait_for(
        lambda: (m := _md(kube, tenant_ns, "drift"))["status"].get("readyReplicas") == 2 and m["status"]["phase"] == "Ready"
        and m["status"]["observedGeneration"] == m["metadata"]["generation"],
        timeout=60, what="2 ready replicas of the new generation",
    )  # fmt: skip


def _gateway_bindings(kube: Kube, ns: str, name: str) -> list[dict[str, Any] | None]:
    binding = f"paitient-gateway.{ns}.{name}"
    return [
        kube.get(RBAC, "RoleBinding", binding, namespace=SYSTEM_NAMESPACE),
        kube.get(RBAC, "ClusterRoleBinding", binding),
    ]


def _can(kubeconfig: Path, who: str, *args: str) -> bool:
    result = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), "auth", "can-i", f"--as={who}", *args],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.stdout.strip() in ("yes", "no"), result.stderr
    return result.stdout.strip() == "yes"


def test_gateway_account_may_read_keys_and_write_its_usage_and_nothing_more(
    operator: OperatorProcess, kube: Kube, tenant_ns: str, kubeconfig: Path
) -> None:
    _apply(
        kube,
        make_md("guarded")
        .namespace(tenant_ns)
        .gpus(1)
        .storage("5Gi", "encrypted-local")
        .manifest(),
    )
    md = _wait_phase(kube, tenant_ns, "guarded", "Ready")
    for binding in _gateway_bindings(kube, tenant_ns, "guarded"):
        assert binding is not None
        assert (
            binding["metadata"]["labels"]["paitient.ai/modeldeployment-uid"]
            == md["metadata"]["uid"]
        )
    gateway = f"system:serviceaccount:{tenant_ns}:guarded"
    allowed = [
        ("get", "modeldeployments.paitient.ai/guarded", "-n", tenant_ns),
        ("create", "usagereports.paitient.ai", "-n", tenant_ns),
        ("patch", "usagereports.paitient.ai", "-n", tenant_ns),
        ("list", "tenants.paitient.ai"),
        ("list", "secrets", "-n", SYSTEM_NAMESPACE),
        ("get", "secrets/paitient-api-key-pepper", "-n", SYSTEM_NAMESPACE),
        ("get", "configmaps/paitient-tiers", "-n", SYSTEM_NAMESPACE),
    ]
    refused = [
        ("list", "secrets", "-n", tenant_ns),
        ("get", "secrets", "-n", "kube-system"),
        ("create", "usagereports.paitient.ai", "-n", "default"),
        ("patch", "modeldeployments.paitient.ai/guarded", "-n", tenant_ns),
        ("delete", "tenants.paitient.ai"),
        ("list", "configmaps", "-n", SYSTEM_NAMESPACE),
        ("create", "secrets", "-n", SYSTEM_NAMESPACE),
    ]
    assert [a for a in allowed if not _can(kubeconfig, gateway, *a)] == []
    assert [r for r in refused if _can(kubeconfig, gateway, *r)] == []
    # Another deployment's account in the same namespace gets none of it through this one.
    assert not _can(
        kubeconfig,
        f"system:serviceaccount:{tenant_ns}:default",
        "list",
        "secrets",
        "-n",
        SYSTEM_NAMESPACE,
    )


def test_bindings_of_a_deployment_deleted_while_the_operator_was_down_are_swept(
    operator: OperatorProcess, kube: Kube, tenant_ns: str
) -> None:
    _apply(
        kube,
        make_md("orphan").namespace(tenant_ns).gpus(1).storage("5Gi", "encrypted-local").manifest(),
    )
    _wait_phase(kube, tenant_ns, "orphan", "Ready")
    operator.stop()
    try:
        kube.delete(*MD, "orphan", namespace=tenant_ns)
        wait_for(lambda: kube.get(*MD, "orphan", namespace=tenant_ns) is None, timeout=30)
        assert all(b is not None for b in _gateway_bindings(kube, tenant_ns, "orphan"))
    finally:
        operator.start()
    wait_for(
        lambda: _gateway_bindings(kube, tenant_ns, "orphan") == [None, None],
        timeout=60,
        what="bindings of the deleted deployment swept at start",
    )


def test_deletion_leaves_nothing_behind(
    operator: OperatorProcess, kube: Kube, tenant_ns: str
) -> None:
    _apply(
        kube,
        make_md("doomed").namespace(tenant_ns).gpus(1).storage("5Gi", "encrypted-local").manifest(),
    )
    _wait_phase(kube, tenant_ns, "doomed", "Ready")
    kube.delete(*MD, "doomed", namespace=tenant_ns)
    # The bindings outside the namespace, which no owner reference can collect, go too.
    wait_for(
        lambda: _gateway_bindings(kube, tenant_ns, "doomed") == [None, None],
        timeout=60,
        what="gateway bindings deleted",
    )
    for api_version, kind in CHILD_KINDS:
        wait_for(
            lambda a=api_version, k=kind: kube.get(a, k, "doomed", namespace=tenant_ns) is None,
            timeout=60,
            what=f"{kind} collected",
        )
    wait_for(
        lambda: (
            not kube.list(
                "v1",
                "Pod",
                namespace=tenant_ns,
                label_selector="paitient.ai/modeldeployment=doomed",
            )
        ),
        timeout=60,
    )


def test_a_resync_of_an_unchanged_deployment_writes_nothing(
    operator: OperatorProcess, kube: Kube, tenant_ns: str, kubeconfig: Path
) -> None:
    log = local_audit_log(kubeconfig)
    _apply(
        kube,
        make_md("quiet").namespace(tenant_ns).gpus(1).storage("5Gi", "encrypted-local").manifest(),
    )
    _wait_phase(kube, tenant_ns, "quiet", "Ready")
    # The rollout's last write is the Ready Event, posted after the status: from then on the
    # world is settled and a reconcile has nothing left to change.
    wait_for(
        lambda: any(
            e["reason"] == "Ready" and e["involvedObject"]["name"] == "quiet"
            for e in kube.list("v1", "Event", namespace=tenant_ns)
        ),
        what="the operator's Ready event",
    )
    offset = audit.log_size(log)
    # Events on every child make the operator reconcile; nothing it owns has changed.
    for api_version, kind in CHILD_KINDS:
        kube.patch(
            api_version,
            kind,
            "quiet",
            {"metadata": {"annotations": {"touched": "yes"}}},
            namespace=tenant_ns,
        )

    def operator_events() -> list[audit.AuditEvent]:
        return [
            e
            for e in audit.read_events(log, offset)
            if e.user == "paitient-operator" and e.namespace == tenant_ns
        ]

    # Each reconcile ends by listing the deployment's pods, then writes status if it changed.
    wait_for(
        lambda: (
            sum(e.verb == "list" and e.resource == "pods" for e in operator_events())
            >= len(CHILD_KINDS)
        ),
        what="a reconcile for every touched child",
    )
    assert [e for e in operator_events() if e.is_write] == []


def test_operator_killed_mid_reconcile_converges_after_restart(
    operator: OperatorProcess, kube: Kube, tenant_ns: str, tmp_path: Path
) -> None:
    # A second operator whose every API request crosses a slow link (0.1 s each way) does the
    # first reconcile: its steps after the first child take seconds, so killed when that child
    # appears, it certainly dies with the reconcile unfinished.
    operator.kill()  # one operator at a time; killed, not stopped: a stop takes seconds
    try:
        with relay_to_api_server(operator.kubeconfig, latency=0.1) as relay:
            slow = OperatorProcess(
                relayed_kubeconfig(operator.kubeconfig, relay, tmp_path / "slow.kubeconfig"),
                tmp_path / "slow-operator.log",
                env=operator.env,
            )
            slow.start()
            try:
                _apply(
                    kube,
                    make_md("crash").namespace(tenant_ns).gpus(1).storage("5Gi", "encrypted-local").manifest(),
                )  # fmt: skip
                wait_for(
                    lambda: kube.get("v1", "ServiceAccount", "crash", namespace=tenant_ns),
                    timeout=60,
                    interval=0.02,
                    what="the first child",
                )
            finally:
                slow.kill()
        missing = [
            k for a, k in CHILD_KINDS if kube.get(a, k, "crash", namespace=tenant_ns) is None
        ]
        assert "Deployment" in missing, "the reconcile had finished before the kill"
        assert _phase(kube, tenant_ns, "crash") != "Ready"
    finally:
        operator.start()
    # The session's operator picks up where the dead one stopped.
    md = _wait_phase(kube, tenant_ns, "crash", "Ready")
    for api_version, kind in CHILD_KINDS:
        assert kube.get(api_version, kind, "crash", namespace=tenant_ns) is not None, kind
    assert md["status"]["readyReplicas"] == 1


def test_an_autoscaler_on_the_deployment_owns_its_replicas(
    operator: OperatorProcess, kube: Kube, tenant_ns: str
) -> None:
    _apply(
        kube,
        make_md("scaled").namespace(tenant_ns).gpus(1).storage("5Gi", "encrypted-local").manifest(),
    )
    _wait_phase(kube, tenant_ns, "scaled", "Ready")
    kube.create(
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "scaled", "namespace": tenant_ns},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "scaled"},
                "minReplicas": 1,
                "maxReplicas": 4,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 80},
                        },
                    }
                ],
            },
        }
    )
    lengths = iter(range(2048, 4096, 64))

    def rerendered_keeping_the_autoscalers_replicas() -> bool:
        """The autoscaler sets replicas; a spec change makes the operator re-render the
        Deployment; replicas must stay the autoscaler's. The operator learns of the autoscaler
        from a watch of its own, so the first attempt may come before it has: try again."""
        kube.patch(
            "apps/v1", "Deployment", "scaled", {"spec": {"replicas": 3}}, namespace=tenant_ns
        )
        length = next(lengths)
        kube.patch(
            *MD, "scaled", {"spec": {"runtime": {"maxModelLen": length}}}, namespace=tenant_ns
        )
        dep = wait_for(
            lambda: (
                (d := kube.get("apps/v1", "Deployment", "scaled", namespace=tenant_ns))
                and str(length) in json.dumps(d["spec"])
                and d
            ),
            what="the spec change rolled out",
        )
        return bool(dep["spec"]["replicas"] == 3)

    wait_for(rerendered_keeping_the_autoscalers_replicas, timeout=60, interval=0)
