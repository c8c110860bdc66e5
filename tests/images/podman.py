"""Run built images under rootful podman + runc the way a pod runs them, and clean up.

Storage, run state and configuration live in a directory of the test session's own (never
/var/lib/containers); every container uses the host network namespace and listens on
127.0.0.1 only, so podman creates no bridge and no firewall rule. ``pod_flags`` turns a
container the operator or the chart rendered into podman flags: its command, environment,
user, read-only root, dropped capabilities, no-new-privileges, memory-backed /tmp and /dev/shm.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The VM has no CAP_SYS_RESOURCE: podman's default rlimits cannot be raised, so set ones it has.
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
netns = "host"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
# Locks and exit files of our own: rootful podman otherwise shares /dev/shm/libpod_lock and
# /run/libpod with every other podman on the machine, whose lock numbers then collide.
lock_type = "file"
tmp_dir = "{home}/engine"
"""


@dataclass
class Container:
    """A started container; ``logs`` for a failure message."""

    podman: Podman
    name: str

    def logs(self, limit: int = 12000) -> str:
        done = self.podman.run("logs", self.name, check=False)
        return (done.stdout + done.stderr)[-limit:]

    def state(self) -> str:
        """How it ended (or that it runs), for failure messages."""
        fmt = "status={{.State.Status}} exit={{.State.ExitCode}} oom={{.State.OOMKilled}} {{.State.Error}}"
        return self.podman.run("inspect", "--format", fmt, self.name, check=False).stdout.strip()

    def host_pid(self) -> int:
        """The container's first process as this machine numbers it (0 once it has ended)."""
        done = self.podman.run("inspect", "--format", "{{.State.Pid}}", self.name)
        return int(done.stdout.strip() or 0)

    def running(self) -> bool:
        done = self.podman.run("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return done.stdout.strip() == "true"

    def exit_code(self) -> int | None:
        done = self.podman.run("inspect", "--format", "{{.State.ExitCode}}", self.name, check=False)
        return int(done.stdout.strip()) if not self.running() and done.stdout.strip() else None


@dataclass
class Podman:
    """podman with every path under ``home``; ``close`` removes all it made."""

    home: Path
    loaded: dict[str, str] = field(default_factory=dict)  # archive -> reference

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "containers.conf").write_text(CONTAINERS_CONF.format(home=self.home))
        (self.home / "registries.conf").write_text("unqualified-search-registries = []\n")
        (self.home / "storage.conf").write_text(
            f'[storage]\ndriver = "overlay"\ngraphroot = "{self.home / "root"}"\n'
            f'runroot = "{self.home / "run"}"\n'
        )

    def _env(self) -> dict[str, str]:
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "CONTAINERS_CONF": str(self.home / "containers.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(self.home / "registries.conf"),
            "CONTAINERS_STORAGE_CONF": str(self.home / "storage.conf"),
            "TMPDIR": str(self.home / "tmp"),
        }

    def run(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        (self.home / "tmp").mkdir(exist_ok=True)
        cmd = [
            "podman",
            "--root",
            str(self.home / "root"),
            "--runroot",
            str(self.home / "run"),
            *args,
        ]
        done = subprocess.run(cmd, env=self._env(), capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd[5:8])} … exited {done.returncode}: {done.stderr[-3000:]}"
            )
        return done

    def load(self, archive: str, reference: str) -> str:
        if archive not in self.loaded:
            out = self.run("load", "--input", archive).stdout
            assert f"Loaded image: {reference}" in out, out
            self.loaded[archive] = reference
        return reference

    def start(self, name: str, image: str, flags: list[str], args: list[str]) -> Container:
        self.run("run", "--detach", "--name", name, "--pull", "never", *flags, image, *args)
        return Container(self, name)

    def execute(
        self, image: str, flags: list[str], args: list[str]
    ) -> subprocess.CompletedProcess[str]:
        """Run to completion and return what it printed (the container is removed)."""
        return self.run("run", "--rm", "--pull", "never", *flags, image, *args, check=False)

    def remove(self, container: Container) -> None:
        self.run("rm", "--force", "--time", "10", container.name, check=False)

    def close(self) -> None:
        """Every container and image gone, storage unmounted, the directory removed."""
        if (self.home / "root").exists():
            self.run("rm", "--all", "--force", "--time", "5", check=False)
            self.run("rmi", "--all", "--force", check=False)
        # Whatever podman left mounted under our directory (nothing else), innermost first.
        for mount in sorted(_mounts_under(self.home), key=len, reverse=True):
            subprocess.run(["umount", "--lazy", mount], check=False)
        shutil.rmtree(self.home, ignore_errors=True)


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve())
    with open("/proc/self/mountinfo", encoding="utf-8") as info:
        points = [line.split()[4] for line in info]
    return [p for p in points if p == prefix or p.startswith(prefix + "/")]


def _memory_bytes(quantity: str) -> str:
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return str(int(float(quantity[: -len(suffix)]) * factor))
    return quantity


def pod_flags(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    host_paths: Mapping[str, str],
    *,
    env: Mapping[str, str] | None = None,
    pod_name: str = "image-test-pod",
) -> list[str]:
    """podman flags for ``container`` of the rendered ``pod`` spec. ``host_paths`` maps a
    volume name to the host directory standing in for it (PVCs, Secrets); memory-backed
    emptyDirs become tmpfs mounts, /dev/shm its size; other volumes must be mapped."""
    flags = ["--network", "host"]
    pod_sc = pod.get("securityContext", {})
    sc = {**pod_sc, **container.get("securityContext", {})}
    flags += ["--user", f"{sc['runAsUser']}:{sc['runAsGroup']}"]
    if sc.get("readOnlyRootFilesystem"):
        flags += ["--read-only", "--read-only-tmpfs=false"]
    if "ALL" in sc.get("capabilities", {}).get("drop", []):
        flags.append("--cap-drop=ALL")
    if sc.get("allowPrivilegeEscalation") is False:
        flags += ["--security-opt", "no-new-privileges"]
    assert sc.get("seccompProfile", {}).get("type") == "RuntimeDefault"  # podman's default
    limit = container.get("resources", {}).get("limits", {}).get("memory")
    if limit:
        flags += ["--memory", _memory_bytes(limit)]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        path = mount["mountPath"]
        empty = volume.get("emptyDir")
        if empty is not None and empty.get("medium") == "Memory":
            size = _memory_bytes(empty.get("sizeLimit", "64Mi"))
            if path == "/dev/shm":
                flags.append(f"--shm-size={size}")
            else:
                flags += ["--tmpfs", f"{path}:rw,size={size},mode=1777"]
        elif mount["name"] in host_paths:
            ro = ":ro" if mount.get("readOnly") else ""
            flags += ["--volume", f"{host_paths[mount['name']]}:{path}{ro}"]
        else:
            raise AssertionError(f"volume {mount['name']} ({path}) needs a host path")
    rendered: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            rendered[item["name"]] = item["value"]
        elif item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
            rendered[item["name"]] = pod_name
    for key, value in {**rendered, **(env or {})}.items():
        flags += ["--env", f"{key}={value}"]
    if container.get("command"):
        flags += ["--entrypoint", json.dumps(container["command"])]
    return flags
