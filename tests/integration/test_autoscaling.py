"""spec.autoscaling on the local cluster, with the session's operator and front door and the
local data plane (a real gateway per replica, in front of the vLLM stand-in, on simulated GPU
nodes; tests/integration/test_autoscaling_real_vllm.py does the same with real vLLM on the real
node):

- bad input is refused by the API server (CEL, bounds) or the operator (the tier), naming the
  field;
- engine hpa and keda render objects the API server accepts (KEDA's real CRD installed for it);
- a user's HPA is left alone;
- the native autoscaler: a step of load raises replicas, idle brings them back to the minimum,
  an operator killed mid-scale continues where it was, and what clients received equals what
  the gateways billed across the scale-up and the scale-down;
- scale from zero: concurrent requests at zero (generate, the OpenAI routes, streams) all held
  and served by one replica, back to zero when idle, billed exactly.

Every wait is a condition on the cluster with a generous bound; no test times anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paitient_secure_model as sdk
import pytest
import yaml

from paitient_cli import admin
from paitient_common.kubeapi import Kube, KubeError
from paitient_common.wake import WAKE_ANNOTATION
from paitient_localcluster.upstream import keda
from tests.integration.autoscaling_load import FrontDoorLoad, pace_standin
from tests.integration.frontdoor_process import ApiProcess
from tests.integration.operator_process import OperatorProcess
from tests.integration.stack_helpers import make_tenant
from tests.integration.waiting import wait_for

MD = ("paitient.ai/v1alpha1", "ModelDeployment")
TENANT = ("paitient.ai/v1alpha1", "Tenant")
USAGE_REPORT = ("paitient.ai/v1alpha1", "UsageReport")
SCALE_WAIT = 180  # a decision needs its window plus a few passes; pods start in seconds


@pytest.fixture(scope="module")
def tenant(operator: OperatorProcess, kube: Kube) -> Iterator[dict[str, str]]:
    """Enterprise: room for every deployment's maxReplicas of GPUs."""
    info = make_tenant(kube, tier="enterprise")
    yield info
    admin.delete_tenant(kube, info["name"], force=True)


def manifest(name: str, namespace: str, autoscaling: dict[str, Any] | None) -> dict[str, Any]:
    """A GPU deployment (simulated H100 nodes, served by the data plane)."""
    spec: dict[str, Any] = {
        "model": {"name": "org/standin"},
        "useGpu": True,
        "gpu": {"count": 1},
        "storage": {"size": "1Gi", "storageClassName": "encrypted-local"},
    }
    if autoscaling is not None:
        spec["autoscaling"] = autoscaling
    return {"apiVersion": MD[0], "kind": MD[1],
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}  # fmt: skip


def status(kube: Kube, name: str, namespace: str) -> dict[str, Any]:
    return dict(((kube.get(*MD, name, namespace=namespace) or {}).get("status")) or {})


def deployment_replicas(kube: Kube, name: str, namespace: str) -> int | None:
    found = kube.get("apps/v1", "Deployment", name, namespace=namespace) or {}
    return (found.get("spec") or {}).get("replicas")


def condition(kube: Kube, name: str, namespace: str, kind: str) -> dict[str, Any]:
    for cond in status(kube, name, namespace).get("conditions") or []:
        if cond["type"] == kind:
            return dict(cond)
    return {}


def events(kube: Kube, name: str, namespace: str, reason: str) -> list[dict[str, Any]]:
    return [
        e for e in kube.list("v1", "Event", namespace=namespace)
        if e["involvedObject"].get("name") == name and e["reason"] == reason
    ]  # fmt: skip


def posted(kube: Kube, name: str, namespace: str, reason: str) -> list[dict[str, Any]]:
    """The Events of ``reason`` once there is one (they are posted right after the change)."""
    return wait_for(lambda: events(kube, name, namespace, reason), what=f"a {reason} Event")


def scaled_to(kube: Kube, name: str, namespace: str, replicas: int) -> dict[str, Any] | None:
    """The status once the autoscaler asks for ``replicas`` and that many are Ready."""
    seen = status(kube, name, namespace)
    asked = (seen.get("autoscaling") or {}).get("desiredReplicas")
    ready = int(seen.get("readyReplicas") or 0)
    if (
        asked == replicas
        and ready == replicas
        and deployment_replicas(kube, name, namespace) == replicas
    ):
        return seen
    return None


