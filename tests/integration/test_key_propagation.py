"""Keys on the running stack, at the front door and at every gateway: a key works on its first
request after ``keys create`` returns, and a revocation, an expiry, a suspension or a tier change
takes effect within 1 s, measured under load by the requests admitted after the change returned.
Both SDKs make the first-request calls; the load is plain HTTP, so nothing retries."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paitient_secure_model as sdk
import pytest

from paitient_cli import admin
from paitient_common.apikeys import records_from_secret_data
from paitient_common.kubeapi import Kube
from paitient_common.secrets import keys_secret_name
from tests.integration.frontdoor_process import ApiProcess, call
from tests.integration.gateway_tls import Gateway, gateway
from tests.integration.hammer import Hammer, Shot, Target, admitted_after, last_admission
from tests.integration.sdk_js import JsSdk
from tests.integration.stack_helpers import make_tenant
from tests.integration.waiting import wait_for

SYSTEM = "paitient-system"
EFFECT = 1.0  # seconds: the bound the issue sets for revocation, expiry, suspension and tiers
TENANT = ("paitient.ai/v1alpha1", "Tenant")
GATEWAYS = ("alpha", "beta")


@dataclass
class Served:
    """A tenant with two Ready deployments, each behind its own gateway."""

    tenant: dict[str, str]
    base_url: str
    gateways: dict[str, Gateway]  # deployment -> its gateway, reached as the front door does

    def headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}", "X-Client-ID": self.tenant["client_id"]}

    def targets(self, key: str, front_door: bool = True, gateways: bool = True) -> list[Target]:
        h = self.headers(key)
        body = {"model": "x", "prompt": "ping", "max_tokens": 1}
        found: list[Target] = []
        if front_door:
            found.append(Target("front door", "GET", f"{self.base_url}/subscription", h))
            found += [
                Target(f"front door -> {name}", "POST", f"{self.base_url}/deployments/{name}/generate",
                       h, {"prompt": "ping", "max_tokens": 1})
                for name in self.gateways
            ]  # fmt: skip
        if gateways:
            found += [
                Target(f"gateway {name}", "POST", f"{gw.url}/v1/completions", h, body,
                       gw.context, gw.server_name)
                for name, gw in self.gateways.items()
            ]  # fmt: skip
        return found


@pytest.fixture(scope="module")
def served(stack: ApiProcess, kube: Kube) -> Iterator[Served]:
    # Enterprise: a minute's allowance of 6,000 requests, so the load below is not rate-limited.
    tenant = make_tenant(kube, tier="enterprise")
    client = sdk.SecureModelClient(
        api_key=tenant["key"], client_id=tenant["client_id"], base_url=stack.base_url
    )
    try:
        for name in GATEWAYS:
            client.deploy_model(model_name="ZimaBlueAI/HuatuoGPT-o1-8B", deployment_name=name)
        for name in GATEWAYS:
            client.wait_until_ready(name, timeout=180, poll_interval=0.5)
        routes = Path(stack.gateway_url.removeprefix("file:"))
        yield Served(
            tenant,
            stack.base_url,
            {n: gateway(routes, f"{tenant['namespace']}/{n}", kube) for n in GATEWAYS},
        )
    finally:
        client.close()
        admin.delete_tenant(kube, tenant["name"], force=True)


def _python_call(base_url: str, key: str, client_id: str, deployment: str | None) -> str | None:
    """One call with the Python SDK, no retries; the error's class name, or None."""
    with sdk.SecureModelClient(
        api_key=key, client_id=client_id, base_url=base_url, max_retries=0
    ) as client:
        try:
            if deployment is None:
                client.get_subscription()
            else:
                client.generate(deployment_id=deployment, prompt="ping", max_tokens=2)
        except sdk.PaitientError as exc:
            return type(exc).__name__
    return None


def _js_call(js: JsSdk, key: str, client_id: str, deployment: str | None) -> str | None:
    if deployment is None:
        answer = js.call("subscription", apiKey=key, clientId=client_id)
    else:
        answer = js.call("generate", apiKey=key, clientId=client_id, deploymentId=deployment)
    return None if answer["ok"] else str(answer["error"])


def test_a_new_tenant_and_key_work_on_their_first_request_50_times(
    stack: ApiProcess, kube: Kube
) -> None:
    """``tenants create`` + ``keys create``, then at once a call, alternating the SDKs."""
    errors, names = [], []
    with JsSdk(stack.base_url) as js:
        try:
            for i in range(50):
                tenant = make_tenant(kube)  # returns as soon as `keys create` has
                names.append(tenant["name"])
                key, client_id = tenant["key"], tenant["client_id"]
                if i % 2:
                    error = _js_call(js, key, client_id, None)
                else:
                    error = _python_call(stack.base_url, key, client_id, None)
                if error:
                    errors.append((i, "js" if i % 2 else "python", error))
        finally:
            for name in names:
                admin.delete_tenant(kube, name, force=True)
            # Gone before the next test, which should not wait behind 50 tenants' clean-up.
            wait_for(
                lambda: all(kube.get(*TENANT, n) is None for n in names),
                timeout=300, what="the 50 tenants deleted",
            )  # fmt: skip
    assert errors == []


