"""The Go build of the upstream programs, as a command line."""

from __future__ import annotations

from paitient_localcluster.upstream.build import build_command
from paitient_localcluster.upstream.versions import KUBERNETES


def test_kubernetes_build_is_one_go_build_with_the_version_stamped() -> None:
    cmd = build_command("go", KUBERNETES)
    assert cmd[:2] == ["go", "build"]
    assert [p.rsplit("/", 1)[1] for p in cmd if p.startswith("k8s.io/kubernetes/cmd/")] == [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ]
    ldflags = cmd[cmd.index("-ldflags") + 1]
    assert f"version.gitVersion={KUBERNETES.version}" in ldflags
