"""Cgroup hierarchies and a process's place in them, read from /proc."""

from __future__ import annotations

from pathlib import Path

from paitient_localcluster.host.cgroups import Hierarchy, parse_mountinfo, parse_proc_cgroup

MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


PROC_CGROUP = "9:name=systemd:/\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n"


def test_cgroup_hierarchies_and_a_processs_place_in_them_are_read_from_proc() -> None:
    found = parse_mountinfo(MOUNTINFO)
    assert [h.key for h in found] == ["cpu", "memory", "name=systemd", ""]
    assert found[3] == Hierarchy(Path("/sys/fs/cgroup/unified"), "cgroup2", "rw")
    own = parse_proc_cgroup(PROC_CGROUP)
    assert own["memory"] == "/process_api/abc" and own[""] == "/"