def test_a_new_key_works_on_its_first_request_at_every_gateway_50_times(
    served: Served, kube: Kube
) -> None:
    """``keys create``, then at once a generate, which the front door and then the deployment's
    gateway each verify: alternating gateways and SDKs."""
    errors = []
    client_id = served.tenant["client_id"]
    with JsSdk(served.base_url) as js:
        for i in range(50):
            key = admin.create_key(kube, client_id, None, f"first request {i}", SYSTEM)[0]
            gateway = GATEWAYS[(i // 2) % 2]
            if i % 2:
                error = _js_call(js, key, client_id, gateway)
            else:
                error = _python_call(served.base_url, key, client_id, gateway)
            if error:
                errors.append((i, gateway, error))
    assert errors == []


def _change_under_load(
    targets: list[Target],
    clients: int,
    change: Callable[[], object],
    admitted: Callable[[Shot], bool],
    after: int = 3,
) -> tuple[float, list[Shot]]:
    """Hammer ``targets``; once every target has been admitted twice, make ``change``; stop once
    every target has ``after`` answers to requests begun more than EFFECT after the change
    returned. (When the change returned, every shot, for the tests' checks.)"""
    names = {t.name for t in targets}
    hammer = Hammer(targets, clients).start()
    try:
        hammer.wait(
            lambda shots: all(sum(s.target == n and admitted(s) for s in shots) >= 2 for n in names),
            timeout=60, what="every target to admit requests before the change",
        )  # fmt: skip
        change()
        returned = time.monotonic()
        hammer.wait(
            lambda shots: all(
                sum(s.target == n and s.started > returned + EFFECT for s in shots) >= after
                for n in names
            ),
            timeout=60, what="requests begun after the change took effect",
        )  # fmt: skip
    finally:
        shots = hammer.stop()
    return returned, shots


def _report(
    what: str, returned: float, shots: list[Shot], admitted: Callable[[Shot], bool]
) -> None:
    for name in sorted({s.target for s in shots}):
        mine = [s for s in shots if s.target == name]
        last = last_admission([s for s in mine if s.started > returned - 5], admitted)
        delay = "none after" if last is None or last <= returned else f"+{last - returned:.3f} s"
        print(f"{what}: {name}: {len(mine)} requests, last admitted began {delay}")


def test_nothing_is_admitted_later_than_1_s_after_a_revoke_under_load(
    served: Served, kube: Kube
) -> None:
    """20 clients on the front door (subscription, generate to each deployment) and on each
    gateway directly; the key is revoked while they run."""
    key = admin.create_key(kube, served.tenant["client_id"], None, "revoked under load", SYSTEM)[0]
    ok: Callable[[Shot], bool] = lambda s: s.status == 200  # noqa: E731
    returned, shots = _change_under_load(
        served.targets(key), 20, lambda: admin.revoke_key(kube, key.split("_")[1], SYSTEM), ok
    )
    _report("revoke", returned, shots, ok)
    assert admitted_after(shots, returned + EFFECT, ok) == []
    late = {s.status for s in shots if s.started > returned + EFFECT}
    assert late == {401}, late  # refused as any unknown key is, never an error


def test_an_expired_key_is_refused_within_1_s_of_its_expiry(served: Served, kube: Kube) -> None:
    key = admin.create_key(
        kube, served.tenant["client_id"], timedelta(seconds=10), "expires", SYSTEM
    )[0]
    record_expiry = _expiry(kube, served.tenant["name"], key.split("_")[1])
    # The record's expiry on this process's monotonic clock (the one the shots use).
    expires = time.monotonic() + (record_expiry - datetime.now(UTC)).total_seconds()
    ok: Callable[[Shot], bool] = lambda s: s.status == 200  # noqa: E731
    _, shots = _change_under_load(served.targets(key), 6, lambda: _sleep_until(expires), ok)
    assert admitted_after(shots, expires + EFFECT, ok) == []
    assert {s.status for s in shots if s.started > expires + EFFECT} == {401}


def _expiry(kube: Kube, tenant: str, key_id: str) -> datetime:
    secret = kube.get("v1", "Secret", keys_secret_name(tenant), namespace=SYSTEM) or {}
    record = next(r for r in records_from_secret_data(secret.get("data")) if r.key_id == key_id)
    assert record.expires is not None
    return record.expires


def _sleep_until(moment: float) -> None:
    """The 'change' of an expiry is time itself: wait for the moment the record names."""
    while time.monotonic() < moment:
        time.sleep(0.02)


def test_a_suspension_and_a_resumption_take_effect_within_1_s(served: Served, kube: Kube) -> None:
    key = served.tenant["key"]
    name = served.tenant["name"]
    ok: Callable[[Shot], bool] = lambda s: s.status == 200  # noqa: E731
    try:
        returned, shots = _change_under_load(
            served.targets(key), 10, lambda: admin.set_suspended(kube, name, True), ok
        )
        _report("suspend", returned, shots, ok)
        assert admitted_after(shots, returned + EFFECT, ok) == []
        assert {s.status for s in shots if s.started > returned + EFFECT} == {403}
    finally:
        refused: Callable[[Shot], bool] = lambda s: s.status == 403  # noqa: E731
        returned, shots = _change_under_load(
            served.targets(key), 10, lambda: admin.set_suspended(kube, name, False), refused
        )
    assert admitted_after(shots, returned + EFFECT, refused) == []
    assert {s.status for s in shots if s.started > returned + EFFECT} == {200}


def test_a_tier_change_reaches_every_gateway_within_1_s(served: Served, kube: Kube) -> None:
    """The gateways' per-tenant rate limit comes from the tier: enterprise allows 6000 requests
    a minute, standard 600; every answer (200, or 429 once standard's allowance is spent) names
    the limit it was judged under."""
    name = served.tenant["name"]
    targets = served.targets(served.tenant["key"], front_door=False)

    def limit(s: Shot) -> str | None:
        return s.headers.get("x-ratelimit-limit-requests")

    def admitted_under(value: str) -> Callable[[Shot], bool]:
        return lambda s: s.status == 200 and limit(s) == value

    for old, new, tier in (("6000", "600", "standard"), ("600", "6000", "enterprise")):
        returned, shots = _change_under_load(
            targets, 6, lambda t=tier: kube.patch(*TENANT, name, {"spec": {"tier": t}}),
            lambda s, o=old: s.status in (200, 429) and limit(s) == o,
        )  # fmt: skip
        _report(f"tier {tier}", returned, shots, admitted_under(old))
        assert admitted_after(shots, returned + EFFECT, admitted_under(old)) == []
        late = {(s.status, limit(s)) for s in shots if s.started > returned + EFFECT}
        assert late and {value for _, value in late} == {new}, late


def _cli(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paitient_cli.main", "--kubeconfig", str(kubeconfig), *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_keys_rotate_and_a_revoked_or_foreign_key_is_refused_everywhere(
    served: Served, kubeconfig: Path, kube: Kube
) -> None:
    """As an administrator rotates: a second key, both valid at once at the front door and at
    every gateway; a key is valid only with its own client ID, never with another tenant's real
    one, and another tenant's real key gets nothing here; the revoked one is refused everywhere
    at once, the other goes on working."""
    client_id = served.tenant["client_id"]
    made = _cli(kubeconfig, "keys", "create", "--client-id", client_id, "--expires", "90d")
    assert made.returncode == 0, made.stderr
    first = made.stdout.splitlines()[0]
    assert first.startswith("psk_") and "only time the key is shown" in made.stdout
    second = _cli(kubeconfig, "keys", "create", "--client-id", client_id).stdout.splitlines()[0]

    def statuses(key: str, client: str = client_id) -> set[int]:
        headers = {"Authorization": f"Bearer {key}", "X-Client-ID": client}
        found = {call("GET", f"{served.base_url}/subscription", headers=headers)[0]}
        for gw in served.gateways.values():
            body = {"model": "x", "prompt": "ping", "max_tokens": 1}
            found.add(gw.call("POST", "/v1/completions", body, headers)[0])
        return found

    assert statuses(first) == statuses(second) == {200}
    other = make_tenant(kube)  # a second tenant with a real key and a real client ID
    try:
        wait_for(lambda: statuses(other["key"], other["client_id"]) == {200, 403},
                 timeout=30, what="the other tenant's key known everywhere")  # fmt: skip
        # Its own key with its own client ID: served at the front door, but not by these
        # deployments' gateways (another tenant's namespace: 403).
        assert statuses(first, other["client_id"]) == {401}  # our key, their client ID
        assert statuses(other["key"], client_id) == {401}  # their key, our client ID
    finally:
        admin.delete_tenant(kube, other["name"], force=True)
    listed = _cli(kubeconfig, "keys", "list", "--client-id", client_id).stdout
    key_id = first.split("_")[1]
    assert key_id in listed and first not in listed and "active" in listed
    revoked = _cli(kubeconfig, "keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    # How soon is the load tests' to measure; here: refused everywhere, the other key not.
    wait_for(lambda: statuses(first) == {401}, timeout=30, what="the revoked key refused")
    assert statuses(second) == {200}
    listed = _cli(kubeconfig, "keys", "list", "--client-id", client_id).stdout
    assert any(line.startswith(key_id) and line.endswith("revoked") for line in listed.splitlines())
