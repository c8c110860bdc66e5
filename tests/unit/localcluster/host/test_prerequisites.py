"""Whether a machine can run the local cluster: every missing requirement is named, none on a
machine that has them all."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

from paitient_localcluster.host.prerequisites import (
    HostFacts,
    mounted_controllers,
    parse_filesystems,
    problems,
    read_facts,
    report,
)
from paitient_localcluster.upstream.versions import REPO_ROOT

CAPABLE = HostFacts(
    euid=0,
    machine="x86_64",
    programs=frozenset({"apt-get", "dpkg", "python3"}),
    namespaces=frozenset({"net", "mnt", "cgroup", "pid", "ipc", "uts", "user", "time"}),
    filesystems=frozenset({"overlay", "tmpfs", "ext4", "cgroup2"}),
    controllers=frozenset({"cpu", "cpuacct", "memory", "pids", "cpuset"}),
)

HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


def test_a_capable_machine_has_no_problems() -> None:
    assert problems(CAPABLE) == []


def test_each_missing_requirement_is_named() -> None:
    cases = {
        "not root": dataclasses.replace(CAPABLE, euid=1000),
        "aarch64": dataclasses.replace(CAPABLE, machine="aarch64"),
        "no apt-get/dpkg": dataclasses.replace(CAPABLE, programs=frozenset({"python3"})),
        "lacks cgroup, pid namespaces": dataclasses.replace(
            CAPABLE, namespaces=frozenset({"net", "mnt", "ipc", "uts"})
        ),
        "no memory, pids cgroup controller": dataclasses.replace(
            CAPABLE, controllers=frozenset({"cpu"})
        ),
        "no overlay filesystem": dataclasses.replace(CAPABLE, filesystems=frozenset({"tmpfs"})),
    }
    for expected, facts in cases.items():
        found = problems(facts)
        assert len(found) == 1 and expected in found[0], (expected, found)


def test_every_problem_of_a_bare_machine_is_reported_at_once() -> None:
    bare = HostFacts(1000, "aarch64", frozenset(), frozenset(), frozenset(), frozenset())
    found = problems(bare)
    assert len(found) == 6
    message = report(found)
    assert message.count("\n  - ") == 6 and "root on Debian/Ubuntu" in message


def test_cgroup_controllers_come_from_v1_options_and_the_cgroup2_list() -> None:
    unified = Path("/sys/fs/cgroup/unified/cgroup.controllers")
    found = mounted_controllers(HYBRID_MOUNTINFO, {unified: "hugetlb pids\n"})
    assert found == {"cpu", "memory", "hugetlb", "pids"}  # name=systemd is no controller
    assert mounted_controllers(HYBRID_MOUNTINFO, {}) == {"cpu", "memory"}


def test_filesystems_are_read_with_and_without_nodev() -> None:
    text = "nodev\tsysfs\nnodev\toverlay\n\text4\n"
    assert parse_filesystems(text) == {"sysfs", "overlay", "ext4"}


def test_this_machine_is_read_and_the_module_runs_without_the_virtualenv() -> None:
    facts = read_facts()
    assert facts.euid == os.geteuid() and "net" in facts.namespaces
    # `make prerequisites` runs it with the system Python before .venv exists: stdlib only.
    done = subprocess.run(
        [sys.executable, "-S", "-m", "paitient_localcluster.host.prerequisites"],
        env={"PYTHONPATH": str(REPO_ROOT / "localcluster"), "PATH": os.environ["PATH"]},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if problems(facts):
        assert done.returncode == 1 and "cannot run the local cluster" in done.stderr
    else:
        assert done.returncode == 0 and done.stderr == ""
