"""A Secret of 1 MiB, the most the API server takes, watched through the informer on the real
local cluster: its events (~1.4 MiB lines, past aiohttp's 512 KiB readline limit) arrive, and
the watch is never restarted."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from paitient_common.cache_metrics import CacheCollector
from paitient_common.informer import Informer, WatchSettings
from paitient_common.kubeapi import Kube, Obj
from paitient_common.kubeasync import AsyncKube, Query

MIB = 1024 * 1024
LABEL = "paitient.test/large"


def digest(obj: Obj) -> str:
    """What the cache keeps of the Secret: a hash of its data, so a test can tell versions apart."""
    return hashlib.sha256(json.dumps(obj.get("data") or {}, sort_keys=True).encode()).hexdigest()


def secret_data() -> dict[str, str]:
    """1 MiB of data, as full as a Secret may be: four entries of 256 KiB, random (no two
    versions alike, and nothing for a compression to shrink)."""
    return {f"part{i}": base64.b64encode(os.urandom(MIB // 4)).decode() for i in range(4)}


def restart_samples(informer: Informer[Any]) -> list[Any]:
    (restarts,) = [
        m for m in CacheCollector(lambda: [informer]).collect() if m.name.endswith("restarts")
    ]
    return list(restarts.samples)


def test_a_one_mib_secret_reaches_the_informer_by_watch_without_a_restart(
    kubeconfig: Path, kube: Kube, namespace: str
) -> None:
    async def main() -> None:
        transport = await AsyncKube.from_kubeconfig(str(kubeconfig))
        query = Query("v1", "Secret", namespace, label_selector=f"{LABEL}=true")
        # Short watches, so the test also sees one end and resume after the large events.
        settings = WatchSettings(timeout_min=3, timeout_max=3, read_grace=2)
        cache = Informer("large", transport, query, digest, lambda: None, settings)
        task = asyncio.create_task(cache.run())
        try:
            await asyncio.wait_for(cache.wait_synced(), 30)
            assert cache.values() == []  # listed before the Secret exists: only a watch brings it
            body = {
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": "large", "namespace": namespace, "labels": {LABEL: "true"}},
                "data": secret_data(),
            }  # fmt: skip
            created = await asyncio.to_thread(kube.create, body)
            await until(lambda: cache.get(f"{namespace}/large") == digest(created), "ADDED")
            line = json.dumps({"type": "ADDED", "object": created})
            assert len(line) > 1.3 * MIB  # a watch line past aiohttp's 512 KiB readline limit

            patch = {"data": secret_data()}
            modified = await asyncio.to_thread(
                kube.patch, "v1", "Secret", "large", patch, namespace=namespace
            )
            await until(lambda: cache.get(f"{namespace}/large") == digest(modified), "MODIFIED")
            # Past the watch's timeoutSeconds: the server ended it, the informer resumed from
            # the large event's version, and the deletion (the whole object again) arrives.
            await asyncio.sleep(settings.timeout_max + 1)
            await asyncio.to_thread(kube.delete, "v1", "Secret", "large", namespace=namespace)
            await until(lambda: cache.get(f"{namespace}/large") is None, "DELETED")
            assert cache.restarts == {} and restart_samples(cache) == []
            assert cache.age() is not None and not cache.stale()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await transport.close()

    asyncio.run(main())


async def until(check: Any, what: str, timeout: float = 30.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for the {what} event") from None
