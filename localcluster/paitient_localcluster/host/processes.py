"""Start, watch and stop the control plane's processes, remembering them in pid files.

A pid file records the pid and the executable, so a pid reused by an unrelated program after a
reboot is never signalled: only processes this package started are stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ClusterError


@dataclass(frozen=True)
class Managed:
    """One process of the control plane and the files that describe it."""

    name: str
    run_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "logs" / f"{self.name}.log"

    def read_pid(self) -> int | None:
        """The pid if the recorded process still runs the recorded executable, else None."""
        try:
            record = json.loads(self.pid_file.read_text())
            pid, exe = int(record["pid"]), str(record["exe"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return pid if _runs(pid, exe) else None

    def start(
        self, argv: list[str], env: dict[str, str] | None = None, exe: str | None = None
    ) -> int:
        """Start ``argv`` in a session of its own. ``exe``: the program it ends up running when
        ``argv`` is a launcher that execs it (``linux.Enter``); the pid file records that one,
        once the launcher has become it."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            log.write(f"\n--- starting {' '.join(argv)}\n".encode())
            log.flush()
            # A session of its own: the cluster outlives `make cluster` and a Ctrl-C in the
            # terminal that started it.
            proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, close_fds=True, env=env,
            )  # fmt: skip
        program = os.path.realpath(exe or argv[0])
        if exe is not None:
            _wait_exec(proc, program)
        self.pid_file.write_text(json.dumps({"pid": proc.pid, "exe": program}))
        return proc.pid

    def stop(self, timeout: float = 15.0) -> bool:
        """SIGTERM, then SIGKILL after ``timeout``; True if a process was stopped."""
        pid = self.read_pid()
        stopped = False
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not _wait_gone(pid, timeout):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, 5)
            stopped = True
        self.pid_file.unlink(missing_ok=True)
        return stopped

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.strip().splitlines()[-lines:])

    def ensure_alive(self) -> None:
        """Raise with the tail of the log if the process has exited."""
        if self.read_pid() is None:
            raise ClusterError(
                f"{self.name} exited during start. Last lines of {self.log_file}:\n"
                f"{self.log_tail()}"
            )


def _wait_exec(proc: subprocess.Popen[bytes], program: str, timeout: float = 30.0) -> None:
    """Until the launcher ``proc`` has exec'd ``program`` (or exited: its log says why)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{proc.pid}/exe").removesuffix(" (deleted)") == program:
                return
        time.sleep(0.01)


def _runs(pid: int, exe: str) -> bool:
    try:
        actual = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    if actual.removesuffix(" (deleted)") != exe:
        return False
    # A zombie (exited, not yet reaped by its parent) is not running.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child
        if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
            return True
        time.sleep(0.1)
    return False


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def port_owner(port: int) -> str | None:
    """A description of whoever listens on 127.0.0.1:``port``, or None when it is free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            pass
        else:
            return None
    return _describe_listener(port) or "an unknown process"


def _describe_listener(port: int) -> str | None:
    """Find the listening process through /proc (no lsof/ss needed)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    inodes.add(fields[9])
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
                    return f"pid {proc.name} ({cmd.strip()})"
    return None


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def probe_context() -> ssl.SSLContext:
    """TLS for health probes as the kubelet does them: encrypted, not verified (the question
    is whether the server answers, not whom to trust)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def wait_http_ok(
    url: str,
    timeout: float,
    alive: Callable[[], None] | None = None,
    context: ssl.SSLContext | None = None,
) -> bool:
    """Poll ``url`` until it answers 200; ``alive`` raises if the server died meanwhile;
    ``context`` for an https URL. True when it answered, False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None:
            alive()
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False
