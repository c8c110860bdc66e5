"""The local data plane's routes file as the front door and the autoscaler read it: re-read when
replaced, nothing while absent or torn, and each replica's URL by its pod's name."""

from __future__ import annotations

import json
from pathlib import Path

from paitient_common.routes_file import RoutesFile, pod_urls


def write(path: Path, table: object) -> None:
    """As the data plane does: a whole new file put in place."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(table))
    tmp.replace(path)


def test_the_table_follows_the_file(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    routes = RoutesFile(path)
    assert routes.table() is None  # not written yet
    write(path, {"ns/a": {"url": "https://127.0.0.1:1"}})
    assert routes.table() == {"ns/a": {"url": "https://127.0.0.1:1"}}
    write(path, {"ns/b": {"url": "https://127.0.0.1:2"}})
    assert routes.table() == {"ns/b": {"url": "https://127.0.0.1:2"}}
    path.write_text("{torn")
    assert routes.table() is None


def test_pod_urls_by_name_skipping_what_names_no_pod() -> None:
    entry = {
        "url": "https://127.0.0.1:1",
        "replicas": [
            {"url": "https://127.0.0.1:1/", "pod": "m-0"},
            {"url": "https://127.0.0.1:2"},
            {"pod": "m-2"},
            "nonsense",
        ],
    }
    assert pod_urls(entry) == {"m-0": "https://127.0.0.1:1"}
    assert pod_urls(None) == {} and pod_urls({"replicas": None}) == {}
