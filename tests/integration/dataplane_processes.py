"""The local data plane's processes behind one ModelDeployment, found from its own log and
/proc: the gateway of each pod and the model's vLLM stand-in, so a test can make the model fail
the way a real one does (``configure_standin``), or end a process (this session started them
all: the data plane is the session's own fixture)."""

from __future__ import annotations

import os
import re
import signal
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tests.integration.waiting import wait_for


@dataclass(frozen=True)
class ModelProcesses:
    gateway_url: str
    standin_url: str

    @property
    def gateway_pid(self) -> int:
        return _listening(urlsplit(self.gateway_url).port or 0, "paitient_gateway")

    @property
    def standin_pid(self) -> int:
        return _listening(urlsplit(self.standin_url).port or 0, "tests.standins.vllm_standin")

    def kill_gateway(self) -> None:
        os.kill(self.gateway_pid, signal.SIGKILL)

    def kill_standin(self) -> None:
        os.kill(self.standin_pid, signal.SIGKILL)


def model_processes(routes: Path, key: str, timeout: float = 30) -> ModelProcesses:
    """The last gateway the data plane (whose log sits beside its ``routes`` file) started for
    ``namespace/name``, and that model's stand-in."""
    log = routes.parent / "dataplane.log"
    line = re.compile(
        rf"\[dataplane\] {re.escape(key)}: \S+'s gateway (https?://\S+) as .* -> (http://\S+)$"
    )

    def last() -> ModelProcesses | None:
        found = [m for m in map(line.search, log.read_text(errors="replace").splitlines()) if m]
        return ModelProcesses(found[-1].group(1), found[-1].group(2)) if found else None

    return wait_for(last, timeout=timeout, what=f"the data plane's processes of {key}")


def _listening(port: int, module: str) -> int:
    """The pid of the process running ``module`` with ``--port <port>`` on its command line."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv]
        if module in args and "--port" in args and args[args.index("--port") + 1] == str(port):
            return int(entry.name)
    raise LookupError(f"no {module} process on port {port}")
