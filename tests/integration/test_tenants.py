"""Tenants, API keys and subscriptions on the real local control plane, driven through the
admin CLI as an administrator would."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paitient_secure_model as sdk
import pytest

from paitient_common.apikeys import (
    generate_api_key,
    new_record,
    records_from_secret_data,
    records_to_secret_data,
)
from paitient_common.keyretention import MAX_KEYS_PER_TENANT
from paitient_common.kubeapi import Kube
from paitient_common.secrets import keys_secret_name
from paitient_common.tiers import format_time, period_bounds
from paitient_localcluster.controlplane import audit
from paitient_operator.config import OperatorConfig
from paitient_operator.controller import TENANT_LOOK_SECONDS
from paitient_operator.tenant_reconciler import TenantReconciler
from tests.integration import key_leaks
from tests.integration.frontdoor_process import ApiProcess, call
from tests.integration.key_leaks import needles
from tests.integration.operator_process import OperatorProcess
from tests.integration.waiting import wait_for
from tests.prerequisites import local_audit_log
from tests.unit.operator.factories import make_md

TENANT = ("paitient.ai/v1alpha1", "Tenant")
MD = ("paitient.ai/v1alpha1", "ModelDeployment")
SYSTEM = "paitient-system"


def cli(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paitient_cli.main", "--kubeconfig", str(kubeconfig), *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.fixture
def tenant(operator: OperatorProcess, kube: Kube, kubeconfig: Path) -> Iterator[dict[str, str]]:
    """A tenant made with the CLI, force-deleted afterwards."""
    name = f"t{uuid.uuid4().hex[:8]}"
    info = {"name": name, "client_id": f"{name}-clinic", "namespace": f"tenant-{name}"}
    done = cli(
        kubeconfig,
        "tenants",
        "create",
        name,
        "--client-id",
        info["client_id"],
        "--tier",
        "standard",
    )
    assert done.returncode == 0, done.stderr
    wait_for(
        lambda: _status(kube, name).get("namespace") == info["namespace"],
        timeout=30,
        what="tenant ready",
    )
    yield info
    cli(kubeconfig, "tenants", "delete", name, "--force")


def _status(kube: Kube, name: str) -> dict[str, Any]:
    return (kube.get(*TENANT, name) or {}).get("status") or {}


def test_a_tenant_gets_a_restricted_namespace_default_deny_quota_and_key_secret(
    tenant: dict[str, str], kube: Kube
) -> None:
    ns = kube.get("v1", "Namespace", tenant["namespace"])
    assert ns is not None
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    policy = kube.get(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        "paitient-default-deny",
        namespace=tenant["namespace"],
    )
    assert policy is not None and policy["spec"] == {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
    }
    quota = kube.get("v1", "ResourceQuota", "paitient-tier", namespace=tenant["namespace"])
    assert quota is not None
    assert quota["spec"]["hard"]["requests.nvidia.com/gpu"] == "8"
    assert quota["spec"]["hard"]["count/modeldeployments.paitient.ai"] == "5"
    assert kube.get("v1", "Secret", keys_secret_name(tenant["name"]), namespace=SYSTEM) is not None
    status = _status(kube, tenant["name"])
    start, end = period_bounds(datetime.now(UTC))
    assert status["tier"] == "standard" and status["usageLimit"] == 10_000_000
    assert (status["currentUsage"], status["deployments"]) == (0, 0)
    assert (status["periodStart"], status["periodEnd"]) == (format_time(start), format_time(end))


def test_changing_the_tier_updates_the_quota(tenant: dict[str, str], kube: Kube) -> None:
    kube.patch(*TENANT, tenant["name"], {"spec": {"tier": "free"}})

    def quota_gpus() -> str:
        quota = (
            kube.get("v1", "ResourceQuota", "paitient-tier", namespace=tenant["namespace"]) or {}
        )
        return str(quota.get("spec", {}).get("hard", {}).get("requests.nvidia.com/gpu"))

    wait_for(lambda: quota_gpus() == "0", what="quota from the free tier")
    wait_for(
        lambda: _status(kube, tenant["name"]).get("usageLimit") == 1_000_000,
        what="free usage limit",
    )


def test_no_plaintext_key_anywhere_after_keys_are_created_used_rotated_and_revoked(
    tenant: dict[str, str],
    kube: Kube,
    kubeconfig: Path,
    stack: ApiProcess,
    operator: OperatorProcess,
) -> None:
    """A key is made and used (deploy, wait, generate, stream, usage) through the front door
    and a model's gateway; a second key replaces it and is used; the first is revoked, then
    tried again, and a guess at its secret is tried. Afterwards neither key nor its secret part,
    as text or base64, is in any object of any kind in the cluster (Events, UsageReports,
    ModelDeployments, Tenants, Secrets, ConfigMaps, ...), in what the API server's audit log
    recorded meanwhile, or in any log or file of the operator, the front door, the data plane,
    the gateway or its model server."""
    audit_log = local_audit_log(kubeconfig)
    offsets = {audit_log: audit.log_size(audit_log), operator.log: operator.log.stat().st_size,
               stack.log: stack.log.stat().st_size}  # fmt: skip
    client_id, ns = tenant["client_id"], tenant["namespace"]

    def new_key() -> str:
        made = cli(kubeconfig, "keys", "create", "--client-id", client_id)
        assert made.returncode == 0, made.stderr
        return made.stdout.splitlines()[0]

    def client(key: str) -> sdk.SecureModelClient:
        return sdk.SecureModelClient(api_key=key, client_id=client_id, base_url=stack.base_url)

    first = new_key()
    kube.create(
        make_md("keys-in-use").namespace(ns).gpus(1).storage("5Gi", "encrypted-local").manifest()
    )
    with client(first) as old:
        old.wait_until_ready("keys-in-use", timeout=120, poll_interval=0.5)
        received = old.generate("keys-in-use", "the first key", max_tokens=4).usage.total_tokens
        with old.generate("keys-in-use", "streamed", max_tokens=3, stream=True) as stream:
            received += sum(c.usage.total_tokens for c in stream if c.usage is not None)
    second = new_key()  # the rotation: a new key, clients moved to it, the old one revoked
    with client(second) as new:
        received += new.generate("keys-in-use", "the second key", max_tokens=4).usage.total_tokens
        assert cli(kubeconfig, "keys", "revoke", first.split("_")[1]).returncode == 0
        guessed = "_".join([*first.split("_")[:2], secrets.token_urlsafe(32)])
        with client(first) as old, client(guessed) as guess:
            wait_for(lambda: _refused(old), what="the revoked key refused")
            assert _refused(guess)
        # The gateway's usage reaches its UsageReport and the Tenant: both are scanned below.
        wait_for(lambda: new.get_subscription().current_usage == received, timeout=60,
                 what="the usage reported")  # fmt: skip
    looked_for = needles([first, second, guessed])
    dataplane = Path(stack.gateway_url.removeprefix("file:")).parent  # every gateway's files
    files = [audit_log, operator.log, stack.log, dataplane]
    found = key_leaks.in_cluster(kube, looked_for) + key_leaks.in_files(files, looked_for, offsets)
    assert not found, "\n".join(found)


def _refused(client: sdk.SecureModelClient) -> bool:
    try:
        client.get_subscription()
    except sdk.AuthenticationError:
        return True
    return False


def _phase(kube: Kube, ns: str, name: str) -> str | None:
    return ((kube.get(*MD, name, namespace=ns) or {}).get("status") or {}).get("phase")


def _cpu_md(name: str, ns: str) -> dict[str, Any]:
    return (
        make_md(name)
        .namespace(ns)
        .cpu_only()
        .resources("1", "6Gi")  # CPU vLLM needs more than 5Gi (builders/vllm_cpu.py)
        .storage("5Gi", "encrypted-local")
        .manifest()
    )


def test_a_gpu_deployment_on_a_tier_without_gpus_fails_and_creates_nothing(
    tenant: dict[str, str], kube: Kube
) -> None:
    kube.patch(*TENANT, tenant["name"], {"spec": {"tier": "free"}})
    wait_for(lambda: _status(kube, tenant["name"]).get("tier") == "free", what="free tier")
    ns = tenant["namespace"]
    _wait_quota_counted(kube, ns)
    kube.create(make_md("gpu").namespace(ns).gpus(1).storage("5Gi", "encrypted-local").manifest())
    wait_for(lambda: _phase(kube, ns, "gpu") == "Failed", what="refused")
    md = kube.get(*MD, "gpu", namespace=ns) or {}
    ready = next(c for c in md["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "TierLimitExceeded" and "does not allow GPUs" in ready["message"]
    for api_version, kind in (
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
        ("v1", "PersistentVolumeClaim"),
    ):
        assert kube.get(api_version, kind, "gpu", namespace=ns) is None


def test_after_a_downgrade_the_newest_deployments_beyond_the_tier_fail(
    tenant: dict[str, str], kube: Kube
) -> None:
    ns = tenant["namespace"]
    _wait_quota_counted(kube, ns)
    # CPU deployments (the free tier has no GPUs): on the real node, whose two CPUs hold one of
    # them, so "accepted by the operator" is what is waited for, not Ready.
    accepted = {"Pending", "Progressing", "Degraded", "Ready"}
    kube.create(_cpu_md("first", ns))
    wait_for(lambda: _phase(kube, ns, "first") in accepted, timeout=60, what="first accepted")
    kube.create(_cpu_md("second", ns))
    wait_for(lambda: _phase(kube, ns, "second") in accepted, timeout=60, what="second accepted")
    wait_for(lambda: _status(kube, tenant["name"]).get("deployments") == 2, what="deployment count")
    # The quota refuses new objects over the limit at the API; existing ones are the
    # operator's to judge: the oldest keeps its place.
    kube.patch(*TENANT, tenant["name"], {"spec": {"tier": "free"}})
    kube.patch(*MD, "second", {"metadata": {"annotations": {"nudge": "1"}}}, namespace=ns)
    wait_for(lambda: _phase(kube, ns, "second") == "Failed", what="second refused")
    second = kube.get(*MD, "second", namespace=ns) or {}
    assert "allows 1 deployments" in second["status"]["message"]
    assert _phase(kube, ns, "first") in accepted, "the oldest keeps its place"


def _wait_quota_counted(kube: Kube, namespace: str) -> None:
    """The quota controller must have counted a changed quota before creates pass it."""

    def counted() -> bool:
        quota = kube.get("v1", "ResourceQuota", "paitient-tier", namespace=namespace) or {}
        return bool(quota) and quota.get("status", {}).get("hard") == quota["spec"]["hard"]

    wait_for(counted, what="quota status")


def _report(name: str, ns: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "paitient.ai/v1alpha1",
        "kind": "UsageReport",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"pod": name, "modelDeployment": "m", "entries": entries},
    }


def test_usage_reports_roll_up_and_past_periods_stay_readable(
    tenant: dict[str, str], kube: Kube
) -> None:
    start, _ = period_bounds(datetime.now(UTC))
    previous, _ = period_bounds(start - timedelta(seconds=1))
    now_p, prev_p = format_time(start), format_time(previous)
    t, ns = tenant["name"], tenant["namespace"]
    kube.create(_report("gw-a", ns, [
        {"tenant": t, "periodStart": now_p, "promptTokens": 100, "completionTokens": 50, "requests": 3},
        {"tenant": t, "periodStart": prev_p, "promptTokens": 7000, "completionTokens": 3000, "requests": 40},
        {"tenant": "someone-else", "periodStart": now_p, "promptTokens": 999, "completionTokens": 999, "requests": 9},
    ]))  # fmt: skip
    kube.create(
        _report(
            "gw-b",
            ns,
            [
                {
                    "tenant": t,
                    "periodStart": now_p,
                    "promptTokens": 20,
                    "completionTokens": 30,
                    "requests": 1,
                }
            ],
        )
    )
    wait_for(
        lambda: _status(kube, t).get("currentUsage") == 200, what="usage of two reports summed"
    )
    status = _status(kube, t)
    assert (status["promptTokens"], status["completionTokens"], status["requests"]) == (120, 80, 4)
    assert status["history"][0] == {
        "periodStart": prev_p, "periodEnd": now_p, "promptTokens": 7000, "completionTokens": 3000, "requests": 40,
    }  # fmt: skip
    # Cumulative counters: rewriting a report with higher totals replaces, never adds.
    kube.patch("paitient.ai/v1alpha1", "UsageReport", "gw-b", {"spec": {"entries": [
        {"tenant": t, "periodStart": now_p, "promptTokens": 40, "completionTokens": 60, "requests": 2}]}}, namespace=ns)  # fmt: skip
    wait_for(
        lambda: _status(kube, t).get("currentUsage") == 250, what="usage after a cumulative rewrite"
    )


def _period_starts(now: datetime, count: int) -> list[datetime]:
    """The start of the period holding ``now`` and of the ``count - 1`` before it, newest first."""
    starts = [period_bounds(now)[0]]
    while len(starts) < count:
        starts.append(period_bounds(starts[-1] - timedelta(seconds=1))[0])
    return starts


def test_a_new_period_starts_from_zero_on_the_timer_and_history_keeps_the_newest_12(
    tenant: dict[str, str], kube: Kube
) -> None:
    """docs/tenants.md: a timer, not an event, starts a new period (from zero), and the periods
    before stay in ``status.history``, newest first, 12 at most. What the controller's minute
    look does runs on the real API server with the reconciler's clock at the next period's start
    (the session's operator is paused meanwhile, so no event intervenes)."""
    t, ns = tenant["name"], tenant["namespace"]
    now = datetime.now(UTC)
    _, next_start = period_bounds(now)
    starts = _period_starts(now, 15)  # this period and the 14 before
    entries = [
        {"tenant": t, "periodStart": format_time(s), "promptTokens": 10 * (i + 1),
         "completionTokens": i, "requests": 1}
        for i, s in enumerate(starts)
    ]  # fmt: skip
    kube.create(_report("gw-history", ns, entries))
    wait_for(lambda: _status(kube, t).get("currentUsage") == 10, what="this period's usage")
    # Every minute the controller queues every Tenant (tests/unit/operator/test_tenant_series.py)
    # and its Tenant worker reconciles each by name: that, with the clock at the next period.
    assert TENANT_LOOK_SECONDS == 60
    with OperatorProcess.others_paused():
        reconciler = TenantReconciler(
            kube, OperatorConfig(), lambda *_: None, clock=lambda: next_start + timedelta(seconds=5)
        )
        reconciler.reconcile_named(t)
        status = _status(kube, t)
    assert status["periodStart"] == format_time(next_start)
    assert (status["currentUsage"], status["promptTokens"], status["requests"]) == (0, 0, 0)
    history = status["history"]
    # The period that just ended first, then back in time; 12 of the 15 kept.
    assert [h["periodStart"] for h in history] == [format_time(s) for s in starts[:12]]
    assert history[0]["promptTokens"] == 10 and history[0]["periodEnd"] == format_time(next_start)
    assert history[11]["promptTokens"] == 120


def test_suspend_and_resume(tenant: dict[str, str], kube: Kube, kubeconfig: Path) -> None:
    assert cli(kubeconfig, "tenants", "suspend", tenant["name"]).returncode == 0
    wait_for(lambda: _status(kube, tenant["name"]).get("suspended") is True, what="suspended")
    assert kube.get("v1", "Namespace", tenant["namespace"]) is not None  # data kept
    assert cli(kubeconfig, "tenants", "resume", tenant["name"]).returncode == 0
    wait_for(lambda: _status(kube, tenant["name"]).get("suspended") is False, what="resumed")


def test_deleting_a_tenant_with_deployments_is_refused_unless_forced(
    tenant: dict[str, str], kube: Kube, kubeconfig: Path
) -> None:
    ns = tenant["namespace"]
    kube.create(
        make_md("keep")
        .namespace(ns)
        .cpu_only()
        .resources("1", "6Gi")  # CPU vLLM needs more than 5Gi (builders/vllm_cpu.py)
        .storage("5Gi", "encrypted-local")
        .manifest()
    )
    refused = cli(kubeconfig, "tenants", "delete", tenant["name"])
    assert refused.returncode == 1 and "still has 1 ModelDeployments" in refused.stderr
    # Past the CLI (kubectl delete), the operator's finalizer holds the tenant back, and a
    # Warning Event on the Tenant says why.
    kube.delete(*TENANT, tenant["name"])
    wait_for(
        lambda: (
            (kube.get(*TENANT, tenant["name"]) or {}).get("metadata", {}).get("deletionTimestamp")
        )
    )
    held = wait_for(
        lambda: [
            e
            for e in kube.list("v1", "Event", namespace="default")
            if e["involvedObject"].get("kind") == "Tenant"
            and e["involvedObject"].get("name") == tenant["name"]
            and e["type"] == "Warning"
            and "still has 1 ModelDeployments" in e["message"]
        ],
        what="a Warning Event saying why the deletion is held",
    )
    assert "keep" in held[0]["message"] and "force-delete" in held[0]["message"]
    assert kube.get(*MD, "keep", namespace=ns) is not None
    forced = cli(kubeconfig, "tenants", "delete", tenant["name"], "--force")
    assert forced.returncode == 0, forced.stderr
    wait_for(lambda: kube.get(*TENANT, tenant["name"]) is None, timeout=60, what="tenant gone")
    wait_for(
        lambda: (
            (kube.get("v1", "Namespace", ns) or {}).get("status", {}).get("phase")
            in (None, "Terminating")
        ),
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["tenants", "create", "dup", "--client-id", "CLIENT", "--tier", "standard"],
            "is already used by tenant",
        ),
        (
            ["tenants", "create", "x1", "--client-id", "x1-id", "--tier", "platinum"],
            "unknown tier 'platinum'",
        ),
        (["tenants", "suspend", "no-such-tenant"], "unknown tenant 'no-such-tenant'"),
        (["keys", "create", "--client-id", "no-such-client"], "unknown client ID 'no-such-client'"),
        (["keys", "revoke", "aaaaaaaaaaaa"], "unknown key id"),
        (["keys", "create", "--client-id", "CLIENT", "--expires", "soon"], "invalid duration"),
    ],
)
def test_cli_errors_are_one_clear_line(
    tenant: dict[str, str], kubeconfig: Path, args: list[str], message: str
) -> None:
    done = cli(kubeconfig, *[a.replace("CLIENT", tenant["client_id"]) for a in args])
    assert done.returncode != 0
    error_lines = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(error_lines) == 1 and message in error_lines[0]  # argparse adds usage lines


