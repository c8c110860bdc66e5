"""Reading through without a flood: shared fresh reads, spacing, failures, the negative cache,
and the key read-through's API reads under a flood of unknown keys (scripted API server)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from collections.abc import Awaitable, Callable
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
from paitient_common.keycache.kubernetes_source import READ_THROUGH_BUDGET, KeyReadThrough
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


class HeldReads:
    """A fetch that waits, read by read, until the test lets it finish (no sleeping)."""

    def __init__(self) -> None:
        self.begun: list[asyncio.Event] = []
        self.release: list[asyncio.Event] = []

    async def __call__(self) -> None:
        begun, release = asyncio.Event(), asyncio.Event()
        self.begun.append(begun)
        self.release.append(release)
        begun.set()
        await release.wait()


async def _until(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not check():
            await asyncio.sleep(0)


def test_a_read_that_began_before_the_call_is_not_enough() -> None:
    """A caller that asks while a read is under way is answered only by a read begun after it
    asked: the first read's end does not release it."""

    async def main() -> list[str]:
        reader, reads, seen = FreshReader(min_interval=0.0), HeldReads(), []
        first = asyncio.create_task(reader.read("t", reads))
        await _until(lambda: len(reads.begun) == 1)  # the first read is under way
        second = asyncio.create_task(reader.read("t", reads))
        for _ in range(50):  # turns of the loop in which the second caller could go wrong
            await asyncio.sleep(0)
        seen.append(f"reads begun before the first ended: {len(reads.begun)}")
        reads.release[0].set()
        await first
        await _until(lambda: second.done() or len(reads.begun) == 2)
        seen.append(f"second done after the first read: {second.done()}")
        reads.release[1].set()
        await second
        seen.append(f"reads: {len(reads.begun)}")
        return seen

    assert asyncio.run(main()) == [
        "reads begun before the first ended: 1",  # one read at a time per target
        "second done after the first read: False",
        "reads: 2",
    ]


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

    reads, _, outcomes = asyncio.run(main())
    # All of a wave's 40 (or 41) requests share one read, which begins after every one of them
    # asked; the next wave's read waits for the spacing: one read per wave, whatever the timing.
    assert reads == 10
    assert outcomes[5:] == [True] * 5  # the real key, from its first request on


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


# -- the read-through's bounds (docs/caches.md) --------------------------------------------------


def _read_through(
    api: ScriptedApi, tmp_path: Path, tenants: list[TenantInfo], **kwargs: object
) -> Callable[[], Awaitable[tuple[AsyncKube, Directory, KeyReadThrough]]]:
    """A key read-through against the scripted API server, its directory knowing ``tenants``."""

    async def make() -> tuple[AsyncKube, Directory, KeyReadThrough]:
        await api.start()
        kube = await AsyncKube.from_kubeconfig(str(api.kubeconfig(tmp_path)))
        directory = Directory()
        keys = Informer("keys", kube, Query("v1", "Secret", "ns"), parse_key_secret, lambda: None)
        known: Informer[str] = Informer(
            "tenants", kube, Query("v1", "Secret", "x"), str, lambda: None
        )
        directory.apply(Snapshot(PEPPER, [], tenants))
        resolver = KeyReadThrough(kube, "ns", {"keys": keys, "tenants": known}, directory, **kwargs)  # type: ignore[arg-type]
        directory.resolver = resolver
        return kube, directory, resolver

    return make


def _tenant(n: int) -> TenantInfo:
    return TenantInfo(f"t{n}", f"t{n}-app", f"tenant-t{n}", "standard")