def billed(kube: Kube, namespace: str, tenant: str, deployment: str) -> int:
    """Tokens the deployment's gateways reported for ``tenant`` (every pod, gone ones too)."""
    return sum(
        int(e["promptTokens"]) + int(e["completionTokens"])
        for report in kube.list(*USAGE_REPORT, namespace=namespace)
        if report["spec"].get("modelDeployment") == deployment
        for e in report["spec"].get("entries") or []
        if e["tenant"] == tenant
    )


def headers(tenant: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant['key']}", "X-Client-ID": tenant["client_id"]}


# -- bad input ---------------------------------------------------------------------------------

REFUSED = [
    ({"replicas": 2, "autoscaling": {"maxReplicas": 3}}, "replicas and autoscaling cannot both be set"),
    ({"autoscaling": {"minReplicas": 3, "maxReplicas": 2}},
     "autoscaling.minReplicas must not be greater than autoscaling.maxReplicas"),
    ({"autoscaling": {"maxReplicas": 2, "target": {"value": 0}}}, "spec.autoscaling.target.value"),
    ({"autoscaling": {"maxReplicas": 2, "target": {"value": -3}}}, "spec.autoscaling.target.value"),
    ({"autoscaling": {"engine": "hpa", "minReplicas": 0, "maxReplicas": 2}},
     "autoscaling.minReplicas must be at least 1 with engine hpa"),
    ({"autoscaling": {"maxReplicas": 2, "scaleDownDelay": "a while"}},
     "spec.autoscaling.scaleDownDelay"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "named"), REFUSED)
def test_the_api_server_refuses_bad_autoscaling_naming_the_field(
    kube: Kube, tenant: dict[str, str], spec: dict[str, Any], named: str
) -> None:
    body = manifest("refused", tenant["namespace"], None)
    body["spec"].update(spec)
    with pytest.raises(KubeError) as refused:
        kube.create(body)
    assert refused.value.status == 422
    assert named in refused.value.message, refused.value.message


def test_a_tier_that_cannot_hold_max_replicas_is_refused_naming_it(
    operator: OperatorProcess, kube: Kube, tenant: dict[str, str]
) -> None:
    ns = tenant["namespace"]
    kube.create(manifest("too-many", ns, {"minReplicas": 0, "maxReplicas": 65}))
    try:
        failed = wait_for(
            lambda: (s := status(kube, "too-many", ns)).get("phase") == "Failed" and s,
            what="the refusal",
        )
        assert condition(kube, "too-many", ns, "Ready")["reason"] == "TierLimitExceeded"
        assert "spec.autoscaling.maxReplicas 65 x 1 GPUs asks for 65" in failed["message"]
        assert kube.get("apps/v1", "Deployment", "too-many", namespace=ns) is None
    finally:
        kube.delete(*MD, "too-many", namespace=ns)


# -- the other engines and other autoscalers ---------------------------------------------------------


