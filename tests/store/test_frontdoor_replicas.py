"""Two front-door replicas (the real application, in this process) sharing one real
redis-server: a retried create lands on either with the same answer and one deployment; the
subscription shows usage the moment a gateway settles it, on both; the negative key cache is
shared; and with the store stopped each falls back (Tenant.status, its own records), no 5xx."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from paitient_common.apikeys import generate_api_key, parse_api_key
from paitient_common.informer import Informer
from paitient_common.keycache.directory import Directory, Snapshot, TenantInfo, parse_key_secret
from paitient_common.keycache.kubernetes_source import KeyReadThrough
from paitient_common.kubeasync import AsyncKube, Query
from paitient_common.secrets import KEYS_LABEL, keys_secret_name
from paitient_common.store.connection import Store
from paitient_common.store.health import StoreHealth, keep_probing
from paitient_common.store.keys import negative_key, period_keys
from paitient_common.store.limits import Period, settle
from paitient_common.store.negative import SharedNegativeCache
from paitient_common.store.settings import parse_store_url
from paitient_common.tiers import current_period, format_time
from paitient_localcluster.host.processes import free_port
from tests.storeserver import RedisServer
from tests.unit.common.scripted_api import ScriptedApi
from tests.unit.frontdoor.support import InMemoryCluster, Keys, call, front_door, make_keys

CREATE = {"model_name": "ZimaBlueAI/HuatuoGPT-o1-8B", "deployment_name": "m1", "use_gpu": False}


@contextlib.asynccontextmanager
async def replicas(
    server: RedisServer, cluster: InMemoryCluster, count: int = 2
) -> AsyncIterator[tuple[list[str], Keys, list[StoreHealth]]]:
    keys = make_keys()
    async with contextlib.AsyncExitStack() as stack:
        urls, healths = [], []
        for _ in range(count):
            settings = parse_store_url(server.url, server.password)
            store = Store(settings)
            stack.push_async_callback(store.close)
            health = StoreHealth(settings, "on the fallbacks")
            await store.client.ping()
            health.up()
            url, _ = await stack.enter_async_context(
                front_door(cluster, keys=keys, store=(store, health))
            )
            urls.append(url)
            healths.append(health)
        yield urls, keys, healths


def test_a_retried_create_lands_on_the_other_replica_with_the_same_answer(
    redis_server: RedisServer,
) -> None:
    cluster = InMemoryCluster()

    async def scenario() -> list[tuple[int, object]]:
        async with replicas(redis_server, cluster) as (urls, keys, _):
            headers = {**keys.headers(), "Idempotency-Key": "create-once"}
            first = await call("POST", f"{urls[0]}/v1/deployments", CREATE, headers)
            retried = await call("POST", f"{urls[1]}/v1/deployments", CREATE, headers)
            together = await asyncio.gather(
                *(
                    call("POST", f"{urls[n % 2]}/v1/deployments", {**CREATE, "deployment_name": "m2"},
                         {**keys.headers(), "Idempotency-Key": "together"})
                    for n in range(6)
                )
            )  # fmt: skip
            return [(first[0], first[2]), (retried[0], retried[2])] + [
                (s, b) for s, _, b in together
            ]

    answers = asyncio.run(scenario())
    assert answers[0][0] == 202 and answers[1] == answers[0]  # replayed, not a 409
    assert {(s, str(b)) for s, b in answers[2:]} == {(answers[2][0], str(answers[2][1]))}
    assert answers[2][0] == 202
    assert cluster.creates == 2  # one per key, whatever replica the retries reached


def test_the_subscription_shows_usage_the_moment_it_is_settled_on_every_replica(
    redis_server: RedisServer,
) -> None:
    now = datetime.now(UTC)
    _, end, start = current_period(now)
    cluster = InMemoryCluster()
    cluster.tenants["acme"] = {
        "status": {"tier": "standard", "currentUsage": 40, "usageLimit": 1000,
                   "periodStart": start, "periodEnd": format_time(end)}
    }  # fmt: skip

    async def scenario() -> list[int]:
        async with replicas(redis_server, cluster) as (urls, keys, healths):
            seen = []
            before = [await call("GET", f"{u}/v1/subscription", None, keys.headers()) for u in urls]
            seen += [b[2]["current_usage"] for b in before]  # type: ignore[index]
            gateway = Store(parse_store_url(redis_server.url, redis_server.password))
            period = Period(period_keys("acme", start), int(end.timestamp() * 1000) + 86_400_000)
            await settle(gateway, period, "", "c:pod-a/ledger", 57)  # a response just ended
            await gateway.close()
            after = [await call("GET", f"{u}/v1/subscription", None, keys.headers()) for u in urls]
            seen += [a[2]["current_usage"] for a in after]  # type: ignore[index]
            redis_server.stop()
            down = [await call("GET", f"{u}/v1/subscription", None, keys.headers()) for u in urls]
            seen += [d[0] for d in down] + [d[2]["current_usage"] for d in down]  # type: ignore[index]
            seen.append(sum(not h.available for h in healths))
            return seen

    # Tenant.status says 40 before; 57 settled in the store shows at once on both replicas;
    # the store stopped: Tenant.status answers (40), 200, and both know the store is down.
    assert asyncio.run(scenario()) == [40, 40, 57, 57, 200, 200, 40, 40, 2]


def test_retries_with_the_store_stopped_fall_back_to_the_replicas_own_records(
    redis_server: RedisServer,
) -> None:
    cluster = InMemoryCluster()

    async def scenario() -> list[int]:
        async with replicas(redis_server, cluster) as (urls, keys, _):
            redis_server.stop()
            headers = {**keys.headers(), "Idempotency-Key": "while-down"}
            first = await call("POST", f"{urls[0]}/v1/deployments", CREATE, headers)
            again = await call("POST", f"{urls[0]}/v1/deployments", CREATE, headers)
            return [first[0], again[0], cluster.creates]

    assert asyncio.run(scenario()) == [202, 202, 1]


def test_a_name_one_replica_found_missing_is_known_missing_to_the_other(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> list[bool]:
        settings = parse_store_url(redis_server.url, redis_server.password)
        stores = [Store(settings), Store(settings)]
        healths = [StoreHealth(settings, "local"), StoreHealth(settings, "local")]
        for health in healths:
            health.up()
        one, other = (
            SharedNegativeCache("key", 0.3, s, h) for s, h in zip(stores, healths, strict=True)
        )
        try:
            seen = [await other.contains("k1")]
            await one.add("k1")
            seen += [await other.contains("k1"), await other.contains("k2")]
            await asyncio.sleep(0.4)
            seen.append(await other.contains("k1"))  # forgotten after its ttl
            redis_server.stop()
            await one.add("k3")  # the store is gone: each remembers on its own
            seen += [await one.contains("k3"), await other.contains("k3")]
            return seen
        finally:
            for store in stores:
                await store.close()

    assert asyncio.run(scenario()) == [False, True, False, False, True, False]


def test_the_read_throughs_misses_live_in_the_store_5s_for_a_key_and_1s_for_a_client(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """docs/caches.md's negative cache in the shared store: what a key read-through did not
    find is written there with the product's own TTLs, so the next replica skips the read."""
    api = ScriptedApi()
    api.put(keys_secret_name("t0"))["metadata"]["labels"] = {KEYS_LABEL: "true"}
    key_id = generate_api_key()
    settings = parse_store_url(redis_server.url, redis_server.password)

    async def scenario() -> tuple[int, int, int]:
        await api.start()
        kube = await AsyncKube.from_kubeconfig(str(api.kubeconfig(tmp_path)))
        store, health = Store(settings), StoreHealth(settings, "local")
        health.up()
        try:
            directory = Directory()
            tenant = TenantInfo("t0", "t0-app", "tenant-t0", "standard")
            directory.apply(Snapshot(b"p" * 32, [], [tenant]))
            informers = {
                "keys": Informer("keys", kube, Query("v1", "Secret", "ns"), parse_key_secret,
                                 lambda: None),
                "tenants": Informer("tenants", kube, Query("v1", "Secret", "x"), str, lambda: None),
            }  # fmt: skip
            directory.resolver = KeyReadThrough(
                kube, "ns", informers, directory, store=store, store_health=health
            )
            await directory.verify(f"Bearer {key_id.plaintext}", "t0-app")
            await directory.verify(f"Bearer {generate_api_key().plaintext}", "nobody-app")
            parsed = parse_api_key(key_id.plaintext)
            assert parsed is not None
            key_ttl = await store.client.pttl(negative_key("key", parsed[0]))
            client_ttl = await store.client.pttl(negative_key("client", "nobody-app"))
            return int(key_ttl), int(client_ttl), sum(r.startswith("get ") for r in api.requests)
        finally:
            await store.close()
            await kube.close()
            await api.stop()

    key_ttl, client_ttl, gets = asyncio.run(scenario())
    # Milliseconds left, read just after the write: the TTL given, less the moment since.
    assert 4000 < key_ttl <= 5000 and 0 < client_ttl <= 1000, (key_ttl, client_ttl)
    assert gets == 1