def test_at_most_four_reads_are_in_flight_at_once(tmp_path: Path) -> None:
    """Ten tenants' unknown keys at once against a slow API server: four GETs, the others wait
    their turn, then all ten are read (the product's default reader)."""
    api, tenants = ScriptedApi(), [_tenant(n) for n in range(10)]
    for t in tenants:
        api.put(keys_secret_name(t.name))["metadata"]["labels"] = {KEYS_LABEL: "true"}

    async def main() -> tuple[int, int, int, int]:
        api.gate = asyncio.Event()
        kube, directory, _ = await _read_through(api, tmp_path, tenants)()
        try:
            asking = [
                asyncio.ensure_future(
                    directory.verify(f"Bearer {generate_api_key().plaintext}", t.client_id)
                )
                for t in tenants
            ]
            await _until(lambda: api.in_flight >= 4)
            await asyncio.sleep(0.3)  # room for a fifth, were it allowed
            held = api.in_flight
            api.gate.set()
            results = await asyncio.gather(*asking)
            assert all(getattr(r, "reason", None) == "unknown_key" for r in results)
            gets = sum(r.startswith("get ") for r in api.requests)
            return held, api.most_in_flight, gets, len(results)
        finally:
            await kube.close()
            await api.stop()

    assert asyncio.run(main()) == (4, 4, 10, 10)


def test_an_unknown_key_is_refused_from_memory_for_5s_and_an_unknown_client_for_1s(
    tmp_path: Path,
) -> None:
    api, now = ScriptedApi(), [100.0]
    api.put(keys_secret_name("t0"))["metadata"]["labels"] = {KEYS_LABEL: "true"}
    unknown_key, other_key = generate_api_key().plaintext, generate_api_key().plaintext

    async def main() -> list[tuple[float, int, int]]:
        make = _read_through(
            api, tmp_path, [_tenant(0)], reader=FreshReader(min_interval=0.0),
            clock=lambda: now[0],
        )  # fmt: skip
        kube, directory, _ = await make()
        seen = []
        try:
            for at in (100.0, 100.9, 101.1, 104.9, 105.05, 105.95):
                now[0] = at
                await directory.verify(f"Bearer {unknown_key}", "t0-app")  # a known client ID
                await directory.verify(f"Bearer {other_key}", "nobody-app")  # no Tenant has it
                gets = sum(r.startswith("get ") for r in api.requests)
                seen.append((at, gets, api.requests.count("list tenants")))
            return seen
        finally:
            await kube.close()
            await api.stop()

    # (when, GETs of the key Secret, LISTs of Tenants) after each pair of requests
    assert asyncio.run(main()) == [
        (100.0, 1, 1),  # each read once
        (100.9, 1, 1),  # both refused from memory
        (101.1, 1, 2),  # the client ID's 1 s are over: listed again
        (104.9, 1, 3),  # the key id's 5 s are not; the client ID's 1 s from 101.1 are
        (105.05, 2, 3),  # the key id's are: read again; the client ID's from 104.9 run on
        (105.95, 2, 4),
    ]


def test_a_read_through_the_api_does_not_answer_is_cut_off_at_3s_as_a_refusal(
    tmp_path: Path,
) -> None:
    api = ScriptedApi()
    api.put(keys_secret_name("t0"))["metadata"]["labels"] = {KEYS_LABEL: "true"}

    async def main() -> tuple[str | None, float, int]:
        api.gate = asyncio.Event()  # never opened: the GET hangs
        kube, directory, resolver = await _read_through(api, tmp_path, [_tenant(0)])()
        try:
            started = time.monotonic()
            result = await asyncio.wait_for(
                directory.verify(f"Bearer {generate_api_key().plaintext}", "t0-app"), 10
            )
            waited = time.monotonic() - started
            return getattr(result, "reason", None), waited, resolver.outcomes["api", "failed"]
        finally:
            await kube.close()
            await api.stop()

    reason, waited, failed = asyncio.run(main())
    # The same refusal as any unknown key (both components answer it with 401), counted failed,
    # and only once the 3 s were spent (a lower bound: the loop's timers never fire early).
    assert (reason, failed) == ("unknown_key", 1)
    assert READ_THROUGH_BUDGET == 3.0  # docs/caches.md's bound, spent below
    assert waited >= READ_THROUGH_BUDGET - 0.01