def test_engine_hpa_renders_an_hpa_the_api_server_takes_and_leaves_replicas_to_it(
    operator: OperatorProcess, kube: Kube, tenant: dict[str, str]
) -> None:
    ns = tenant["namespace"]
    kube.create(manifest("by-hpa", ns, {"engine": "hpa", "minReplicas": 1, "maxReplicas": 2,
                                        "target": {"value": 4}}))  # fmt: skip
    try:
        hpa = wait_for(
            lambda: kube.get("autoscaling/v2", "HorizontalPodAutoscaler", "by-hpa", namespace=ns),
            what="the HPA",
        )
        assert hpa["spec"]["scaleTargetRef"]["name"] == "by-hpa"
        assert hpa["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"
        active = wait_for(lambda: condition(kube, "by-hpa", ns, "AutoscalerActive"), what="cond")
        assert (active["status"], active["reason"]) == ("True", "HorizontalPodAutoscaler")
        # Back to the native engine: the operator's own HPA goes, replicas come back to it.
        kube.patch(*MD, "by-hpa", {"spec": {"autoscaling": {"engine": "native"}}}, namespace=ns)
        wait_for(
            lambda: (
                kube.get("autoscaling/v2", "HorizontalPodAutoscaler", "by-hpa", namespace=ns)
                is None
            ),
            what="the HPA deleted",
        )
        wait_for(lambda: scaled_to(kube, "by-hpa", ns, 1), timeout=SCALE_WAIT, what="native")
    finally:
        kube.delete(*MD, "by-hpa", namespace=ns)


def test_engine_keda_waits_for_kedas_crds_then_renders_a_scaled_object_they_accept(
    operator: OperatorProcess, kube: Kube, tenant: dict[str, str]
) -> None:
    ns = tenant["namespace"]
    crd = yaml.safe_load((keda.fetch_crds() / keda.SCALED_OBJECTS).read_text())
    kube.create(manifest("by-keda", ns, {"engine": "keda", "minReplicas": 0, "maxReplicas": 2}))
    try:
        missing = wait_for(lambda: condition(kube, "by-keda", ns, "AutoscalerActive"), what="cond")
        assert (missing["status"], missing["reason"]) == ("False", "KEDANotInstalled")
        assert deployment_replicas(kube, "by-keda", ns) == 1  # nobody else scales it meanwhile
        kube.create(crd)
        # The operator asks whether KEDA is served at most once a minute.
        scaled = wait_for(
            lambda: kube.get("keda.sh/v1alpha1", "ScaledObject", "by-keda", namespace=ns),
            timeout=150,
            what="the ScaledObject",
        )
        assert scaled["spec"]["minReplicaCount"] == 0 and scaled["spec"]["maxReplicaCount"] == 2
        # The status is written after the children: the condition follows the ScaledObject.
        active = wait_for(
            lambda: (
                (c := condition(kube, "by-keda", ns, "AutoscalerActive")).get("status") == "True"
                and c
            ),
            what="AutoscalerActive True",
        )
        assert active["reason"] == "KEDAScaledObject"
    finally:
        kube.delete(*MD, "by-keda", namespace=ns)
        kube.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd["metadata"]["name"])


def test_a_users_hpa_on_the_deployment_is_left_alone(
    stack: ApiProcess, kube: Kube, tenant: dict[str, str], dataplane: Path
) -> None:
    """The same load on two natively autoscaled deployments, one of which a user's HPA also
    scales: the other one scales up (so the autoscaler's passes ran), the user's does not move,
    and its HPA is untouched."""
    ns = tenant["namespace"]
    policy = {"minReplicas": 1, "maxReplicas": 3, "target": {"value": 1},
              "stabilizationWindow": "0s", "scaleDownDelay": "10m"}  # fmt: skip
    users_hpa = {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "users-own", "namespace": ns},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "theirs"},
                 "minReplicas": 1, "maxReplicas": 2,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                              "target": {"type": "Utilization", "averageUtilization": 80}}}]},
    }  # fmt: skip
    for name in ("theirs", "control"):
        kube.create(manifest(name, ns, policy))
    try:
        for name in ("theirs", "control"):
            wait_for(lambda n=name: scaled_to(kube, n, ns, 1), timeout=SCALE_WAIT, what="Ready")
            pace_standin(dataplane, ns, name, 10)
        created = kube.create(users_hpa)
        yielded = wait_for(
            lambda: (
                condition(kube, "theirs", ns, "AutoscalerActive").get("reason")
                == "YieldedToAnotherAutoscaler"
                and status(kube, "theirs", ns)
            ),
            what="the native autoscaler yielding",
        )
        assert yielded["autoscaling"]["yieldedTo"] == "HorizontalPodAutoscaler/users-own"
        assert len(posted(kube, "theirs", ns, "AutoscalerYielded")) == 1
        # What the user's HPA would do (it has no metrics here): 2 replicas.
        kube.patch("apps/v1", "Deployment", "theirs", {"spec": {"replicas": 2}}, namespace=ns)
        loads = [
            FrontDoorLoad(stack.root, headers(tenant), n, clients=4) for n in ("theirs", "control")
        ]

        async def under_load() -> None:
            running = [asyncio.ensure_future(load.run()) for load in loads]
            await asyncio.to_thread(
                wait_for,
                lambda: scaled_to(kube, "control", ns, 3),
                SCALE_WAIT,
                1.0,
                "the control deployment scaled up",
            )
            for load in loads:
                load.stop()
            await asyncio.gather(*running)

        asyncio.run(under_load())
        assert [load.failures for load in loads] == [[], []]
        assert deployment_replicas(kube, "theirs", ns) == 2
        assert "lastDecision" not in status(kube, "theirs", ns)["autoscaling"]
        assert events(kube, "theirs", ns, "ScaledUp") == []
        hpa = kube.get("autoscaling/v2", "HorizontalPodAutoscaler", "users-own", namespace=ns) or {}
        assert hpa["spec"] == created["spec"]  # not rewritten (its status is the HPA's own)
    finally:
        kube.delete("autoscaling/v2", "HorizontalPodAutoscaler", "users-own", namespace=ns)
        for name in ("theirs", "control"):
            kube.delete(*MD, name, namespace=ns)