def test_a_front_door_is_not_ready_until_its_store_answers_and_never_shows_the_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    server = RedisServer(tmp_path / "redis")
    server.port = free_port()  # nothing there yet

    async def scenario() -> list[tuple[int, str]]:
        wrong = parse_store_url(server.url, "not-" + server.password)
        right = parse_store_url(server.url, server.password)
        seen = []
        for settings, start_it in ((right, True), (wrong, False), (right, False)):
            store, health = Store(settings), StoreHealth(settings, "on the fallbacks")
            probing = asyncio.ensure_future(keep_probing(store, health, interval=0.05))
            try:
                async with front_door(store=(store, health)) as (url, _):
                    await asyncio.sleep(0.3)
                    status, _, body = await call("GET", f"{url}/readyz")
                    seen.append((status, json.dumps(body)))
                    if start_it:
                        server.start()
            finally:
                probing.cancel()
                await store.close()
        return seen

    try:
        (unreachable, refused, ready) = asyncio.run(scenario())
    finally:
        server.stop()
    assert unreachable[0] == 503 and "has not answered yet" in unreachable[1]
    assert "unreachable" in unreachable[1]
    assert refused[0] == 503 and "refused the credentials" in refused[1]
    assert ready == (200, json.dumps({"status": "ok", "store": "ok"}))
    logged = caplog.text + "".join(s for _, s in (unreachable, refused, ready))
    assert server.password not in logged
