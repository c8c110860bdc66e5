"""The gateway as the operator renders it, on the local cluster: keys, suspension and
ownership come from the Kubernetes API without a restart, and usage reaches the Tenant."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from paitient_cli import admin
from paitient_common.kubeapi import Kube
from tests.integration.frontdoor_process import ApiProcess, call
from tests.integration.stack_helpers import make_tenant
from tests.integration.waiting import wait_for

SYSTEM = "paitient-system"
PROPAGATION_BOUND = 10.0  # seconds: the promise for keys and suspension


def _gateway_url(stack: ApiProcess, tenant: dict[str, str]) -> str:
    routes = Path(stack.gateway_url.removeprefix("file:"))
    key = f"{tenant['namespace']}/deployment-123"
    return str(
        wait_for(
            lambda: json.loads(routes.read_text()).get(key) if routes.exists() else None,
            what="a route",
        )
    )


def _complete(url: str, key: str, client_id: str) -> tuple[int, Any]:
    status, _, body = call(
        "POST", f"{url}/v1/completions", {"model": "x", "prompt": "hello", "max_tokens": 3},
        {"Authorization": f"Bearer {key}", "X-Client-ID": client_id},
    )  # fmt: skip
    return status, body


def _within(bound: float, check: Any) -> float:
    started = time.monotonic()
    wait_for(check, timeout=bound, interval=0.2)
    return time.monotonic() - started


def test_new_and_revoked_keys_and_suspension_reach_the_gateway_within_seconds(
    stack: ApiProcess, stack_tenant: dict[str, str], kube: Kube
) -> None:
    url = _gateway_url(stack, stack_tenant)
    client_id = stack_tenant["client_id"]
    key = admin.create_key(kube, client_id, None, "rotation test", SYSTEM)[0]
    _within(PROPAGATION_BOUND, lambda: _complete(url, key, client_id)[0] == 200)
    admin.revoke_key(kube, key.split("_")[1], SYSTEM)
    _within(PROPAGATION_BOUND, lambda: _complete(url, key, client_id)[0] == 401)
    assert _complete(url, stack_tenant["key"], client_id)[0] == 200  # the other key still works

    admin.set_suspended(kube, stack_tenant["name"], True)
    try:
        _within(PROPAGATION_BOUND, lambda: _complete(url, stack_tenant["key"], client_id)[0] == 403)
        assert (
            _complete(url, stack_tenant["key"], client_id)[1]["error"]["type"] == "permission_error"
        )
    finally:
        admin.set_suspended(kube, stack_tenant["name"], False)
    _within(PROPAGATION_BOUND, lambda: _complete(url, stack_tenant["key"], client_id)[0] == 200)


def test_another_tenant_cannot_call_a_deployment_it_does_not_own(
    stack: ApiProcess, stack_tenant: dict[str, str], kube: Kube
) -> None:
    url = _gateway_url(stack, stack_tenant)
    other = make_tenant(kube)
    try:
        wait_for(
            lambda: _complete(url, other["key"], other["client_id"])[0] != 401,
            timeout=PROPAGATION_BOUND,
        )
        status, body = _complete(url, other["key"], other["client_id"])
        assert status == 403 and body["error"]["type"] == "permission_error"
        # Allowing the other tenant's namespace in the deployment's access list lets it in.
        kube.patch(
            "paitient.ai/v1alpha1", "ModelDeployment", "deployment-123",
            {"spec": {"access": {"allowedNamespaces": [other["namespace"]]}}}, namespace=stack_tenant["namespace"],
        )  # fmt: skip
        _within(
            PROPAGATION_BOUND, lambda: _complete(url, other["key"], other["client_id"])[0] == 200
        )
    finally:
        kube.patch(
            "paitient.ai/v1alpha1", "ModelDeployment", "deployment-123",
            {"spec": {"access": {"allowedNamespaces": []}}}, namespace=stack_tenant["namespace"],
        )  # fmt: skip
        admin.delete_tenant(kube, other["name"], force=True)


def test_usage_flows_from_the_gateway_to_the_tenants_subscription(
    stack: ApiProcess, stack_tenant: dict[str, str], kube: Kube
) -> None:
    url = _gateway_url(stack, stack_tenant)
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
