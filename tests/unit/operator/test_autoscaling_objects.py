"""What the operator renders and decides for ``spec.autoscaling``: the HPA and the KEDA
ScaledObject (validated against their real schemas: Kubernetes' own through
kubernetes-validate, KEDA's CRD from its Go module), the Deployment's replicas and drain, the
tier rule on maxReplicas, and the plan a reconcile follows (pure)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from paitient_common.tiers import DEFAULT_TIERS
from paitient_localcluster.upstream import keda
from paitient_operator import conditions as c
from paitient_operator.autoscaling.decision import ReplicaLoad
from paitient_operator.autoscaling.plan import Autoscaler, plan_scaling
from paitient_operator.builders.autoscalers import build_hpa, build_scaled_object, quantity
from paitient_operator.builders.deployment import DRAINED_FILE, build_deployment
from paitient_operator.config import OperatorConfig
from paitient_operator.errors import TierLimitExceeded
from paitient_operator.tier_rules import check_tier
from tests.unit.operator.factories import make_md

KUBERNETES_VERSION = "1.34.0"  # the local control plane's
NOW = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)


@functools.cache
def _keda_schema() -> dict[str, Any]:
    crd = yaml.safe_load((keda.fetch_crds() / keda.SCALED_OBJECTS).read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def autoscaled(**more: Any) -> Any:
    return make_md("m").cpu_only().autoscaling(4, 0, **more).obj()


@pytest.mark.parametrize("metric", ["inFlight", "waiting"])
def test_the_hpa_is_valid_for_kubernetes_and_carries_the_policy(metric: str) -> None:
    md = make_md("m").autoscaling(
        4, 1, target={"metric": metric, "value": 2.5}, scaleDownDelay="2h",
        stabilizationWindow="45s",
    ).obj()  # fmt: skip
    hpa = build_hpa(md)
    hpa["metadata"]["namespace"] = md.namespace
    kubernetes_validate.validate(hpa, KUBERNETES_VERSION, strict=True)
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "m"}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 4)
    pods = spec["metrics"][0]["pods"]
    series = {"inFlight": "paitient_gateway_in_flight_completions",
              "waiting": "paitient_gateway_model_requests_waiting"}[metric]  # fmt: skip
    assert pods == {"metric": {"name": series},
                    "target": {"type": "AverageValue", "averageValue": "2500m"}}  # fmt: skip
    # The HPA's windows stop at an hour, its API's bound.
    assert spec["behavior"] == {"scaleUp": {"stabilizationWindowSeconds": 45},
                                "scaleDown": {"stabilizationWindowSeconds": 3600}}  # fmt: skip


def test_an_invalid_hpa_is_caught_by_the_schema_check() -> None:
    """The check above can fail: a field Kubernetes does not have is refused."""
    hpa = build_hpa(make_md("m").autoscaling(2).obj())
    hpa["spec"]["maxReplicaCount"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(hpa, KUBERNETES_VERSION, strict=True)


def test_the_scaled_object_is_valid_for_kedas_crd_and_wakes_on_held_requests() -> None:
    md = autoscaled(target={"metric": "inFlight", "value": 3}, scaleDownDelay="90s")
    config = OperatorConfig.model_validate(
        {"autoscaling": {"keda": {"prometheusAddress": "http://prom.mon.svc:9090"}}}
    )
    scaled = build_scaled_object(md, config)
    jsonschema.validate(scaled, _keda_schema())
    spec = scaled["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"], spec["cooldownPeriod"]) == (0, 4, 90)
    load, held = spec["triggers"]
    assert load["metadata"]["query"] == (
        'sum(paitient_gateway_in_flight_completions{namespace="tenant-demo",'
        'pod=~"m-[a-z0-9]+-[a-z0-9]+"}) or vector(0)'
    )
    assert load["metadata"]["threshold"] == "3"
    assert "paitient_api_held_requests" in held["metadata"]["query"]
    assert {t["metadata"]["serverAddress"] for t in spec["triggers"]} == {
        "http://prom.mon.svc:9090"
    }
    broken = {**scaled, "spec": {**spec, "minReplicaCount": "zero"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, _keda_schema())


def test_quantities() -> None:
    assert (quantity(4), quantity(0.5), quantity(2.25)) == ("4", "500m", "2250m")


def test_model_pods_drain_before_vllm_stops() -> None:
    config = OperatorConfig.model_validate(
        {"drain": {"shutdownDelaySeconds": 5, "shutdownTimeoutSeconds": 120}}
    )
    pod = build_deployment(make_md("m").obj(), config)["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 5 + 120 + 30
    vllm, gateway = pod["containers"]
    env = {e["name"]: e.get("value") for e in gateway["env"]}
    assert env["PAITIENT_SHUTDOWN_DELAY_SECONDS"] == "5"
    assert env["PAITIENT_SHUTDOWN_TIMEOUT_SECONDS"] == "120"
    assert env["PAITIENT_DRAINED_FILE"] == DRAINED_FILE
    hook = vllm["lifecycle"]["preStop"]["exec"]["command"]
    assert hook[0] == "python3" and hook[3:] == [
        DRAINED_FILE,
        "8443",
        "http://127.0.0.1:8000/metrics",
    ]
    compile(hook[2], "preStop", "exec")  # the hook's script is Python that parses
    mounts = {c["name"]: {m["name"]: m for m in c["volumeMounts"]} for c in (vllm, gateway)}
    assert mounts["vllm"]["lifecycle"]["readOnly"] is True
    assert "readOnly" not in mounts["gateway"]["lifecycle"]


def test_the_tier_must_hold_max_replicas_and_says_which_field() -> None:
    md = make_md("m").autoscaling(5, 0).gpus(2).obj()
    with pytest.raises(TierLimitExceeded) as refused:
        check_tier(md, "standard", DEFAULT_TIERS["standard"], [], "2026-12-08T09:00:00Z")
    assert refused.value.message == (
        "tier 'standard' allows 8 GPUs; 0 are in use and spec.autoscaling.maxReplicas 5 x 2 "
        "GPUs asks for 10; lower maxReplicas"
    )
    older = make_md("old").autoscaling(3, 0).gpus(2).manifest()
    older["metadata"]["creationTimestamp"] = "2026-12-01T00:00:00Z"
    fits = make_md("m").autoscaling(1).gpus(2).obj()
    check_tier(fits, "standard", DEFAULT_TIERS["standard"], [older], "2026-12-08T09:00:00Z")
    too_many = make_md("m").autoscaling(2).gpus(2).obj()
    with pytest.raises(TierLimitExceeded, match="6 are in use"):
        check_tier(too_many, "standard", DEFAULT_TIERS["standard"], [older], "2026-12-08T09:00Z")


# -- the plan a reconcile follows ---------------------------------------------------------------


def test_without_autoscaling_the_spec_decides_unless_an_hpa_owns_the_deployment() -> None:
    md = make_md("m").replicas(3).obj()
    assert plan_scaling(md, {}, (), NOW).replicas == 3
    theirs = Autoscaler("HorizontalPodAutoscaler", "h", owned=False)
    assert plan_scaling(md, {}, (theirs,), NOW).replicas is None
    on_the_md = Autoscaler("HorizontalPodAutoscaler", "h", False, "ModelDeployment")
    assert plan_scaling(md, {}, (on_the_md,), NOW).replicas == 3  # spec.replicas flows


def test_native_starts_at_the_minimum_or_keeps_what_ran() -> None:
    fresh = plan_scaling(autoscaled(), {}, (), NOW)
    assert fresh.replicas == 0 and fresh.status == {"engine": "native", "desiredReplicas": 0}
    assert fresh.condition is not None and fresh.condition[:2] == (True, c.REASON_NATIVE_AUTOSCALER)
    was_fixed = plan_scaling(autoscaled(), {"desiredReplicas": 2}, (), NOW)
    assert was_fixed.replicas == 2


def test_a_wake_is_one_replica_at_once_with_its_decision_in_the_status() -> None:
    plan = plan_scaling(autoscaled(), {"autoscaling": {"desiredReplicas": 0}}, (), NOW,
                        wake_token="t1")  # fmt: skip
    assert plan.replicas == 1 and plan.status is not None
    assert plan.status["lastDecision"]["reason"] == "WokenByRequest"
    assert plan.status["lastDecision"]["fromReplicas"] == 0
    assert plan.status["wakeToken"] == "t1" and plan.status["lastScaleTime"] == (
        "2026-12-08T09:00:00.000Z"
    )
    # The same pass again, from what it wrote: nothing changes, nothing to write.
    again = plan_scaling(autoscaled(), {"autoscaling": plan.status}, (), NOW, wake_token="t1")
    assert again.status == plan.status and again.decision is not None and not again.decision.changed


def test_a_pending_window_survives_a_restart_through_the_status() -> None:
    md = make_md("m").autoscaling(4, 1, target={"value": 1}, stabilizationWindow="30s").obj()
    busy = [ReplicaLoad("p", in_flight=3)]
    first = plan_scaling(md, {"autoscaling": {"desiredReplicas": 1}}, (), NOW, loads=busy)
    assert first.replicas == 1 and first.status is not None
    assert first.status["pending"] == {"direction": "up", "since": "2026-12-08T09:00:00.000Z",
                                       "replicas": 3}  # fmt: skip
    later = NOW + timedelta(seconds=30)
    done = plan_scaling(md, {"autoscaling": first.status}, (), later, loads=busy)
    assert done.replicas == 3 and done.status is not None and "pending" not in done.status
    assert done.status["lastDecision"]["inputs"]["inFlight"] == 3


def test_native_yields_to_a_users_autoscaler_and_says_which() -> None:
    theirs = Autoscaler("ScaledObject", "mine", owned=False)
    plan = plan_scaling(autoscaled(), {}, (theirs,), NOW)
    assert plan.replicas is None and plan.yielded_to == [theirs]
    assert plan.condition is not None and plan.condition[:2] == (False, c.REASON_YIELDED)
    assert "ScaledObject/mine already scales this deployment" in plan.condition[2]
    assert plan.status is not None and plan.status["yieldedTo"] == "ScaledObject/mine"
    ours = Autoscaler("HorizontalPodAutoscaler", "m", owned=True)  # left from engine hpa
    assert plan_scaling(autoscaled(), {}, (ours,), NOW).replicas == 0


def test_hpa_and_keda_render_their_object_and_leave_replicas() -> None:
    hpa = plan_scaling(make_md("m").autoscaling(3, 1, engine="hpa").obj(), {}, (), NOW)
    assert (hpa.replicas, hpa.render) == (None, "hpa")
    keda_md = make_md("m").autoscaling(3, 0, engine="keda").obj()
    assert plan_scaling(keda_md, {}, (), NOW, keda_installed=True).render == "keda"
    missing = plan_scaling(keda_md, {}, (), NOW, keda_installed=False)
    assert (missing.replicas, missing.render) == (1, None)
    assert missing.condition is not None
    assert missing.condition[:2] == (False, c.REASON_KEDA_NOT_INSTALLED)
    assert "needs KEDA's CRDs" in missing.condition[2]


def test_what_a_start_compiles_is_kept_per_image_and_model_on_the_cache_volume() -> None:
    config = OperatorConfig()

    def vllm_env(md: Any) -> dict[str, str]:
        containers = build_deployment(md, config)["spec"]["template"]["spec"]["containers"]
        return {e["name"]: e.get("value") for e in containers[0]["env"]}

    cpu = vllm_env(make_md("a").cpu_only().uri("pvc://m/tiny").resources("1", "6Gi").obj())
    root = cpu["VLLM_CACHE_ROOT"].removesuffix("/vllm")
    assert root.startswith("/models/cache/start/") and len(root.rsplit("/", 1)[1]) == 16
    assert cpu["TORCHINDUCTOR_CACHE_DIR"] == f"{root}/torchinductor"
    assert cpu["TMPDIR"] == "/models/cache" and cpu["VLLM_USE_AOT_COMPILE"] == "0"
    # The same model in another deployment: the same key; another model or image: another.
    same = vllm_env(make_md("b").cpu_only().uri("pvc://m/tiny").resources("1", "6Gi").obj())
    other = vllm_env(make_md("c").cpu_only().uri("pvc://m/other").resources("1", "6Gi").obj())
    image = vllm_env(make_md("d").cpu_only().uri("pvc://m/tiny").resources("1", "6Gi")
                     .image("my/vllm:1").obj())  # fmt: skip
    assert same["VLLM_CACHE_ROOT"] == cpu["VLLM_CACHE_ROOT"]
    assert len({cpu["VLLM_CACHE_ROOT"], other["VLLM_CACHE_ROOT"], image["VLLM_CACHE_ROOT"]}) == 3
    gpu = vllm_env(make_md("g").obj())
    assert gpu["TRITON_CACHE_DIR"].endswith("/triton") and "TMPDIR" not in gpu
