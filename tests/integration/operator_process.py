"""Run the real operator (``paitient-operator``) as a process for integration tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from paitient_localcluster.host.processes import free_port, wait_http_ok
from tests.integration.metrics_text import metric_sum, scrape

REPO = Path(__file__).resolve().parents[2]


class OperatorProcess:
    """``paitient-operator`` against a kubeconfig, logging to a file; always stopped by the
    fixture that starts it."""

    # Every one this test session started and has not stopped: only one operator may reconcile
    # the cluster at a time, so a test running an operator of its own pauses these.
    _running: ClassVar[list[OperatorProcess]] = []

    def __init__(self, kubeconfig: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.log = log
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.liveness_url = f"http://127.0.0.1:{free_port()}/healthz"
        self.metrics_address = f"127.0.0.1:{free_port()}"

    @classmethod
    def for_cluster(
        cls, kubeconfig: Path, log: Path, env: dict[str, str] | None = None
    ) -> OperatorProcess:
        """With the operator's own identity beside the admin ``kubeconfig`` when the cluster
        has one (the local cluster: its requests stand apart in the audit log)."""
        own = kubeconfig.parent / "operator.kubeconfig"
        return cls(own if own.is_file() else kubeconfig, log, env)

    def start(self) -> None:
        env = {**os.environ, **self.env, "KUBECONFIG": str(self.kubeconfig)}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "paitient_operator.main", "--liveness", self.liveness_url,
                 "--metrics-address", self.metrics_address],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )  # fmt: skip
        OperatorProcess._running.append(self)
        self.wait_started()

    def wait_started(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"operator exited {self.proc.returncode}:\n{self.tail()}")
            # kopf answers its liveness probe once start-up handlers have run.
            if wait_http_ok(self.liveness_url, 0.5):
                return
        raise RuntimeError(f"operator not live after {timeout} s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, as on a node failure."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._forget()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._forget()

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a metric's samples with these labels (0 when it has none yet)."""
        return metric_sum(scrape(f"http://{self.metrics_address}/metrics"), name, **labels)

    def reconciles(self, kind: str = "ModelDeployment") -> float:
        return self.metric("paitient_operator_reconciles_total", kind=kind)

    def _forget(self) -> None:
        if self in OperatorProcess._running:
            OperatorProcess._running.remove(self)

    @classmethod
    @contextlib.contextmanager
    def others_paused(cls) -> Iterator[None]:
        """Stop the operators this session runs (e.g. the session fixture's) and start them
        again afterwards, also when the body fails."""
        paused = list(cls._running)
        for proc in paused:
            proc.stop()
        try:
            yield
        finally:
            for proc in paused:
                proc.start()

    def tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""
