"""How a process joins the cluster: the launcher's command line."""

from __future__ import annotations

from pathlib import Path

from paitient_localcluster.host.linux import Enter


def test_the_launcher_joins_every_namespace_then_runs_the_program() -> None:
    enter = Enter(Path("/run/netns/x"), 42, (Path("/sys/fs/cgroup/pids/x"),), Path("/w"))
    argv = enter.argv(["/bin/kubelet", "--v=1"])
    assert argv[1:3] == ["-m", "paitient_localcluster.host.enter"]
    assert argv[argv.index("--") + 1 :] == ["/bin/kubelet", "--v=1"]
    assert "--holder" in argv and "42" in argv and "--cgroup=/sys/fs/cgroup/pids/x" in argv