# -- the native autoscaler ------------------------------------------------------------------------


def test_a_step_of_load_scales_up_idle_scales_down_and_billing_is_exact(
    stack: ApiProcess, kube: Kube, tenant: dict[str, str], dataplane: Path
) -> None:
    """Load from 0 to 6 clients and back: 1 -> 3 -> 1 replicas, an Event and a decision with
    its inputs for each change, and every token a client received billed once, including those
    served by the replicas that were scaled down (they drain first)."""
    ns, name = tenant["namespace"], "stepped"
    kube.create(manifest(name, ns, {"minReplicas": 1, "maxReplicas": 3, "target": {"value": 2},
                                    "stabilizationWindow": "2s", "scaleDownDelay": "15s"}))  # fmt: skip
    try:
        wait_for(lambda: scaled_to(kube, name, ns, 1), timeout=SCALE_WAIT, what="1 replica")
        pace_standin(dataplane, ns, name, 10)  # 30 tokens: 3 s per answer
        load = FrontDoorLoad(stack.root, headers(tenant), name, clients=6)

        async def step() -> dict[str, Any]:
            running = asyncio.ensure_future(load.run())
            up = await asyncio.to_thread(
                wait_for, lambda: scaled_to(kube, name, ns, 3), SCALE_WAIT, 1.0, "3 replicas"
            )
            load.stop()
            await running
            return up

        up = asyncio.run(step())
        decision = up["autoscaling"]["lastDecision"]
        assert decision["toReplicas"] == 3 and decision["reason"] == "LoadAboveTarget"
        assert decision["inputs"]["inFlight"] >= 5 and decision["inputs"]["target"] == 2
        # 1 -> 3 at once, or 1 -> 2 -> 3 when a pass saw the clients still ramping up: an
        # Event for each change, and never a step back.
        assert decision["fromReplicas"] in (1, 2)
        changes = 1 if decision["fromReplicas"] == 1 else 2
        wait_for(lambda: len(events(kube, name, ns, "ScaledUp")) >= changes, what="the Events")
        assert len(events(kube, name, ns, "ScaledUp")) == changes
        assert not events(kube, name, ns, "ScaledDown")
        down = wait_for(lambda: scaled_to(kube, name, ns, 1), timeout=SCALE_WAIT, what="idle: 1")
        assert down["autoscaling"]["lastDecision"]["reason"] == "LoadBelowTarget"
        assert posted(kube, name, ns, "ScaledDown")
        assert load.failures == [] and load.answers
        wait_for(
            lambda: billed(kube, ns, tenant["name"], name) == load.received_tokens,
            timeout=60,
            what=f"billed == received ({load.received_tokens} tokens)",
        )
    finally:
        kube.delete(*MD, name, namespace=ns)


