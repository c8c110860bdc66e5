"""The gateway as the operator renders it, on the local cluster: ownership comes from the
Kubernetes API without a restart, usage reaches the Tenant, and all of it is done with nothing
but the pod's ServiceAccount token (the data plane mints one per pod). How fast key changes
reach it is ``test_key_propagation.py``'s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from paitient_cli import admin
from paitient_common.kubeapi import Kube
from paitient_common.secrets import PEPPER_SECRET, TIERS_CONFIGMAP
from paitient_localcluster.controlplane import audit
from paitient_localcluster.simulated.dataplane import gateway_env
from paitient_localcluster.simulated.sa_kubeconfig import service_account_user
from tests.integration.frontdoor_process import ApiProcess
from tests.integration.gateway_tls import Gateway, gateway
from tests.integration.stack_helpers import make_tenant
from tests.integration.waiting import wait_for
from tests.prerequisites import local_audit_log

SYSTEM = "paitient-system"
TENANT = ("paitient.ai/v1alpha1", "Tenant")
USAGE_REPORT = ("paitient.ai/v1alpha1", "UsageReport")
# A generous bound on waiting for a change to reach the gateway; how long it really takes is
# test_key_propagation.py's and the key benchmark's (make bench-keys).
KEY_CHANGE_WAIT = 30.0


def _gateway_url(stack: ApiProcess, tenant: dict[str, str], kube: Kube) -> Gateway:
    routes = Path(stack.gateway_url.removeprefix("file:"))
    return gateway(routes, f"{tenant['namespace']}/deployment-123", kube)


def _complete(url: Gateway, key: str, client_id: str) -> tuple[int, Any]:
    status, _, body = url.call(
        "POST", "/v1/completions", {"model": "x", "prompt": "hello", "max_tokens": 3},
        {"Authorization": f"Bearer {key}", "X-Client-ID": client_id},
    )  # fmt: skip
    return status, body


def _reaches_the_gateway(check: Any, what: str) -> None:
    wait_for(check, timeout=KEY_CHANGE_WAIT, what=what)


def _current_usage(kube: Kube, tenant: str) -> int:
    return int(((kube.get(*TENANT, tenant) or {}).get("status") or {}).get("currentUsage") or 0)


def _reported(kube: Kube, namespace: str, tenant: str) -> int:
    """Tokens the UsageReports in ``namespace`` hold for ``tenant`` in its current period."""
    period = ((kube.get(*TENANT, tenant) or {}).get("status") or {}).get("periodStart")
    return sum(
        int(e["promptTokens"]) + int(e["completionTokens"])
        for report in kube.list(*USAGE_REPORT, namespace=namespace)
        for e in report["spec"].get("entries") or []
        if e["tenant"] == tenant and e["periodStart"] == period
    )


def test_another_tenant_cannot_call_a_deployment_it_does_not_own_until_allowed_and_pays(
    stack: ApiProcess, stack_tenant: dict[str, str], kube: Kube
) -> None:
    url = _gateway_url(stack, stack_tenant, kube)
    owner, owner_ns = stack_tenant["name"], stack_tenant["namespace"]
    other = make_tenant(kube)
    try:
        _reaches_the_gateway(
            lambda: _complete(url, other["key"], other["client_id"])[0] != 401, "the other's key"
        )
        status, body = _complete(url, other["key"], other["client_id"])
        assert status == 403 and body["error"]["type"] == "permission_error"
        # Allowing the other tenant's namespace in the deployment's access list lets it in.
        kube.patch(
            "paitient.ai/v1alpha1", "ModelDeployment", "deployment-123",
            {"spec": {"access": {"allowedNamespaces": [other["namespace"]]}}}, namespace=owner_ns,
        )  # fmt: skip

        def served() -> Any:
            status, body = _complete(url, other["key"], other["client_id"])
            return body if status == 200 else None

        usage = wait_for(served, timeout=KEY_CHANGE_WAIT, what="the access list")["usage"]
        spent = usage["prompt_tokens"] + usage["completion_tokens"]
        # Billed to the caller: under its own name in the deployment's UsageReport (in the
        # owner's namespace), rolled up into its own Tenant, never into the owner's.
        wait_for(lambda: _reported(kube, owner_ns, other["name"]) == spent, what="the report")
        wait_for(lambda: _current_usage(kube, other["name"]) == spent, what="the caller billed")
        wait_for(
            lambda: _current_usage(kube, owner) == _reported(kube, owner_ns, owner),
            what="the owner's usage: its own calls only",
        )
    finally:
        kube.patch(
            "paitient.ai/v1alpha1", "ModelDeployment", "deployment-123",
            {"spec": {"access": {"allowedNamespaces": []}}}, namespace=owner_ns,
        )  # fmt: skip
        admin.delete_tenant(kube, other["name"], force=True)


def test_usage_flows_from_the_gateway_to_the_tenants_subscription(
    stack: ApiProcess, stack_tenant: dict[str, str], kube: Kube
) -> None:
    url = _gateway_url(stack, stack_tenant, kube)
    before = int(
        (
            (kube.get("paitient.ai/v1alpha1", "Tenant", stack_tenant["name"]) or {}).get("status")
            or {}
        ).get("currentUsage")
        or 0
    )
    status, body = _complete(url, stack_tenant["key"], stack_tenant["client_id"])
    assert status == 200
    spent = body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    reports = wait_for(
        lambda: kube.list(
            "paitient.ai/v1alpha1", "UsageReport", namespace=stack_tenant["namespace"]
        ),
        what="a UsageReport",
    )
    assert reports[0]["spec"]["entries"]
    wait_for(
        lambda: int(((kube.get("paitient.ai/v1alpha1", "Tenant", stack_tenant["name"]) or {}).get("status") or {}).get("currentUsage") or 0) >= before + spent,
        timeout=30, what="the tenant's usage to include the call",
    )  # fmt: skip


def test_the_gateway_uses_only_its_pods_service_account_and_is_never_refused(
    stack: ApiProcess, kube: Kube, kubeconfig: Path
) -> None:
    """Every request the gateway makes (key Secrets, pepper, tiers, Tenants, its own
    ModelDeployment, its UsageReport) is made as ``system:serviceaccount:<ns>:<sa>``, the
    account its Deployment names, and the API server allows every one: the rights the operator
    grants that account are enough, as they must be on a real cluster."""
    log = local_audit_log(kubeconfig)
    offset = audit.log_size(log)
    tenant = make_tenant(kube)
    namespace, name = tenant["namespace"], "audited"
    routes = Path(stack.gateway_url.removeprefix("file:"))
    gateway_log = routes.parent / "dataplane" / "logs" / f"gateway-{namespace}-{name}.log"
    try:
        kube.create(
            {
                "apiVersion": "paitient.ai/v1alpha1", "kind": "ModelDeployment",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"model": {"name": "ZimaBlueAI/HuatuoGPT-o1-8B"}, "useGpu": True, "gpu": {"count": 1},
                         "storage": {"size": "5Gi", "storageClassName": "encrypted-local"}},
            }
        )  # fmt: skip
        url = gateway(routes, f"{namespace}/{name}", kube, timeout=120)
        deployment = kube.get("apps/v1", "Deployment", name, namespace=namespace) or {}
        account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
        user = service_account_user(namespace, account)
        system = gateway_env(deployment, "x").get("PAITIENT_SYSTEM_NAMESPACE", SYSTEM)

        def seen() -> list[audit.AuditEvent]:
            return [e for e in audit.read_events(log, offset) if e.user == user]

        def not_refused() -> None:
            refused = _refused(seen())
            assert not refused, f"the API refused {refused}; gateway log:\n{_tail(gateway_log)}"

        # The gateway lists then watches each collection (the pepper, the tiers and its own
        # ModelDeployment by name); wait for every one, or for a refusal (logged like any
        # request), whichever comes first.
        collections = {
            ("secrets", system, ""),
            ("secrets", system, PEPPER_SECRET),
            ("configmaps", system, TIERS_CONFIGMAP),
            ("tenants", "", ""),
            ("modeldeployments", namespace, name),
        }
        reads = {(verb, *c) for c in collections for verb in ("list", "watch")}
        wait_for(
            lambda: (
                _refused(seen()) or reads <= {(e.verb, e.resource, e.namespace, e.name) for e in seen()}
            ),
            timeout=30,
            what=f"the gateway's reads as {user} in the audit log",
        )  # fmt: skip
        not_refused()

        # Its keys came through that account: a call is served and shows up in its UsageReport.
        wait_for(
            lambda: _complete(url, tenant["key"], tenant["client_id"])[0] == 200,
            timeout=KEY_CHANGE_WAIT,
            what="the gateway to serve the tenant's key",
        )
        # The data plane names each gateway like its pod, and the UsageReport like the gateway.
        reports = {
            p["metadata"]["name"]
            for p in kube.list("v1", "Pod", namespace=namespace,
                               label_selector=f"paitient.ai/modeldeployment={name}")
        }  # fmt: skip
        wait_for(
            lambda: _refused(seen()) or any(
                e.resource == "usagereports" and e.is_write and e.code < 400 for e in seen()
            ),
            timeout=60,
            what=f"the gateway to write its UsageReport as {user}",
        )  # fmt: skip
        not_refused()
        # Before the clean-up: a gateway whose namespace is going away may be refused, rightly.
        events = list(audit.read_events(log, offset))
    finally:
        admin.delete_tenant(kube, tenant["name"], force=True)
    refused = _refused([e for e in events if e.user == user])
    assert not refused, refused
    # Nobody wrote this pod's UsageReport with another identity (the admin kubeconfig, say).
    writers = {
        e.user
        for e in events
        if e.resource == "usagereports" and e.verb in ("create", "update", "patch")
        and e.namespace == namespace and (e.name == "" or e.name in reports)
    }  # fmt: skip
    assert writers == {user}


def _refused(events: list[audit.AuditEvent]) -> list[str]:
    return [
        f"{e.user} {e.verb} {e.resource}{'/' + e.subresource if e.subresource else ''} "
        f"{e.namespace or '(cluster)'}/{e.name or '*'}"
        for e in events
        if e.refused_by_rbac
    ]


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text().splitlines()[-lines:]) if path.is_file() else "(none)"
