"""The autoscaler objects the operator renders for ``spec.autoscaling.engine`` hpa and keda (pure).

Both scale the model's Deployment (the operator then leaves its ``replicas`` alone) on the
gateways' own metrics, the same signals the native autoscaler reads:

- ``hpa``: a HorizontalPodAutoscaler (``autoscaling/v2``) with a ``Pods`` metric, the average
  per replica of ``paitient_gateway_in_flight_completions`` (or ``..._model_requests_waiting``)
  against the target, through the cluster's custom-metrics adapter (prometheus-adapter or
  similar must serve that metric). ``behavior`` carries the stabilisation window (up) and the
  scale-down delay (down). An HPA cannot leave zero: the CRD refuses ``minReplicas: 0`` with it.
- ``keda``: a KEDA ScaledObject with a Prometheus trigger on the same series, summed over the
  deployment's pods, ``threshold`` the target, ``cooldownPeriod`` the scale-down delay; and a
  second trigger on the front doors' held requests for this deployment, so a request at zero
  replicas activates it (KEDA owns the replicas: the front door's wake request is for the
  native autoscaler only).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from paitient_common.resources.modeldeployment import AutoscalingSpec, ModelDeployment
from paitient_operator.builders.metadata import Manifest, object_meta
from paitient_operator.config import OperatorConfig

HPA_API_VERSION: Final = "autoscaling/v2"
KEDA_API_VERSION: Final = "keda.sh/v1alpha1"
SCALED_OBJECT: Final = "ScaledObject"
# The gateway's series for each target metric (paitient_gateway.metrics, .model_load).
GATEWAY_SERIES: Final = {
    "inFlight": "paitient_gateway_in_flight_completions",
    "waiting": "paitient_gateway_model_requests_waiting",
}
# The front door's requests held for a deployment at zero (paitient_api.hold).
HELD_SERIES: Final = "paitient_api_held_requests"


def _target_ref(md: ModelDeployment) -> dict[str, str]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": md.name}


def _autoscaling(md: ModelDeployment) -> AutoscalingSpec:
    if md.spec.autoscaling is None:
        raise ValueError(f"{md.namespace}/{md.name} has no spec.autoscaling")
    return md.spec.autoscaling


def quantity(value: float) -> str:
    """A target as a Kubernetes quantity: whole numbers plain, fractions in milli-units."""
    if float(value).is_integer():
        return str(int(value))
    return f"{round(value * 1000)}m"


def build_hpa(md: ModelDeployment) -> Manifest:
    """The HorizontalPodAutoscaler of ``md`` (``engine: hpa``)."""
    spec = _autoscaling(md)
    metric = GATEWAY_SERIES[spec.target.metric]
    return {
        "apiVersion": HPA_API_VERSION,
        "kind": "HorizontalPodAutoscaler",
        "metadata": object_meta(md),
        "spec": {
            "scaleTargetRef": _target_ref(md),
            "minReplicas": spec.min_replicas,
            "maxReplicas": spec.max_replicas,
            "metrics": [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": metric},
                        "target": {
                            "type": "AverageValue",
                            "averageValue": quantity(spec.target.value),
                        },
                    },
                }
            ],
            # The HPA's windows go up to an hour (its API's bound).
            "behavior": {
                "scaleUp": {
                    "stabilizationWindowSeconds": _seconds(spec.stabilization_window_period, 3600)
                },
                "scaleDown": {
                    "stabilizationWindowSeconds": _seconds(spec.scale_down_delay_period, 3600)
                },
            },
        },
    }


def pods_of(md: ModelDeployment) -> str:
    """A PromQL matcher of ``md``'s pods: Prometheus's ``namespace`` and ``pod`` labels (as the
    Kubernetes service discovery sets them), the pod names its ReplicaSets give."""
    return f'namespace="{md.namespace}",pod=~"{md.name}-[a-z0-9]+-[a-z0-9]+"'


def build_scaled_object(md: ModelDeployment, config: OperatorConfig) -> Manifest:
    """The KEDA ScaledObject of ``md`` (``engine: keda``)."""
    spec = _autoscaling(md)
    keda = config.autoscaling.keda
    series = GATEWAY_SERIES[spec.target.metric]
    load: dict[str, Any] = {
        "type": "prometheus",
        "name": "load",
        "metadata": {
            "serverAddress": keda.prometheus_address,
            "query": f"sum({series}{{{pods_of(md)}}}) or vector(0)",
            "threshold": _number(spec.target.value),
            "activationThreshold": "0",
        },
    }
    held: dict[str, Any] = {
        "type": "prometheus",
        "name": "held-at-the-front-door",
        "metadata": {
            "serverAddress": keda.prometheus_address,
            "query": (
                f'sum({HELD_SERIES}{{deployment_namespace="{md.namespace}",'
                f'deployment="{md.name}"}}) or vector(0)'
            ),
            "threshold": "1",
            "activationThreshold": "0",
        },
    }
    return {
        "apiVersion": KEDA_API_VERSION,
        "kind": SCALED_OBJECT,
        "metadata": object_meta(md),
        "spec": {
            "scaleTargetRef": _target_ref(md),
            "minReplicaCount": spec.min_replicas,
            "maxReplicaCount": spec.max_replicas,
            "pollingInterval": keda.polling_interval_seconds,
            "cooldownPeriod": _seconds(spec.scale_down_delay_period),
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {
                        "scaleUp": {
                            "stabilizationWindowSeconds": _seconds(
                                spec.stabilization_window_period, 3600
                            )
                        },
                    }
                }
            },
            "triggers": [load, held],
        },
    }


def _seconds(period: timedelta, most: int | None = None) -> int:
    seconds = int(period.total_seconds())
    return seconds if most is None else min(seconds, most)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