def test_an_operator_killed_mid_scale_continues_where_it_was(
    stack: ApiProcess, operator: OperatorProcess, kube: Kube, tenant: dict[str, str],
    dataplane: Path,
) -> None:  # fmt: skip
    """SIGKILL while a scale-up waits out its window: the next operator finds the window in the
    status, keeps its start, and makes the one decision, once."""
    ns, name = tenant["namespace"], "restarted"
    kube.create(manifest(name, ns, {"minReplicas": 1, "maxReplicas": 3, "target": {"value": 2},
                                    "stabilizationWindow": "40s", "scaleDownDelay": "10m"}))  # fmt: skip
    try:
        wait_for(lambda: scaled_to(kube, name, ns, 1), timeout=SCALE_WAIT, what="1 replica")
        pace_standin(dataplane, ns, name, 5)
        load = FrontDoorLoad(stack.root, headers(tenant), name, clients=6)

        async def restart_mid_scale() -> dict[str, Any]:
            running = asyncio.ensure_future(load.run())
            pending = await asyncio.to_thread(
                wait_for,
                lambda: (
                    (p := (status(kube, name, ns).get("autoscaling") or {}).get("pending"))
                    and p["direction"] == "up"
                    and p
                ),
                60,
                0.5,
                "a scale-up pending",
            )
            await asyncio.to_thread(operator.kill)
            await asyncio.to_thread(operator.start)
            # The new operator's first passes are done by now (1 s apart): the window it
            # continues is the one the first operator opened (40 s long: still open).
            await asyncio.to_thread(
                wait_for, lambda: status(kube, name, ns).get("autoscaling", {}).get("pending"),
                30, 0.5, "the pending scale-up after the restart",
            )  # fmt: skip
            await asyncio.sleep(3)
            kept = (status(kube, name, ns).get("autoscaling") or {}).get("pending") or {}
            assert kept.get("since") == pending["since"], (kept, pending)
            up = await asyncio.to_thread(
                wait_for, lambda: scaled_to(kube, name, ns, 3), SCALE_WAIT, 1.0, "3 replicas"
            )
            load.stop()
            await running
            return up

        up = asyncio.run(restart_mid_scale())
        # Each step decided once (the window may first settle on 2, then 3), none repeated.
        steps = [e["message"].split(" replicas:")[0] for e in posted(kube, name, ns, "ScaledUp")]
        assert sorted(steps) in (["1 -> 3"], ["1 -> 2", "2 -> 3"]), steps
        assert up["autoscaling"]["lastDecision"]["toReplicas"] == 3
        assert load.failures == []
    finally:
        kube.delete(*MD, name, namespace=ns)


# -- scale from zero --------------------------------------------------------------------------


def test_requests_at_zero_are_held_and_all_served_and_idle_goes_back_to_zero(
    stack: ApiProcess, kube: Kube, tenant: dict[str, str]
) -> None:
    ns, name = tenant["namespace"], "elastic"
    kube.create(manifest(name, ns, {"minReplicas": 0, "maxReplicas": 2, "target": {"value": 4},
                                    "scaleDownDelay": "15s"}))  # fmt: skip
    client = sdk.SecureModelClient(api_key=tenant["key"], client_id=tenant["client_id"],
                                   base_url=stack.base_url)  # fmt: skip
    try:
        zero = wait_for(
            lambda: (s := status(kube, name, ns)).get("phase") == "ScaledToZero" and s,
            what="scaled to zero",
        )
        assert deployment_replicas(kube, name, ns) == 0 and zero["desiredReplicas"] == 0
        assert client.get_deployment_status(name).status == "scaled-to-zero"
        client.wait_until_ready(name, timeout=5)  # answers at zero count as ready
        load = FrontDoorLoad(stack.root, headers(tenant), name, clients=0)

        async def at_zero() -> list[Any]:
            # Six OpenAI requests (half streams) and two SDK generations at once, at zero.
            sdk_calls = [
                asyncio.to_thread(client.generate, deployment_id=name, prompt="a b", max_tokens=5),
                asyncio.to_thread(
                    lambda: list(
                        client.generate(deployment_id=name, prompt="c d", max_tokens=5, stream=True)
                    )
                ),
            ]
            results = await asyncio.gather(load.once(6), *sdk_calls)
            return list(results[1:])

        generated, streamed = asyncio.run(at_zero())
        assert load.failures == [] and len(load.answers) == 6
        assert generated.usage.completion_tokens >= 1
        final = streamed[-1]
        assert final.usage is not None and final.usage.completion_tokens >= 1
        woke = posted(kube, name, ns, "ScaledFromZero")
        assert len(woke) == 1  # one wake for eight callers
        md = kube.get(*MD, name, namespace=ns) or {}
        assert WAKE_ANNOTATION in md["metadata"]["annotations"]
        back = wait_for(
            lambda: (s := status(kube, name, ns)).get("phase") == "ScaledToZero"
            and deployment_replicas(kube, name, ns) == 0 and s,
            timeout=SCALE_WAIT, what="idle: back to zero",
        )  # fmt: skip
        assert back["autoscaling"]["lastDecision"]["toReplicas"] == 0
        received = load.received_tokens + generated.usage.total_tokens + final.usage.total_tokens
        wait_for(lambda: billed(kube, ns, tenant["name"], name) == received, timeout=60,
                 what=f"billed == received ({received} tokens)")  # fmt: skip
    finally:
        client.close()
        kube.delete(*MD, name, namespace=ns)