def test_cli_says_when_no_cluster_is_reachable(tmp_path: Path, kubeconfig: Path) -> None:
    # Port 9 (discard) is closed on this machine.
    text = re.sub(r"https://127\.0\.0\.1:\d+", "https://127.0.0.1:9", kubeconfig.read_text())
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(text)
    done = subprocess.run(
        [sys.executable, "-m", "paitient_cli.main", "--kubeconfig", str(dead), "tenants", "list"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("error: no cluster reachable")


def _key_data(kube: Kube, tenant: str) -> dict[str, str]:
    secret = kube.get("v1", "Secret", keys_secret_name(tenant), namespace=SYSTEM) or {}
    return dict(secret.get("data") or {})


def test_a_full_tenant_is_refused_and_pruning_makes_room_without_letting_a_key_back(
    tenant: dict[str, str], kube: Kube, kubeconfig: Path, stack: ApiProcess
) -> None:
    name, client_id = tenant["name"], tenant["client_id"]
    made = cli(kubeconfig, "keys", "create", "--client-id", client_id)
    assert made.returncode == 0, made.stderr
    key = made.stdout.splitlines()[0]
    key_id = key.split("_")[1]
    headers = {"Authorization": f"Bearer {key}", "X-Client-ID": client_id}

    def subscription(headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        return call("GET", f"{stack.base_url}/subscription", headers=headers)

    assert subscription(headers)[0] == 200
    assert cli(kubeconfig, "keys", "revoke", key_id).returncode == 0
    wait_for(lambda: subscription(headers)[0] == 401, what="the revocation at the front door")
    revoked_answer = subscription(headers)[2]
    # The tenant fills up: 511 more keys (records as `keys create` writes them; never used).
    now = datetime.now(UTC).replace(microsecond=0)
    others = [
        new_record(generate_api_key(), b"f" * 32, name, client_id, now)
        for _ in range(MAX_KEYS_PER_TENANT - 1)
    ]
    secret = keys_secret_name(name)
    kube.patch("v1", "Secret", secret, {"data": records_to_secret_data(others)}, namespace=SYSTEM)
    assert len(_key_data(kube, name)) == MAX_KEYS_PER_TENANT

    refused = cli(kubeconfig, "keys", "create", "--client-id", client_id)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith(
        f"error: tenant {name} holds {MAX_KEYS_PER_TENANT} key records, the most one tenant "
        f"may hold ({MAX_KEYS_PER_TENANT}): revoke keys it no longer uses."
    ), refused.stderr
    assert "kept 30 days (--key-retention)" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert len(_key_data(kube, name)) == MAX_KEYS_PER_TENANT  # nothing written

    # 31 days later (the record as it would stand then), the revoked key's record is pruned by
    # the next write, which makes room for the new key.
    (mine,) = [r for r in records_from_secret_data(_key_data(kube, name)) if r.key_id == key_id]
    aged = mine.model_copy(update={"created": now - timedelta(days=60), "revoked": now - timedelta(days=31)})  # fmt: skip
    kube.patch("v1", "Secret", secret, {"data": records_to_secret_data([aged])}, namespace=SYSTEM)
    made = cli(kubeconfig, "keys", "create", "--client-id", client_id)
    assert made.returncode == 0, made.stderr
    assert "Removed 1 record of keys revoked or expired more than 30 days ago." in made.stdout
    data = _key_data(kube, name)
    assert key_id not in data and len(data) == MAX_KEYS_PER_TENANT
    new_key = made.stdout.splitlines()[0]
    new_headers = {"Authorization": f"Bearer {new_key}", "X-Client-ID": client_id}
    assert subscription(new_headers)[0] == 200

    # The pruned key stays refused, with the same answer as when it was revoked.
    status, _, body = subscription(headers)
    assert status == 401
    assert body["error"]["message"] == revoked_answer["error"]["message"]
    # And the tenant is full again.
    assert cli(kubeconfig, "keys", "create", "--client-id", client_id).returncode == 1
