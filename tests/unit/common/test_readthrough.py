"""Reading through without a flood: shared fresh reads, spacing, failures, the negative cache,
and the key read-through's API reads under a flood of unknown keys (scripted API server)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from paitient_common.apikeys import (
    generate_api_key,
    new_record,
    records_to_secret_data,
)
from paitient_common.informer import Informer
from paitient_common.keycache.directory import Directory, Snapshot, TenantInfo, parse_key_secret
from paitient_common.keycache.kubernetes_source import KeyReadThrough
from paitient_common.kubeasync import AsyncKube, Query
from paitient_common.readthrough import FreshReader, NegativeCache
from paitient_common.secrets import KEYS_LABEL, keys_secret_name
from tests.unit.common.scripted_api import ScriptedApi

PEPPER = b"p" * 32


class Reads:
    """A fetch that records when each read began, taking ``seconds``."""

    def __init__(self, seconds: float = 0.05, fail: bool = False) -> None:
        self.started: list[float] = []
        self.seconds, self.fail = seconds, fail

    async def __call__(self) -> None:
        self.started.append(time.monotonic())
        await asyncio.sleep(self.seconds)
        if self.fail:
            raise RuntimeError("the API said no")


def test_callers_at_once_share_one_read() -> None:
    async def main() -> int:
        reader, reads = FreshReader(min_interval=0.1), Reads()
        await asyncio.gather(*(reader.read("t", reads) for _ in range(50)))
        return len(reads.started)

    assert asyncio.run(main()) == 1


def test_a_read_that_began_before_the_call_is_not_enough() -> None:
    async def main() -> tuple[int, float]:
        reader, reads = FreshReader(min_interval=0.1), Reads(seconds=0.2)
        first = asyncio.create_task(reader.read("t", reads))
        await asyncio.sleep(0.05)  # the first read is under way
        asked = time.monotonic()
        await reader.read("t", reads)
        await first
        return len(reads.started), reads.started[-1] - asked

    count, second_began_after_asking = asyncio.run(main())
    assert count == 2 and second_began_after_asking >= 0


def test_reads_of_one_target_are_spaced_and_others_are_not_held_up() -> None:
    async def main() -> tuple[list[float], int]:
        reader, reads, other = FreshReader(min_interval=0.2), Reads(0.0), Reads(0.0)
        for _ in range(3):
            await reader.read("t", reads)
        await reader.read("u", other)
        return reads.started, len(other.started)

    started, others = asyncio.run(main())
    # The event loop may wake a timer up to its clock resolution early: 10 ms of slack.
    assert [b - a >= 0.19 for a, b in itertools.pairwise(started)] == [True, True]
    assert others == 1


def test_a_failed_read_fails_everyone_who_shared_it_and_the_next_call_reads_again() -> None:
    async def main() -> tuple[list[BaseException | None], int]:
        reader, failing = FreshReader(min_interval=0.0), Reads(fail=True)
        results = await asyncio.gather(
            *(reader.read("t", failing) for _ in range(3)), return_exceptions=True
        )
        await reader.read("t", Reads())
        return [r if isinstance(r, BaseException) else None for r in results], len(failing.started)

    errors, attempts = asyncio.run(main())
    assert attempts == 1 and all(isinstance(e, RuntimeError) for e in errors)


def test_the_negative_cache_forgets_after_its_ttl_and_holds_a_bounded_number() -> None:
    now = [0.0]
    cache = NegativeCache(ttl=5.0, size=3, clock=lambda: now[0])
    cache.add("a")
    assert "a" in cache
    now[0] = 5.1
    assert "a" not in cache
    for name in "bcde":
        cache.add(name)
    assert "b" not in cache and all(n in cache for n in "cde")
    cache.discard("c")
    assert "c" not in cache


# -- the key read-through under a flood ------------------------------------------------------


def test_a_flood_of_unknown_keys_costs_a_bounded_number_of_api_reads(tmp_path: Path) -> None:
    """Hundreds of requests with random key ids for one real client ID: the tenant's key Secret
    is read at most once per ``min_interval`` (plus one), and the one real key created meanwhile
    is found on its first request."""
    api = ScriptedApi()
    secret_name = keys_secret_name("acme")
    api.put(secret_name)["metadata"]["labels"] = {KEYS_LABEL: "true"}
    real = generate_api_key()
    record = new_record(real, PEPPER, "acme", "acme-app", datetime.now(UTC))

    async def main() -> tuple[int, float, list[bool]]:
        await api.start()
        kube = await AsyncKube.from_kubeconfig(str(api.kubeconfig(tmp_path)))
        directory = Directory()

        def publish() -> None:
            records = [r for rs in keys.values() for r in rs]
            tenant = TenantInfo("acme", "acme-app", "tenant-acme", "standard")
            directory.apply(Snapshot(PEPPER, records, [tenant]))

        keys = Informer("keys", kube, Query("v1", "Secret", "ns"), parse_key_secret, publish)
        tenants: Informer[str] = Informer("tenants", kube, Query("v1", "Secret", "x"), str, publish)
        publish()
        reader = FreshReader(min_interval=0.1)
        resolver = KeyReadThrough(kube, "ns", {"keys": keys, "tenants": tenants}, directory, reader)
        directory.resolver = resolver
        started = time.monotonic()
        outcomes = []
        for wave in range(10):
            if wave == 5:  # the real key is written while the flood goes on
                obj = api.put(secret_name, records_to_secret_data([record]))
                obj["metadata"]["labels"] = {KEYS_LABEL: "true"}
            floods = [
                directory.verify(f"Bearer {generate_api_key().plaintext}", "acme-app")
                for _ in range(40)
            ]
            if wave >= 5:
                floods.append(directory.verify(f"Bearer {real.plaintext}", "acme-app"))
            results = await asyncio.gather(*floods)
            outcomes.append(not hasattr(results[-1], "reason") if wave >= 5 else False)
        elapsed = time.monotonic() - started
        await kube.close()
        await api.stop()
        return sum(r.startswith("get ") for r in api.requests), elapsed, outcomes

    reads, elapsed, outcomes = asyncio.run(main())
    assert reads <= 2 + elapsed / 0.1, (reads, elapsed)
    assert outcomes[5:] == [True] * 5  # the real key, from its first request on
    assert reads < 400 / 10  # far fewer reads than requests


def test_a_malformed_key_is_never_read_through() -> None:
    class Refuses:
        async def resolve(self, key_id: str, client_id: str) -> bool:
            raise AssertionError("must not be asked")

    directory = Directory()
    directory.apply(Snapshot(base64.b64decode(base64.b64encode(PEPPER)), [], []))
    directory.resolver = Refuses()
    for header, client in (("Bearer psk_short", "acme-app"), ("Bearer x", "bad client id!")):
        result = asyncio.run(directory.verify(header, client))
        assert getattr(result, "reason", None) == "malformed"


@pytest.mark.parametrize("client_id", [None, ""])
def test_no_client_id_is_not_read_through(client_id: str | None) -> None:
    directory = Directory()
    directory.apply(Snapshot(PEPPER, [], []))
    result = asyncio.run(directory.verify(f"Bearer {generate_api_key().plaintext}", client_id))
    assert getattr(result, "reason", None) == "missing"
