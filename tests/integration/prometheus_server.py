"""A real Prometheus for a test: Debian's ``prometheus`` (scripts/install-test-packages.sh), on
127.0.0.1 only, its data in a temporary directory, stopped (and its directory gone) at the end.
Missing, the test fails: it never skips."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from paitient_localcluster.host.processes import free_port, wait_http_ok


@dataclass(frozen=True)
class Prometheus:
    url: str
    log: Path

    def api(self, path: str, **query: str) -> Any:
        """``data`` of a GET on the HTTP API (``/api/v1/<path>``)."""
        suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{suffix}", timeout=10) as answer:
            body = json.load(answer)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector ``expr`` gives now: [{"metric": {...}, "value": [t, "v"]}]."""
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def alerts(self, name: str) -> list[dict[str, Any]]:
        """Active alerts (pending or firing) called ``name``."""
        return [a for a in self.api("alerts")["alerts"] if a["labels"]["alertname"] == name]


@contextlib.contextmanager
def running_prometheus(scrape_configs: list[dict[str, Any]], rule_files: list[Path],
                       interval: str = "1s") -> Iterator[Prometheus]:  # fmt: skip
    """Prometheus scraping ``scrape_configs`` and evaluating ``rule_files`` every ``interval``."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is missing: run `make setup` (scripts/install-test-packages.sh)")
    work = Path(tempfile.mkdtemp(prefix="paitient-prometheus-"))
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": scrape_configs,
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port, log = free_port(), work / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, f"--config.file={work / 'prometheus.yml'}",
             f"--storage.tsdb.path={work / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:

        def alive() -> None:
            if process.poll() is not None:
                raise AssertionError(f"prometheus exited: {log.read_text()[-2000:]}")

        assert wait_http_ok(f"http://127.0.0.1:{port}/-/ready", 30, alive=alive), log.read_text()
        yield Prometheus(f"http://127.0.0.1:{port}", log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        shutil.rmtree(work, ignore_errors=True)
