"""Bad store settings get a clear error and never leak the password: a malformed URL stops the
component at start with a message naming the variable; an unreachable store keeps it not ready
until the store answers; a wrong password says so, and the password is in no byte it wrote."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from paitient_localcluster.host.processes import free_port
from tests.standins.processes import ROOT, Proc, start_gateway, start_standin
from tests.store.gateways import write_tenant
from tests.storeserver import RedisServer


def _gateway(tmp_path: Path, keys: Path, standin_url: str, env: dict[str, str]) -> Proc:
    return start_gateway(
        tmp_path, keys, tmp_path / "ledger", standin_url,
        {"PAITIENT_STORE_HEARTBEAT_SECONDS": "0.2", **env}, wait_ready=False,
    )  # fmt: skip


def _ready(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"{url}/healthz/ready", timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""  # not listening yet


def _answered(gateway: Proc) -> tuple[int, str] | None:
    assert gateway.popen.poll() is None, gateway.output()[-2000:]
    answer = _ready(gateway.url)
    return answer if answer[0] else None


def _wait(predicate, timeout: float = 20):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://127.0.0.1:6379/0", "must start with redis:// or rediss://"),
        ("redis://127.0.0.1:notaport/0", "is not a valid URL"),
        ("redis://:hunter2secret@127.0.0.1:6379/0", "carries a password"),
        ("redis://127.0.0.1:6379/99", "database must be a number from 0 to 15"),
        ("redis:///0", "names no valid host"),
    ],
)
@pytest.mark.parametrize("component", ["paitient_gateway", "paitient_api.main"])
def test_a_malformed_url_stops_the_component_with_a_clear_message(
    tmp_path: Path, component: str, url: str, said: str
) -> None:
    env = {**os.environ, "PAITIENT_STORE_URL": url, "PAITIENT_STORE_PASSWORD": "hunter2secret"}
    args = [sys.executable, "-m", component]
    if component == "paitient_gateway":
        args += ["--keys-file", str(tmp_path / "none.json"), "--insecure-plaintext"]
    else:
        args += ["--kubeconfig", str(tmp_path / "none.kubeconfig"), "--port", str(free_port())]
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, timeout=60)
    output = (done.stdout + done.stderr).decode()
    assert done.returncode != 0
    assert said in output and "PAITIENT_STORE_URL" in output
    assert "hunter2secret" not in output
    assert "Traceback" not in output


def test_an_unreachable_store_keeps_the_gateway_not_ready_until_it_answers(
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path / "redis")
    server.port = free_port()  # nothing listens there yet
    keys = tmp_path / "keys.json"
    write_tenant(keys, tokens_per_minute=1000, usage_limit=None)
    standin = start_standin(tmp_path)
    gateway = _gateway(tmp_path, keys, standin.url, server.env())
    try:
        status, body = _wait(lambda: _answered(gateway))
        assert status == 503 and "the shared store has not answered yet" in body
        assert "unreachable" in body
        time.sleep(1)
        assert _ready(gateway.url)[0] == 503  # still: no guessing at the limits
        server.start()
        _wait(lambda: _ready(gateway.url)[0] == 200)
    finally:
        gateway.stop()
        standin.stop()
        server.stop()
    log = gateway.output()
    assert "not ready until it answers" in log and "connected" in log
    assert server.password not in log


def test_a_wrong_password_says_so_and_is_never_written(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    keys = tmp_path / "keys.json"
    write_tenant(keys, tokens_per_minute=1000, usage_limit=None)
    standin = start_standin(tmp_path)
    wrong = "wrong-" + redis_server.password[::-1]
    env = {**redis_server.env(), "PAITIENT_STORE_PASSWORD": wrong}
    gateway = _gateway(tmp_path, keys, standin.url, env)
    try:
        _wait(lambda: "refused the credentials" in (_answered(gateway) or (0, ""))[1])
        status, body = _ready(gateway.url)
    finally:
        gateway.stop()
        standin.stop()
    log = gateway.output()
    assert status == 503 and "check PAITIENT_STORE_PASSWORD" in body
    assert "the store refused the credentials: check PAITIENT_STORE_PASSWORD" in log
    for secret in (wrong, redis_server.password):
        assert secret not in log and secret not in body
