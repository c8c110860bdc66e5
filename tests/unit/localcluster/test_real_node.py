"""The real node's pure parts: configuration files, command lines, namespace plans, cgroup
parsing, relay mappings, certificates and the build cache's stamps."""

from __future__ import annotations

import json
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509

from paitient_localcluster.addresses import DNS_SERVICE_IP, NODE_IP, SERVICE_CIDR
from paitient_localcluster.controlplane.pki import CLIENTS, SERVERS, Pki, ensure_pki
from paitient_localcluster.host.cgroups import Hierarchy, parse_mountinfo, parse_proc_cgroup
from paitient_localcluster.host.linux import Enter
from paitient_localcluster.host.namespaces import cluster_name
from paitient_localcluster.host.nodefs import KUBELET_SYSCTLS, PRIVATE_TMPFS, Spec, mount_plan
from paitient_localcluster.host.relay import PortMapping
from paitient_localcluster.node import cluster_dns
from paitient_localcluster.node import config as nodeconfig
from paitient_localcluster.node.config import NODE_NAME, NodeLayout
from paitient_localcluster.node.runtime import NodeImage, parse_image_list, refs_of, superseded_refs
from paitient_localcluster.upstream.versions import KUBERNETES_NODE, NODE

LAYOUT = NodeLayout(Path("/r/node"))


def test_containerd_keeps_everything_in_our_directories_and_runs_runc_under_cgroupfs() -> None:
    config = tomllib.loads(nodeconfig.containerd_config(LAYOUT, "example/pause:1"))
    assert config["root"] == "/r/node/containerd"
    assert config["state"] == "/run/containerd"  # the node's private tmpfs
    assert "io.containerd.internal.v1.opt" in config["disabled_plugins"]  # writes /opt otherwise
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True
    assert cri["sandbox_image"] == "example/pause:1"
    assert cri["cni"]["conf_dir"] == "/r/node/cni"
    runc = cri["containerd"]["runtimes"]["runc"]
    assert runc["options"]["SystemdCgroup"] is False


def test_cni_is_a_bridge_with_host_local_addresses_and_portmap() -> None:
    conflist = nodeconfig.cni_conflist()
    assert [p["type"] for p in conflist["plugins"]] == ["bridge", "portmap"]
    assert conflist["plugins"][0]["ipam"]["type"] == "host-local"
    assert conflist["plugins"][0]["ipMasq"] is False


def test_kubelet_checks_kernel_defaults_and_creates_no_cgroup_hierarchy_of_its_own() -> None:
    pki = Pki(Path("/r/pki"))
    config = nodeconfig.kubelet_config(pki, NODE_IP)
    assert config["cgroupDriver"] == "cgroupfs"
    assert config["cgroupsPerQOS"] is False
    assert config["enforceNodeAllocatable"] == []
    assert config["failSwapOn"] is False
    assert config["protectKernelDefaults"] is True
    assert config["clusterDNS"] == [DNS_SERVICE_IP]
    assert config["authentication"]["anonymous"]["enabled"] is False
    assert config["authentication"]["x509"]["clientCAFile"] == str(pki.ca_cert)
    assert config["address"] == NODE_IP
    argv = nodeconfig.kubelet_argv(Path("/b/kubelet"), LAYOUT, Path("/r/node.kc"), NODE_IP)
    assert f"--node-ip={NODE_IP}" in argv and f"--hostname-override={NODE_NAME}" in argv
    assert not [a for a in argv if a.startswith("--register-with-taints")], "it takes any pod"


def test_kube_proxy_writes_no_machine_wide_conntrack_setting() -> None:
    config = nodeconfig.kube_proxy_config(Path("/r/kp.kc"), NODE_IP)
    assert config["mode"] == "iptables"
    # nf_conntrack_max is global to the machine: 0 = leave it; the timeouts too.
    assert config["conntrack"]["maxPerCore"] == 0 and config["conntrack"]["min"] == 0
    assert config["conntrack"]["tcpEstablishedTimeout"] == "0s"
    assert config["conntrack"]["tcpCloseWaitTimeout"] == "0s"
    assert config["hostnameOverride"] == NODE_NAME


def test_kube_router_runs_only_its_network_policy_controller() -> None:
    argv = nodeconfig.kube_router_argv(Path("/b/kube-router"), Path("/r/kr.kc"))
    for flag in ("--run-firewall=true", "--run-router=false", "--run-service-proxy=false",
                 "--enable-cni=false", f"--service-cluster-ip-range={SERVICE_CIDR}"):  # fmt: skip
        assert flag in argv


