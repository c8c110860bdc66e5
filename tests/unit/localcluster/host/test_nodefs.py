"""The cluster's private view of the machine: the mount plan of its namespace holder."""

from __future__ import annotations

from paitient_localcluster.host.nodefs import KUBELET_SYSCTLS, PRIVATE_TMPFS, Spec, mount_plan


def test_the_private_view_propagates_nothing_and_mounts_only_over_existing_directories() -> None:
    spec = Spec("/r/ns", "/run/netns/x", ["/sys/fs/cgroup/pids/x"],
                [{"mountpoint": "/sys/fs/cgroup/pids", "fstype": "cgroup", "options": "rw,pids"},
                 {"mountpoint": "/sys/fs/cgroup/unified", "fstype": "cgroup2", "options": "rw"}])  # fmt: skip
    plan = mount_plan(spec)
    assert plan[0] == ["mount", "--make-rprivate", "/"], "first of all, nothing propagates back"
    mounts = [c[-1] for c in plan if c[0] == "mount"]
    assert set(PRIVATE_TMPFS) <= set(mounts)
    assert set(PRIVATE_TMPFS) <= {"/run", "/var/lib", "/var/log"}, "every host has these"
    # mkdir only below the fresh sysfs and tmpfs mounts, never on the host's own filesystem
    made = [c[-1] for c in plan if c[0] == "mkdir"]
    assert all(d.startswith(("/sys/fs/cgroup/", *PRIVATE_TMPFS)) for d in made)
    for key in KUBELET_SYSCTLS:
        assert ["mount", "--bind", str(spec.sysctl_file(key)), f"/proc/sys/{key}"] in plan
    assert ["mount", "-t", "cgroup2", "-o", "nosuid,nodev,noexec", "cgroup2",
            "/sys/fs/cgroup/unified"] in plan  # fmt: skip
