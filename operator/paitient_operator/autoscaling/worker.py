"""The native autoscaler's pass: every ``interval`` seconds, for each ModelDeployment with
``spec.autoscaling.engine: native`` (from the controller's caches, as its pods), read its
replicas' loads from their gateways and, when the decision function would change something (the
replicas, or the window it waits out), reconcile the deployment with those loads. The decision and its memory are written in the status by that
reconcile, under the deployment's lock, with the children: one writer, level-based. The same
pass reconciles a deployment with ``engine: keda`` that waits for KEDA's CRDs once they are
served (no event of the deployment says so).

It runs where the controller runs: started by kopf's start-up handler and stopped by its
clean-up, like the certificate renewals. With leader election (several operator replicas, one
Lease) kopf runs on the leader only, and so do the controller and this pass; a leader that loses its Lease exits
before another may take over, so two passes never act at once, and the next leader continues
from the status.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from paitient_common.kubeapi import Kube, KubeError, Obj
from paitient_common.resources.modeldeployment import ModelDeployment, parse_model_deployment
from paitient_common.resources.shared import InvalidResource
from paitient_common.secrets import CA_BUNDLE_CONFIGMAP, CA_BUNDLE_KEY
from paitient_common.tls import client_context
from paitient_common.wake import wake_token_of
from paitient_operator.autoscaling.decision import ReplicaLoad
from paitient_operator.autoscaling.loads import GatewayAddresses, LoadReader, serving_pods
from paitient_operator.autoscaling.plan import plan_scaling
from paitient_operator.conditions import REASON_KEDA_NOT_INSTALLED, TYPE_AUTOSCALER_ACTIVE
from paitient_operator.errors import OperatorError

log = logging.getLogger(__name__)
TRUST_REFRESH_SECONDS = 60.0

# (namespace, name, loads) -> reconcile that deployment with those loads.
Reconcile = Callable[[str, str, Sequence[ReplicaLoad]], object]
# (namespace, name) -> the deployment's pods.
Pods = Callable[[str, str], Sequence[Mapping[str, Any]]]
# body -> the status the operator last wrote for it.
LastStatus = Callable[[Obj], Mapping[str, Any]]


def natively_autoscaled(body: Mapping[str, Any]) -> bool:
    autoscaling = (body.get("spec") or {}).get("autoscaling")
    deleting = (body.get("metadata") or {}).get("deletionTimestamp")
    return (
        isinstance(autoscaling, Mapping)
        and autoscaling.get("engine", "native") == "native"
        and not deleting
    )


def waits_for_keda(body: Mapping[str, Any]) -> bool:
    """Whether the deployment's autoscaler is KEDA and its status says KEDA's CRDs were missing
    (pure)."""
    autoscaling = (body.get("spec") or {}).get("autoscaling")
    if not isinstance(autoscaling, Mapping) or autoscaling.get("engine") != "keda":
        return False
    if (body.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return any(
        c.get("type") == TYPE_AUTOSCALER_ACTIVE and c.get("reason") == REASON_KEDA_NOT_INSTALLED
        for c in (body.get("status") or {}).get("conditions") or []
    )


@dataclass
class AutoscalerWorker:
    kube: Kube  # reads the gateways' CA bundle
    deployments: Callable[[], Iterable[Obj]]  # every ModelDeployment
    pods: Pods
    reconcile: Reconcile
    last_status: LastStatus
    system_namespace: str
    interval: float = 5.0
    addresses: GatewayAddresses = field(default_factory=GatewayAddresses)
    reader: LoadReader = field(default_factory=LoadReader)
    # Whether KEDA's CRDs are served (the reconciler's probe, asked at most once a minute).
    keda_installed: Callable[[], bool] = lambda: False
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _trust: ssl.SSLContext | None = None
    _trust_pem: str = ""
    _trust_read_at: float = float("-inf")

    def start(self) -> AutoscalerWorker:
        self._thread = threading.Thread(target=self._run, name="autoscaler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.reader.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:  # the next pass tries again; a pass never ends the operator
                log.exception("the autoscaler's pass failed")

    def tick(self) -> int:
        """One pass over every natively autoscaled deployment; how many were reconciled."""
        reconciled = 0
        for body in self.deployments():
            if self._stop.is_set():
                break
            meta = body["metadata"]
            if waits_for_keda(body) and self.keda_installed():
                # KEDA came: the ScaledObject is rendered now
                self.reconcile(meta["namespace"], meta["name"], ())
                reconciled += 1
                continue
            if not natively_autoscaled(body):
                continue
            try:
                reconciled += self.pass_one(body)
            except (KubeError, OperatorError, InvalidResource, OSError) as exc:
                log.warning("autoscaling %s/%s: %s", meta["namespace"], meta["name"], exc)
        return reconciled

    def pass_one(self, body: Obj) -> int:
        """Read the loads of one deployment; reconcile it when a decision would change
        anything. 1 if it was reconciled."""
        try:
            md = parse_model_deployment(body)
        except InvalidResource:
            return 0  # the reconciler refuses it, and says why
        previous = self.last_status(body)
        if (previous.get("autoscaling") or {}).get("yieldedTo"):
            return 0  # another autoscaler scales it; its coming and going reconcile it
        loads = self.loads_of(md)
        plan = plan_scaling(
            md, previous, (), self.clock(), loads=loads, wake_token=wake_token_of(body)
        )
        if plan.status == previous.get("autoscaling") and not (
            plan.decision is not None and plan.decision.changed
        ):
            return 0
        self.reconcile(md.namespace, md.name, loads)
        return 1

    def loads_of(self, md: ModelDeployment) -> list[ReplicaLoad]:
        """Every replica's load: read from the Ready ones, unknown (NaN) for the ones still
        starting, which the decision then never removes."""
        ready, starting = serving_pods(self.pods(md.namespace, md.name))
        loads = []
        context = self._trust_context()
        if context is not None and ready:
            endpoints = self.addresses.endpoints(md.namespace, md.name, ready)
            loads = self.reader.read(endpoints, context)
            read = {load.pod for load in loads}
            loads += [
                ReplicaLoad(p["metadata"]["name"])
                for p in ready
                if p["metadata"]["name"] not in read
            ]
        else:
            loads = [ReplicaLoad(p["metadata"]["name"]) for p in ready]
        return loads + [ReplicaLoad(f"starting-{n}") for n in range(starting)]

    def _trust_context(self) -> ssl.SSLContext | None:
        """The gateways' CA bundle (the ConfigMap the operator publishes), re-read each minute."""
        now = time.monotonic()
        if now - self._trust_read_at < TRUST_REFRESH_SECONDS and self._trust is not None:
            return self._trust
        self._trust_read_at = now
        found = self.kube.get(
            "v1", "ConfigMap", CA_BUNDLE_CONFIGMAP, namespace=self.system_namespace
        )
        pem = str(((found or {}).get("data") or {}).get(CA_BUNDLE_KEY, ""))
        if pem and pem != self._trust_pem:
            try:
                self._trust, self._trust_pem = client_context(pem), pem
            except (ssl.SSLError, ValueError):
                log.error("the gateways' CA bundle is not usable; keeping the last one")
        return self._trust