def test_dns_is_a_pod_in_kube_system_behind_the_kube_dns_service() -> None:
    """NetworkPolicies name the DNS by its namespace: it must be a pod there, not the node."""
    binary = Path("/cache/coredns-v1/coredns")
    objects = {(o["kind"], o["metadata"]["name"]): o for o in cluster_dns.objects(binary, "p:1")}
    deployment = objects[("Deployment", "coredns")]
    assert deployment["metadata"]["namespace"] == "kube-system"
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "p:1" and container["imagePullPolicy"] == "Never"
    assert container["command"][0] == "/opt/coredns/coredns"
    assert {"name": "binary", "hostPath": {"path": "/cache/coredns-v1", "type": "Directory"}} in (
        pod["volumes"]
    )
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    service = objects[("Service", "kube-dns")]
    assert service["spec"]["clusterIP"] == DNS_SERVICE_IP
    assert (
        service["spec"]["selector"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    assert {(p["protocol"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {
        ("UDP", 53, cluster_dns.LISTEN_PORT),
        ("TCP", 53, cluster_dns.LISTEN_PORT),
    }
    corefile = objects[("ConfigMap", "coredns")]["data"]["Corefile"]
    assert f":{cluster_dns.LISTEN_PORT}" in corefile and "kubernetes cluster.local" in corefile
    assert "forward" not in corefile  # nothing outside the namespace to forward to
    binding = objects[("ClusterRoleBinding", "paitient:node:coredns")]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}
    ]
    role = objects[("ClusterRole", "paitient:node:coredns")]
    assert all(set(rule["verbs"]) == {"get", "list", "watch"} for rule in role["rules"])


def test_the_network_policy_controller_may_only_read_and_post_events() -> None:
    role, binding = nodeconfig.kube_router_rbac("router-user")
    assert binding["subjects"][0]["name"] == "router-user"
    writes = {v for r in role["rules"] for v in r["verbs"]} - {"get", "list", "watch"}
    assert writes == {"create", "patch", "update"}
    assert all(r["resources"] == ["events"] for r in role["rules"] if set(r["verbs"]) & writes)


def test_render_files_covers_every_config_the_programs_read() -> None:
    files = nodeconfig.render_files(LAYOUT, Pki(Path("/r/pki")), NODE_IP, "p:1", Path("/r/kp"))
    assert LAYOUT.containerd_config in files and LAYOUT.kubelet_config in files
    assert LAYOUT.kube_proxy_config in files
    conflists = [p for p in files if p.parent == LAYOUT.cni_conf_dir]
    assert len(conflists) == 1 and json.loads(files[conflists[0]])["name"] == "paitient-node"


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


def test_relay_mappings_parse_and_print_back() -> None:
    mapping = PortMapping.parse("16443=127.0.0.1:16443")
    assert mapping == PortMapping(16443, "127.0.0.1", 16443)
    assert PortMapping.parse(str(mapping)) == mapping
    for bad in ("16443", "x=127.0.0.1:1", "1=127.0.0.1:", "1=:2"):
        with pytest.raises(ValueError, match="LISTEN_PORT=HOST:PORT"):
            PortMapping.parse(bad)


def test_namespace_names_differ_per_checkout_and_port_base() -> None:
    a = cluster_name(Path("/w/a/.local/cluster"), 21400)
    assert a == cluster_name(Path("/w/a/.local/cluster"), 21400)
    assert a.startswith("paitient-21400-")
    assert a != cluster_name(Path("/w/b/.local/cluster"), 21400)
    assert a != cluster_name(Path("/w/a/.local/cluster"), 22400)


def test_the_launcher_joins_every_namespace_then_runs_the_program() -> None:
    enter = Enter(Path("/run/netns/x"), 42, (Path("/sys/fs/cgroup/pids/x"),), Path("/w"))
    argv = enter.argv(["/bin/kubelet", "--v=1"])
    assert argv[1:3] == ["-m", "paitient_localcluster.host.enter"]
    assert argv[argv.index("--") + 1 :] == ["/bin/kubelet", "--v=1"]
    assert "--holder" in argv and "42" in argv and "--cgroup=/sys/fs/cgroup/pids/x" in argv


def test_node_identities_and_the_kubelet_serving_certificate(tmp_path: Path) -> None:
    assert CLIENTS["node"] == (f"system:node:{NODE_NAME}", "system:nodes")
    assert CLIENTS["kube-proxy"][0] == "system:kube-proxy"  # bound to system:node-proxier
    pki = ensure_pki(tmp_path)
    kubelet = x509.load_pem_x509_certificate(pki.serving_cert_of("kubelet").read_bytes())
    sans = kubelet.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == [NODE_IP]
    apiserver = x509.load_pem_x509_certificate(pki.serving_cert.read_bytes())
    api_sans = apiserver.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert NODE_IP in {str(ip) for ip in api_sans.get_values_for_type(x509.IPAddress)}


def test_a_serving_certificate_missing_a_name_is_issued_again_by_the_same_ca(
    tmp_path: Path,
) -> None:
    pki = ensure_pki(tmp_path)
    ca, kubelet = pki.ca_cert.read_bytes(), pki.serving_cert_of("kubelet").read_bytes()
    # A run directory from before the node address existed: its certificate lacks names.
    pki.serving_cert.write_bytes(kubelet)
    assert not pki.exists()
    ensure_pki(tmp_path)
    assert pki.exists() and pki.ca_cert.read_bytes() == ca
    served = x509.load_pem_x509_certificate(pki.serving_cert.read_bytes())
    sans = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == set(SERVERS["apiserver"][1])


def test_a_binary_added_to_a_component_invalidates_its_stamp(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PAITIENT_CACHE_DIR", str(tmp_path))
    component = KUBERNETES_NODE
    component.directory.mkdir(parents=True)
    for name in component.binaries:
        component.binary(name).write_text("")
    component.stamp.write_text(component.stamp_text())
    assert component.is_built()
    grown = replace(component, binaries=(*component.binaries, "kubectl"))
    assert not grown.is_built()
    assert not replace(component, version="v9.9.9").is_built()
    assert {c.key for c in NODE} == {"kubernetes-node", "coredns", "kube-router"}


# What `ctr -n k8s.io images ls` printed on the real node (columns shortened): a name the import
# gave, the image ID the CRI added for the same manifest, another image.
CTR_IMAGES_LS = """\
REF                                 TYPE                                       DIGEST      SIZE      PLATFORMS   LABELS
ghcr.io/paitient/vllm-cpu:v0.32.0   application/vnd.oci.image.manifest.v1+json sha256:674a 2.9 GiB   linux/amd64 io.cri-containerd.image=managed
ghcr.io/paitient/pause:3.10.1       application/vnd.oci.image.manifest.v1+json sha256:5dc3 301.1 KiB linux/amd64 io.cri-containerd.image=managed
sha256:2709                         application/vnd.oci.image.manifest.v1+json sha256:674a 2.9 GiB   linux/amd64 io.cri-containerd.image=managed
sha256:8627                         application/vnd.oci.image.manifest.v1+json sha256:5dc3 301.1 KiB linux/amd64 io.cri-containerd.image=managed
"""


def test_removing_an_image_takes_every_reference_to_its_manifest_and_no_other() -> None:
    present = parse_image_list(CTR_IMAGES_LS)
    assert present["ghcr.io/paitient/vllm-cpu:v0.32.0"] == "sha256:674a"
    vllm = NodeImage("ghcr.io/paitient/vllm-cpu:v0.32.0", Path("vllm.oci.tar"), "sha256:674a")
    assert refs_of(vllm, present) == ["ghcr.io/paitient/vllm-cpu:v0.32.0", "sha256:2709"]
    # A rebuilt image (another digest): only its name goes, the older build's ID stays.
    rebuilt = NodeImage("ghcr.io/paitient/vllm-cpu:v0.32.0", Path("vllm.oci.tar"), "sha256:ffff")
    assert refs_of(rebuilt, present) == ["ghcr.io/paitient/vllm-cpu:v0.32.0"]
    assert refs_of(NodeImage("ghcr.io/x:1", Path("x.oci.tar"), None), present) == []


def test_a_reimport_drops_the_old_versions_id_and_nothing_still_named() -> None:
    before = parse_image_list(CTR_IMAGES_LS)
    # vllm-cpu rebuilt (manifest sha256:aaaa) and imported: its name moved, the CRI added an ID.
    after = {
        **before,
        "ghcr.io/paitient/vllm-cpu:v0.32.0": "sha256:aaaa",
        "sha256:3001": "sha256:aaaa",
    }
    rebuilt = NodeImage("ghcr.io/paitient/vllm-cpu:v0.32.0", Path("vllm.oci.tar"), "sha256:aaaa")
    assert superseded_refs(before, after, [rebuilt]) == ["sha256:2709"]
    # Imported again unchanged, or imported for the first time: nothing is superseded.
    same = NodeImage("ghcr.io/paitient/vllm-cpu:v0.32.0", Path("vllm.oci.tar"), "sha256:674a")
    assert superseded_refs(before, before, [same]) == []
    fresh = NodeImage("ghcr.io/paitient/tiny-model:0.1.0", Path("t.oci.tar"), "sha256:bbbb")
    assert superseded_refs(before, {**before, fresh.ref: "sha256:bbbb"}, [fresh]) == []
    # An old manifest another name still points at is kept.
    shared = {**after, "ghcr.io/other/vllm:pinned": "sha256:674a"}
    assert superseded_refs(before, shared, [rebuilt]) == []
