"""A real ``redis-server`` (Debian's) on 127.0.0.1 for tests: a free port, a password, an
optional TLS listener with a test CA, everything in a temporary directory; stopped by ``stop``.

A missing ``redis-server`` fails the test that needs it (``make setup`` installs it through
scripts/install-test-packages.sh): a store claim is never skipped into a pass.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from paitient_common.store.connection import Store
from paitient_common.store.keys import period_keys
from paitient_common.store.limits import read_usage
from paitient_common.store.settings import parse_store_url
from paitient_common.tiers import current_period
from paitient_localcluster.host.processes import free_port
from paitient_operator.certificates.x509 import issue, new_authority

INSTALL_HINT = "redis-server is not installed: run `make setup` (scripts/install-test-packages.sh)"


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        pytest.fail(INSTALL_HINT)
    return found


@dataclass
class RedisServer:
    """One ``redis-server`` process; ``url`` is what ``PAITIENT_STORE_URL`` takes."""

    directory: Path
    tls: bool = False
    # The names its certificate carries (a Service's name, say, for a store reached by relay).
    certificate_names: tuple[str, ...] = ("127.0.0.1", "localhost")
    password: str = field(default_factory=lambda: "pw-" + secrets.token_hex(12), repr=False)
    port: int = 0
    ca_file: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    def env(self) -> dict[str, str]:
        """The environment a component is given to use this store."""
        env = {"PAITIENT_STORE_URL": self.url, "PAITIENT_STORE_PASSWORD": self.password}
        if self.ca_file is not None:
            env["PAITIENT_STORE_CA_FILE"] = str(self.ca_file)
        return env

    def _arguments(self) -> list[str]:
        args = [
            redis_server_binary(), "--bind", "127.0.0.1", "--dir", str(self.directory),
            "--requirepass", self.password, "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--protected-mode", "yes", "--logfile", "",
        ]  # fmt: skip
        if not self.tls:
            return [*args, "--port", str(self.port)]
        return [
            *args, "--port", "0", "--tls-port", str(self.port),
            "--tls-cert-file", str(self.directory / "server.crt"),
            "--tls-key-file", str(self.directory / "server.key"),
            "--tls-ca-cert-file", str(self.ca_file), "--tls-auth-clients", "no",
        ]  # fmt: skip

    def _write_certificates(self) -> None:
        now = datetime.now(UTC)
        ca = new_authority("paitient test store CA", timedelta(days=1), now)
        leaf = issue(ca, list(self.certificate_names), timedelta(days=1), now)
        self.ca_file = self.directory / "ca.crt"
        self.ca_file.write_text(ca.cert_pem)
        (self.directory / "server.crt").write_text(leaf.cert_pem)
        key = self.directory / "server.key"
        key.write_text(leaf.key_pem)
        key.chmod(0o600)

    def start(self) -> RedisServer:
        """Start (again, on the same port after ``stop``) and wait until it accepts."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        if self.tls and self.ca_file is None:
            self._write_certificates()
        log = (self.directory / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            self._arguments(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        raise TimeoutError(f"redis-server did not listen on {self.port}: {self.log()[-2000:]}")

    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 10 s); the port stays this server's for ``start``."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def freeze(self) -> None:
        """SIGSTOP: connections stay open and nothing answers (a hung store)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


def stored_usage(server: RedisServer, tenant: str) -> int:
    """The tenant's usage this period, as the store holds it."""

    async def read() -> int:
        store = Store(parse_store_url(server.url, server.password))
        try:
            start = current_period(datetime.now(UTC))[2]
            return await read_usage(store, period_keys(tenant, start))
        finally:
            await store.close()

    return asyncio.run(read())
