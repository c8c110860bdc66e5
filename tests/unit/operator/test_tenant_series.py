"""A deleted Tenant's usage series goes with it: the controller queues the deletion, and the
Tenant worker, finding the Tenant gone from the caches, drops its series (a Tenant held by its
finalizer keeps them). And every Tenant is queued every minute (a billing period starts at a
time, not on an event)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import cast

import pytest

from paitient_common.kubeapi import Kube, Obj
from paitient_operator.cache import watched as w
from paitient_operator.config import OperatorConfig
from paitient_operator.controller import Controller
from paitient_operator.observed_metrics import OBSERVED
from paitient_operator.reconciler import Reconciler
from paitient_operator.tenant_reconciler import TenantReconciler
from tests.unit.operator.memory_kube import MemoryKube


def _tenant(name: str, deleting: bool = False) -> Obj:
    meta: Obj = {"name": name, "uid": f"uid-{name}", "resourceVersion": "7"}
    if deleting:
        meta["deletionTimestamp"] = "2026-05-01T12:00:00Z"
    return {
        "apiVersion": "paitient.ai/v1alpha1",
        "kind": "Tenant",
        "metadata": meta,
        "spec": {"clientId": name, "tier": "standard"},
    }


@pytest.fixture
def parts() -> Iterator[tuple[Controller, TenantReconciler]]:
    kube, config = cast(Kube, MemoryKube()), OperatorConfig()
    tenants = TenantReconciler(kube, config, lambda *_: None)
    controller = Controller(
        Reconciler(kube, config, lambda *_: None), reconcile_tenant=tenants.reconcile_named
    )
    tenants.view = controller.view
    yield controller, tenants
    for name in ("acme", "held"):
        OBSERVED.tenant_gone(name)


def _next_tenant(controller: Controller) -> str:
    name = controller.tenants.get(timeout=0)
    assert name is not None
    controller.tenants.done(name)
    return name


def test_a_deleted_tenants_usage_series_is_dropped(
    parts: tuple[Controller, TenantReconciler],
) -> None:
    controller, tenants = parts
    OBSERVED.tenant("acme", {"currentUsage": 950, "usageLimit": 1000})
    controller._heard(w.TENANTS, "DELETED", _tenant("acme"))
    name = _next_tenant(controller)
    assert name == "acme" and "acme" in OBSERVED.usage  # not before its worker looks
    tenants.reconcile_named(name)
    assert "acme" not in OBSERVED.usage


def test_a_tenant_held_by_its_finalizer_keeps_its_series(
    parts: tuple[Controller, TenantReconciler],
) -> None:
    controller, tenants = parts
    OBSERVED.tenant("held", {"currentUsage": 5, "usageLimit": 10})
    controller.cache.informers[w.TENANTS].merge(_tenant("held", deleting=True))
    tenants.reconcile_named("held")
    assert OBSERVED.usage["held"] == (5, 10)


def test_every_tenant_in_the_caches_is_queued_every_look(
    parts: tuple[Controller, TenantReconciler],
) -> None:
    controller, _ = parts
    assert controller.tenant_look_seconds == 60  # the default: every minute
    controller.tenant_look_seconds = 0.01
    for name in ("acme", "held"):
        controller.cache.informers[w.TENANTS].merge(_tenant(name))
    look = threading.Thread(target=controller._look, daemon=True)
    look.start()
    try:
        seen = {controller.tenants.get(timeout=10) for _ in range(2)}
    finally:
        controller._stopping.set()
        look.join(timeout=10)
    assert seen == {"acme", "held"}
