"""The key directory: a snapshot from the API objects, and the keys file re-read when it
changes (pure parts; the watch-fed source is tested in test_kubernetes_source.py)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

from paitient_common.apikeys import generate_api_key, new_record, records_to_secret_data
from paitient_common.keycache.directory import Directory, FileKeySource, snapshot_from_objects

PEPPER = b"p" * 32


def tenant(name: str, ns: str | None = None, suspended: bool = False) -> dict[str, object]:
    return {
        "metadata": {"name": name},
        "spec": {"clientId": f"{name}-app", "tier": "free", "suspended": suspended},
        "status": {
            "namespace": ns or f"tenant-{name}",
            "usageLimit": 500,
            "currentUsage": 42,
            "periodStart": "2026-11-01T00:00:00Z",
        },
    }


def test_a_snapshot_from_api_objects() -> None:
    key = generate_api_key()
    record = new_record(key, PEPPER, "acme", "acme-app", datetime.now(UTC))
    snap = snapshot_from_objects(
        [{"data": records_to_secret_data([record])}],
        {"data": {"pepper": base64.b64encode(PEPPER).decode()}},
        [tenant("acme"), {"metadata": {"name": "broken"}, "spec": {}}],
        {"spec": {"access": {"allowedNamespaces": ["tenant-partner"]}}},
        {
            "data": {
                "tiny": json.dumps(
                    {
                        "tokenLimit": 10,
                        "requestsPerMinute": 1,
                        "tokensPerMinute": 10,
                        "maxDeployments": 0,
                        "maxGpus": 0,
                        "gpusAllowed": False,
                    }
                ),
                "bad": "{",
            }
        },
    )
    directory = Directory()
    directory.apply(snap)
    assert directory.loaded
    assert directory.allowed_namespaces == {"tenant-partner"}
    assert directory.usage["acme"].current_usage == 42
    assert directory.tier("tiny").requests_per_minute == 1
    assert directory.tier("unknown").requests_per_minute == 600  # standard
    verified = directory.keys.verify(f"Bearer {key.plaintext}", "acme-app")
    assert not hasattr(verified, "reason")


def test_a_keys_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    data = {"pepper": base64.b64encode(PEPPER).decode(), "records": [], "tenants": []}
    path.write_text(json.dumps(data))
    source, directory = FileKeySource(path), Directory()
    assert source.load_once(directory)
    assert not source.load_once(directory)  # unchanged
    data["tenants"] = [{"name": "acme", "clientId": "acme-app"}]
    path.write_text(json.dumps(data) + " ")
    assert source.load_once(directory)
    assert directory.keys.tenant("acme") is not None
    path.write_text("{half")  # a half-written file keeps the last good one
    assert not source.load_once(directory)
    assert directory.keys.tenant("acme") is not None
