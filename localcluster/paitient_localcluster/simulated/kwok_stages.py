"""KWOK's configuration for the local cluster: how simulated pods move through their life (pure).

KWOK's built-in pod stage marks a pod Running *and* Ready as soon as it is scheduled. Any pod
but a model pod keeps that (the Helm test's operator and front door pods). A model pod
(``app.kubernetes.io/name=paitient-model``) is made Running with Ready=False instead: its
readiness is the local data plane's to set, from the real readiness probe of the gateway it runs
for the pod (``dataplane.py``), as a kubelet would. So the ReplicaSet's ``readyReplicas``, hence
the ModelDeployment's Ready condition, only count a pod whose gateway answers.

The templates follow KWOK's own ``kustomize/stage/pod/fast`` stages (v0.7.0).
"""

from __future__ import annotations

from typing import Any, Final

MODEL_POD_LABEL: Final = ("app.kubernetes.io/name", "paitient-model")
STAGE_API: Final = "kwok.x-k8s.io/v1alpha1"
KWOK_CONFIGURATION: Final = {
    "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
    "kind": "KwokConfiguration",
}

Expression = dict[str, Any]  # one of a Stage selector's matchExpressions
_MODEL_LABEL_KEY: Final = f'.metadata.labels["{MODEL_POD_LABEL[0]}"]'


def _running_template(ready: bool) -> str:
    """A pod's status once it runs: every container started, Ready as given."""
    flag = "true" if ready else "false"
    condition = '"True"' if ready else '"False"'
    return f"""{{{{ $now := Now }}}}
conditions:
- lastTransitionTime: {{{{ $now | Quote }}}}
  status: "True"
  type: Initialized
- lastTransitionTime: {{{{ $now | Quote }}}}
  status: {condition}
  type: Ready
- lastTransitionTime: {{{{ $now | Quote }}}}
  status: {condition}
  type: ContainersReady
{{{{ range .spec.readinessGates }}}}
- lastTransitionTime: {{{{ $now | Quote }}}}
  status: {condition}
  type: {{{{ .conditionType | Quote }}}}
{{{{ end }}}}
containerStatuses:
{{{{ range .spec.containers }}}}
- image: {{{{ .image | Quote }}}}
  name: {{{{ .name | Quote }}}}
  ready: {flag}
  started: true
  restartCount: 0
  state:
    running:
      startedAt: {{{{ $now | Quote }}}}
{{{{ end }}}}
initContainerStatuses:
{{{{ range .spec.initContainers }}}}
- image: {{{{ .image | Quote }}}}
  name: {{{{ .name | Quote }}}}
  ready: true
  restartCount: 0
  {{{{ if eq .restartPolicy "Always" }}}}
  started: true
  state:
    running:
      startedAt: {{{{ $now | Quote }}}}
  {{{{ else }}}}
  state:
    terminated:
      exitCode: 0
      finishedAt: {{{{ $now | Quote }}}}
      reason: Completed
      startedAt: {{{{ $now | Quote }}}}
  {{{{ end }}}}
{{{{ end }}}}
hostIP: {{{{ NodeIPWith .spec.nodeName | Quote }}}}
podIP: {{{{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}}}
phase: Running
startTime: {{{{ $now | Quote }}}}
"""


def _stage(name: str, expressions: list[Expression], nxt: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": STAGE_API,
        "kind": "Stage",
        "metadata": {"name": name},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
            "selector": {"matchExpressions": expressions},
            "next": nxt,
        },
    }


_NOT_DELETED: Final[Expression] = {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"}
_NO_IP: Final[Expression] = {"key": ".status.podIP", "operator": "DoesNotExist"}


def pod_stages(model_pods_ready_at_once: bool = False) -> list[dict[str, Any]]:
    """Run (and make Ready) any pod but a model pod; run a model pod, not Ready; finish Jobs'
    pods; delete what is deleted. Node stages stay KWOK's built-in ones.

    ``model_pods_ready_at_once`` makes model pods Ready like any other, for a cluster where no
    data plane runs their gateways (the operator's benchmark, with hundreds of deployments)."""
    model: Expression = {"key": _MODEL_LABEL_KEY, "operator": "In", "values": [MODEL_POD_LABEL[1]]}
    other: Expression = {**model, "operator": "NotIn"}
    job_running: list[Expression] = [
        _NOT_DELETED,
        {"key": ".status.phase", "operator": "In", "values": ["Running"]},
        {"key": ".metadata.ownerReferences.[].kind", "operator": "In", "values": ["Job"]},
    ]
    complete = """{{ $now := Now }}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  restartCount: 0
  started: false
  state:
    terminated:
      exitCode: 0
      finishedAt: {{ $now | Quote }}
      reason: Completed
      startedAt: {{ $now | Quote }}
{{ end }}
phase: Succeeded
"""
    return [
        _stage(
            "pod-ready", [_NOT_DELETED, _NO_IP, other], {"statusTemplate": _running_template(True)}
        ),
        _stage(
            "model-pod-running",
            [_NOT_DELETED, _NO_IP, model],
            {"statusTemplate": _running_template(model_pods_ready_at_once)},
        ),
        _stage("pod-complete", job_running, {"statusTemplate": complete}),
        _stage(
            "pod-delete",
            [{"key": ".metadata.deletionTimestamp", "operator": "Exists"}],
            {"finalizers": {"empty": True}, "delete": True},
        ),
    ]


def kwok_config(model_pods_ready_at_once: bool = False) -> list[dict[str, Any]]:
    """The documents of KWOK's ``--config`` file."""
    return [dict(KWOK_CONFIGURATION), *pod_stages(model_pods_ready_at_once)]
