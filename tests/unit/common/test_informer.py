"""The informer: resourceVersion ordering, what a relist keeps, backoff bounds, settings, the
watch-line parser, and its loop against a server scripted to answer 410, stall or stream."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from paitient_common.informer import (
    Informer,
    WatchSettings,
    compare_versions,
)
from paitient_common.kubeapi import KubeError
from paitient_common.kubeasync import AsyncKube, Query, WatchEvent, parse_watch_line
from tests.unit.common.scripted_api import ScriptedApi, Step

QUERY = Query("v1", "Secret", "ns")
FAST = WatchSettings(
    timeout_min=1, timeout_max=1, read_grace=0.5, backoff_base=0.01, backoff_cap=0.05
)


def obj(name: str, version: str, value: str = "") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": version}, "v": value}


def informer(changes: list[int] | None = None) -> Informer[str]:
    seen = changes if changes is not None else []
    return Informer(
        "things", AsyncKube(None), QUERY, lambda o: str(o.get("v", "")), lambda: seen.append(1)
    )


@pytest.mark.parametrize(
    ("a", "b", "order"),
    [("9", "10", -1), ("10", "10", 0), ("11", "10", 1), ("", "10", None), ("x1", "2", None),
     ("010", "9", None), ("0", "1", None)],
)  # fmt: skip
def test_resource_versions_compare_as_the_integers_the_server_hands_out(
    a: str, b: str, order: int | None
) -> None:
    assert compare_versions(a, b) == order


def test_a_read_through_never_rolls_the_cache_back() -> None:
    changes: list[int] = []
    cache = informer(changes)
    cache._put(obj("a", "20", "new"), authoritative=True)
    assert not cache.merge(obj("a", "19", "old"))
    assert not cache.merge(obj("a", "20", "same"))
    assert cache.get("ns/a") == "new" and changes == []
    assert cache.merge(obj("a", "21", "newer"), obj("b", "5", "b"))
    assert (cache.get("ns/a"), cache.get("ns/b"), changes) == ("newer", "b", [1])  # told once


def test_a_late_watch_event_is_ignored_but_an_unnumbered_one_wins() -> None:
    cache = informer()
    cache.merge(obj("a", "30", "read through"))
    assert not cache._apply(WatchEvent("MODIFIED", obj("a", "29", "late")))
    assert not cache._apply(WatchEvent("DELETED", obj("a", "29")))
    assert cache.get("ns/a") == "read through"
    assert cache._apply(WatchEvent("MODIFIED", obj("a", "opaque", "from the watch")))
    assert cache.get("ns/a") == "from the watch"
    assert cache._apply(WatchEvent("DELETED", obj("a", "31")))
    assert cache.get("ns/a") is None


def test_a_relist_keeps_only_what_was_read_through_after_the_list() -> None:
    cache = informer()
    cache.merge(obj("kept", "60"), obj("dropped", "40"), obj("both", "70", "read"))
    cache._replace([obj("both", "50", "listed"), obj("fresh", "45")], list_version="55")
    assert sorted(cache.entries) == ["ns/both", "ns/fresh", "ns/kept"]
    assert cache.get("ns/both") == "read"


def test_backoff_is_jittered_and_bounded() -> None:
    settings, rng = WatchSettings(backoff_base=0.2, backoff_cap=10.0), random.Random(7)
    delays = [settings.backoff(n, rng) for n in range(40)]
    assert all(0 <= d <= min(10.0, 0.2 * 2**n) for n, d in enumerate(delays))
    assert len({round(d, 6) for d in delays}) == len(delays)


def test_watch_lines() -> None:
    assert parse_watch_line(b"\n") is None
    event = parse_watch_line(b'{"type":"ADDED","object":{"metadata":{"name":"a"}}}\n')
    assert event == WatchEvent("ADDED", {"metadata": {"name": "a"}})
    with pytest.raises(KubeError) as gone:
        parse_watch_line(b'{"type":"ERROR","object":{"code":410,"reason":"Expired"}}')
    assert gone.value.status == 410
    with pytest.raises(ValueError):
        parse_watch_line(b'{"kind":"Status"}')


# -- the loop, against the scripted server -----------------------------------------------------


async def until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


def run_against(
    api: ScriptedApi,
    tmp: Path,
    body: Callable[[Informer[str]], Awaitable[None]],
    max_event_bytes: int | None = None,
) -> None:
    async def main() -> None:
        await api.start()
        kube = await AsyncKube.from_kubeconfig(str(api.kubeconfig(tmp)))
        if max_event_bytes is not None:
            kube.max_event_bytes = max_event_bytes
        cache = Informer("things", kube, QUERY, lambda o: str(o.get("data")), lambda: None, FAST)
        task = asyncio.create_task(cache.run())
        try:
            await body(cache)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await kube.close()
            await api.stop()

    asyncio.run(main())


def test_events_reach_the_cache_and_a_watch_the_server_ends_resumes_without_a_list(
    tmp_path: Path,
) -> None:
    api = ScriptedApi()
    api.put("a", {"k": "1"})
    later = {"type": "MODIFIED", "object": api.next_version("a", {"k": "2"})}
    api.version -= 1  # the list is taken before that write
    api.steps.append(Step("events", [later]))

    async def body(cache: Informer[str]) -> None:
        await until(lambda: cache.get("ns/a") == "{'k': '2'}", "the event")
        await until(lambda: len(api.requests) >= 3, "a second watch")
        assert api.requests[:3] == ["list", "watch from 101", "watch from 102"]
        assert cache.restarts == {}

    run_against(api, tmp_path, body)


def test_410_gone_lists_again_at_once(tmp_path: Path) -> None:
    api = ScriptedApi()
    api.put("a")
    api.steps.append(Step("gone"))

    async def body(cache: Informer[str]) -> None:
        await until(lambda: api.requests.count("list") == 2, "a second list")
        assert cache.restarts == {"gone": 1}

    run_against(api, tmp_path, body)


def test_a_stalled_watch_is_restarted_and_counted(tmp_path: Path) -> None:
    api = ScriptedApi()
    api.put("a")
    api.steps.append(Step("stall"))

    async def body(cache: Informer[str]) -> None:
        await until(lambda: cache.restarts["stalled"] == 1, "the stall noticed")
        await until(lambda: api.requests.count("list") == 2, "a list after the stall")
        assert cache.age() is not None and not cache.stale()

    run_against(api, tmp_path, body)


def test_a_watch_that_ends_at_once_empty_is_met_with_backoff(tmp_path: Path) -> None:
    api = ScriptedApi()
    api.put("a")
    api.steps.extend([Step("events"), Step("events")])

    async def body(cache: Informer[str]) -> None:
        await until(lambda: cache.restarts["short"] == 2, "two short watches")

    run_against(api, tmp_path, body)


def test_an_unreachable_server_keeps_the_cache_and_it_goes_stale(tmp_path: Path) -> None:
    api = ScriptedApi()
    api.put("a", {"k": "1"})

    async def body(cache: Informer[str]) -> None:
        await until(lambda: cache.synced, "the first list")
        assert api.runner is not None
        await api.runner.cleanup()  # the server goes away for good
        api.runner = None
        await until(lambda: cache.restarts["disconnected"] >= 2, "failed reconnects")
        assert cache.get("ns/a") == "{'k': '1'}"  # what was known stays
        cache.settings = WatchSettings(stale_after=0.0)
        assert cache.stale()

    run_against(api, tmp_path, body)


def test_an_event_of_megabytes_arrives_without_a_restart(tmp_path: Path) -> None:
    api = ScriptedApi()
    api.put("a")
    big = {"type": "MODIFIED", "object": api.next_version("a", {"k": "x" * 1_400_000})}
    api.version -= 1
    api.steps.append(Step("events", [big]))

    async def body(cache: Informer[str]) -> None:
        await until(lambda: len(cache.get("ns/a") or "") > 1_400_000, "the large event")
        assert cache.restarts == {}

    run_against(api, tmp_path, body)


def test_a_line_past_the_event_bound_restarts_the_watch_counted_as_oversize(
    tmp_path: Path,
) -> None:
    api = ScriptedApi()
    api.put("a", {"k": "listed"})
    big = {"type": "MODIFIED", "object": api.next_version("a", {"k": "x" * 5000})}
    api.version -= 1
    api.steps.append(Step("events", [big]))

    async def body(cache: Informer[str]) -> None:
        await until(lambda: cache.restarts["oversize"] == 1, "the oversize line refused")
        await until(lambda: api.requests.count("list") == 2, "a list after it")
        assert cache.get("ns/a") == "{'k': 'listed'}"

    run_against(api, tmp_path, body, max_event_bytes=4096)
