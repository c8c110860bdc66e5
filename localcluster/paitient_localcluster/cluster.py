"""Bring the local cluster up and down: build, certificates, namespaces, processes, nodes.

Everything runs inside namespaces the cluster makes (``namespaces.py``): the control plane, KWOK
with its simulated GPU nodes, and the real node (containerd, kubelet, kube-proxy, kube-router's
NetworkPolicy controller, CoreDNS). The host reaches the control plane's ports on 127.0.0.1
through a relay, so every kubeconfig says ``https://127.0.0.1:<port>`` on the host and inside.

``up()`` is idempotent: a healthy running cluster is reused; leftovers of a dead one (stale pid
files, half-started processes, namespaces, cgroups) are removed and the cluster starts afresh.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from paitient_common.kubeapi import Kube, KubeError

from .addresses import NODE_IP
from .controlplane import audit, commands, health
from .controlplane.commands import Layout
from .controlplane.kubeconfig import build_kubeconfig, write_kubeconfig
from .controlplane.pki import CLIENTS, NODE_NAME, ensure_pki
from .controlplane.ports import Ports
from .errors import ClusterError
from .host.namespaces import HOLDER, ClusterNamespaces, cluster_name
from .host.prerequisites import problems, read_facts, report
from .host.processes import Managed, port_owner
from .host.relay import PortMapping, relay_argv
from .node import cluster_dns
from .node import config as nodeconfig
from .node.config import NodeLayout
from .node.runtime import (
    PAUSE_IMAGE,
    NodeImage,
    built_images,
    check_programs,
    containerd_answers,
    http_ok_inside,
    import_images,
    node_env,
)
from .simulated.kwok_stages import kwok_config
from .simulated.nodes import default_nodes
from .simulated.provisioner import storage_classes
from .upstream.build import ensure_built
from .upstream.versions import CONTROL_PLANE, NODE, REPO_ROOT

Log = Callable[[str], None]
RELAY = "relay"
# Start order; stopped in reverse (the namespace holder first in, last out).
CONTROL_PLANE_PROCESSES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "volume-provisioner",
)
NODE_PROCESSES = ("containerd", "kubelet", "kube-proxy", "kube-router")
CRDS = REPO_ROOT / "crds"


def default_run_dir() -> Path:
    """``$PAITIENT_CLUSTER_DIR`` or ``<repo>/.local/cluster``."""
    override = os.environ.get("PAITIENT_CLUSTER_DIR")
    return Path(override).resolve() if override else REPO_ROOT / ".local" / "cluster"


@dataclass
class LocalCluster:
    """A cluster whose state lives in ``run_dir`` and whose ports the host sees on 127.0.0.1.

    ``real_node``: run the real CPU node ``cpu-node-0`` (without it KWOK simulates one, as the
    operator benchmark's throwaway cluster wants). ``node_images``: the images imported into
    the node's containerd at start, by name (``pause`` is the pods' sandbox); by default every
    image ``make images`` built.
    """

    run_dir: Path = field(default_factory=default_run_dir)
    ports: Ports = field(default_factory=Ports.from_env)
    log: Log = print
    real_node: bool = True
    node_images: Mapping[str, NodeImage] | None = None
    # Model pods wait for the data plane to report them Ready (kwok_stages.py) unless this is
    # set: for a cluster that runs no data plane (the operator's benchmark).
    model_pods_ready_at_once: bool = False
    _kube: Kube | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def processes(self) -> tuple[str, ...]:
        """Every process of this cluster, in start order."""
        node = NODE_PROCESSES if self.real_node else ()
        return (HOLDER, RELAY, *CONTROL_PLANE_PROCESSES, *node)

    @property
    def namespaces(self) -> ClusterNamespaces:
        return ClusterNamespaces(cluster_name(self.run_dir, self.ports.base), self.run_dir)

    @property
    def node_layout(self) -> NodeLayout:
        return NodeLayout(self.run_dir / "node")

    @property
    def layout(self) -> Layout:
        return Layout(self.run_dir)

    @property
    def kubeconfig(self) -> Path:
        return self.layout.admin_kubeconfig

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports.apiserver}"

    @property
    def kube(self) -> Kube:
        """The API as the admin identity (the project's shared client), once the admin
        kubeconfig is written."""
        if self._kube is None:
            self._kube = Kube.from_kubeconfig(str(self.kubeconfig))
        return self._kube

    def process(self, name: str) -> Managed:
        return Managed(name, self.run_dir)

    # -- queries -----------------------------------------------------------------------------

    def running(self) -> dict[str, int | None]:
        return {name: self.process(name).read_pid() for name in self.processes}

    def is_healthy(self) -> bool:
        """Namespaces there, every process alive and the apiserver ready."""
        if not self.namespaces.is_up() or any(pid is None for pid in self.running().values()):
            return False
        return self._apiserver_ready()

    # -- lifecycle ---------------------------------------------------------------------------

    def up(self) -> Path:
        """Start (or reuse) the cluster; return the admin kubeconfig path."""
        if found := problems(read_facts()):
            raise ClusterError(report(found))
        started = time.monotonic()
        components = CONTROL_PLANE + (NODE if self.real_node else ())
        binaries = ensure_built(self.log, components)
        images: Mapping[str, NodeImage] = {}
        if self.real_node:
            binaries["containerd"] = Path(check_programs())
            images = self.node_images if self.node_images is not None else built_images()
        if self.is_healthy():
            self.log(f"[cluster] already running, reusing it ({self.run_dir})")
            self._write_kubeconfigs()
            if self.real_node:  # what `make images` rebuilt since the node started
                self._import_images(images)
            self._wait_nodes_ready(timeout=60)
            return self.kubeconfig
        leftovers = [n for n, pid in self.running().items() if pid is not None]
        if leftovers:
            self.log(f"[cluster] stopping leftovers of an earlier run: {', '.join(leftovers)}")
        self.down(quiet=True)
        self._check_ports_free()
        self._prepare_files(images)
        try:
            self._start_all(binaries, images)
        except BaseException:
            self.log("[cluster] start failed; stopping what was started")
            self.down(quiet=True)
            raise
        self._write_state(time.monotonic() - started)
        self.log(f"[cluster] ready in {time.monotonic() - started:.1f} s")
        return self.kubeconfig

    def down(self, quiet: bool = False) -> list[str]:
        """Stop every process this cluster started, then remove its namespaces and cgroups
        (killing what is left in them: containers, shims); return the processes' names."""
        order = list(reversed(self.processes[1:]))
        node = [n for n in order if n in NODE_PROCESSES]
        stopped = [n for n in node if self.process(n).stop()]
        # The pods go with the node, before the control plane: a pod's open watch would keep
        # the API server draining its connections until it is killed.
        self.namespaces.kill_strays(spare=frozenset(p for p in self.running().values() if p))
        stopped += [n for n in order if n not in node and self.process(n).stop()]
        holder_was_up = self.process(HOLDER).read_pid() is not None
        removed = self.namespaces.destroy()
        if holder_was_up:
            stopped.append(HOLDER)
        if not quiet:
            self.log(
                f"[cluster] stopped {', '.join(stopped)}" if stopped else "[cluster] not running"
            )
            if removed:
                self.log(f"[cluster] removed {', '.join(removed)}")
        busy = {n: o for n, p in self.ports.all().items() if (o := port_owner(p))}
        if busy and not quiet:
            self.log(f"[cluster] warning: ports still bound after stop: {busy}")
        return stopped

    # -- steps -------------------------------------------------------------------------------

    def _check_ports_free(self) -> None:
        busy = {
            f"{name} port {p}": o for name, p in self.ports.all().items() if (o := port_owner(p))
        }
        if busy:
            detail = "; ".join(f"{k} is used by {v}" for k, v in busy.items())
            raise ClusterError(
                f"cannot start the local cluster: {detail}. Stop that process, or run "
                "`make cluster-down` if it is an earlier cluster of another checkout, or choose "
                "other ports with PAITIENT_CLUSTER_PORT_BASE=<n>."
            )

    def _prepare_files(self, images: Mapping[str, NodeImage]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.layout.etcd_data, ignore_errors=True)  # every fresh start is empty
        shutil.rmtree(self.layout.volumes, ignore_errors=True)  # their claims are gone with it
        self._write_kubeconfigs()
        stages = kwok_config(self.model_pods_ready_at_once)
        (self.run_dir / "kwok.yaml").write_text(yaml.safe_dump_all(stages, sort_keys=False))
        self.layout.audit_policy.write_text(yaml.safe_dump(audit.POLICY, sort_keys=False))
        self.layout.audit_log.parent.mkdir(parents=True, exist_ok=True)
        if self.real_node:
            files = nodeconfig.render_files(
                self.node_layout,
                self.layout.pki,
                NODE_IP,
                images[PAUSE_IMAGE].ref,
                self.layout.kubeconfig("kube-proxy"),
            )
            for path, text in files.items():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)

    def _write_kubeconfigs(self) -> None:
        """One kubeconfig per identity (cheap, so also redone when a cluster is reused)."""
        pki = ensure_pki(self.layout.pki.directory)
        for identity in CLIENTS:
            doc = build_kubeconfig(
                self.server, pki.ca_cert, pki.client_cert(identity), pki.client_key(identity)
            )
            write_kubeconfig(self.layout.kubeconfig(identity), doc)
        self._kube = None  # a client made before holds the connections of an earlier run

    def _start_all(self, binaries: dict[str, Path], images: Mapping[str, NodeImage]) -> None:
        lay, ports = self.layout, self.ports
        self.namespaces.create()
        self.log(f"[cluster] namespaces {self.namespaces.name} ready")
        mappings = [PortMapping(p, "127.0.0.1", p) for p in ports.all().values()]
        pid = self.process(RELAY).start(relay_argv(self.namespaces.netns_path, mappings))
        self.log(f"[cluster] started relay (pid {pid}): host 127.0.0.1 -> the cluster's namespace")
        self._start("etcd", commands.etcd_argv(binaries["etcd"], lay, ports))
        self._wait("etcd", lambda: health.etcd_healthy(ports.etcd_client), 30)
        self._start(
            "kube-apiserver", commands.apiserver_argv(binaries["kube-apiserver"], lay, ports)
        )
        self._wait("kube-apiserver", self._apiserver_ready, 90)
        # The project's CRDs go in before the controller manager starts: its quota and garbage
        # collectors only rediscover resource types every 30 s.
        self._install_crds()
        self._start(
            "kube-controller-manager",
            commands.controller_manager_argv(binaries["kube-controller-manager"], lay, ports),
        )
        self._start(
            "kube-scheduler", commands.scheduler_argv(binaries["kube-scheduler"], lay, ports)
        )
        self._start("kwok", commands.kwok_argv(binaries["kwok"], lay, ports))
        self._wait(
            "kube-controller-manager", lambda: health.serves_healthz(ports.controller_manager), 60
        )
        self._wait("kube-scheduler", lambda: health.serves_healthz(ports.scheduler), 60)
        self._start("volume-provisioner", commands.provisioner_argv(lay))
        self._create_nodes()
        if self.real_node:
            self._start_node(binaries, images)
        self._wait_nodes_ready(timeout=90)
        self._wait("volume-provisioner", self._storage_classes_exist, 30)

    def _start_node(self, binaries: dict[str, Path], images: Mapping[str, NodeImage]) -> None:
        """containerd and its images, kubelet; once the node is registered, kube-proxy and
        kube-router (which reads the Node object at start); then the cluster DNS, a pod."""
        node, lay, env = self.node_layout, self.layout, node_env()
        started = time.monotonic()
        enter = self.namespaces.enter(self.run_dir)
        self._start(
            "containerd", nodeconfig.containerd_argv(str(binaries["containerd"]), node), env
        )
        self._wait("containerd", lambda: containerd_answers(enter), 30)
        self._import_images(images)
        self._apply(nodeconfig.kube_router_rbac(CLIENTS["kube-router"][0]))
        self._start(
            "kubelet",
            nodeconfig.kubelet_argv(binaries["kubelet"], node, lay.kubeconfig("node"), NODE_IP),
            env,
        )
        self._wait("kubelet", self._node_registered, 60)
        self._start("kube-proxy", nodeconfig.kube_proxy_argv(binaries["kube-proxy"], node), env)
        self._start(
            "kube-router",
            nodeconfig.kube_router_argv(binaries["kube-router"], lay.kubeconfig("kube-router")),
            env,
        )
        netns = self.namespaces.netns_path
        for name, url in (
            ("kubelet", f"http://127.0.0.1:{nodeconfig.KUBELET_HEALTHZ_PORT}/healthz"),
            ("kube-proxy", f"http://127.0.0.1:{nodeconfig.KUBE_PROXY_HEALTHZ_PORT}/livez"),
            ("kube-router", f"http://127.0.0.1:{nodeconfig.KUBE_ROUTER_HEALTH_PORT}/healthz"),
        ):
            self._wait(name, functools.partial(http_ok_inside, netns, url), 60)
        self._wait("kubelet", lambda: self._node_ready(NODE_NAME), 60)
        self.log(f"[cluster] real node {NODE_NAME} Ready in {time.monotonic() - started:.1f} s")
        self._apply(cluster_dns.objects(binaries["coredns"], images[PAUSE_IMAGE].ref))
        self._wait("kubelet", self._cluster_dns_ready, 60)

    def _import_images(self, images: Mapping[str, NodeImage]) -> None:
        imported = import_images(list(images.values()), self.namespaces.enter(self.run_dir))
        if imported:
            self.log(f"[cluster] imported into the node: {', '.join(imported)}")

    def _start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        """Start a process of the cluster inside its namespaces."""
        enter = self.namespaces.enter(self.run_dir)
        pid = self.process(name).start(enter.argv(argv), env=env, exe=argv[0])
        self.log(f"[cluster] started {name} (pid {pid})")

    def _wait(self, name: str, check: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        proc = self.process(name)
        while time.monotonic() < deadline:
            proc.ensure_alive()
            if check():
                return
            time.sleep(0.25)
        raise ClusterError(
            f"{name} did not become ready within {timeout:.0f} s. Last lines of "
            f"{proc.log_file}:\n{proc.log_tail()}"
        )

    # -- health ------------------------------------------------------------------------------

    def _apiserver_ready(self) -> bool:
        return health.apiserver_ready(self.server, self.layout.pki)

    # -- nodes -------------------------------------------------------------------------------

    def _install_crds(self) -> None:
        for path in sorted(CRDS.glob("*.yaml")):
            try:
                self.kube.create(yaml.safe_load(path.read_text()))
            except KubeError as exc:
                if exc.status != 409:
                    raise ClusterError(f"installing {path.name}: {exc}") from exc

    def _apply(self, manifests: list[dict[str, Any]]) -> None:
        """Create each object; one that exists already is left as it is."""
        for obj in manifests:
            try:
                self.kube.create(obj)
            except KubeError as exc:
                if exc.status != 409:
                    raise ClusterError(
                        f"creating {obj['kind']} {obj['metadata']['name']}: {exc}"
                    ) from exc

    def _cluster_dns_ready(self) -> bool:
        try:
            deployment = self.kube.get(
                "apps/v1", "Deployment", cluster_dns.NAME, namespace=cluster_dns.NAMESPACE
            )
        except KubeError:
            return False
        return bool(((deployment or {}).get("status") or {}).get("readyReplicas"))

    def _node_ready(self, name: str) -> bool:
        return any(n["name"] == name and n["ready"] for n in self.node_summary())

    def _node_registered(self) -> bool:
        try:
            return self.kube.get("v1", "Node", NODE_NAME) is not None
        except KubeError:
            return False

    def _create_nodes(self) -> None:
        for node in default_nodes(cpu_nodes=0 if self.real_node else 1):
            try:
                self.kube.create(node)
            except KubeError as exc:
                if exc.status != 409:
                    raise ClusterError(f"creating node {node['metadata']['name']}: {exc}") from exc

    def _storage_classes_exist(self) -> bool:
        names = {sc["metadata"]["name"] for sc in storage_classes()}
        found = self.kube.list("storage.k8s.io/v1", "StorageClass")
        return names <= {sc["metadata"]["name"] for sc in found}

    def node_summary(self) -> list[dict[str, Any]]:
        nodes = self.kube.list("v1", "Node")
        return [
            {
                "name": n["metadata"]["name"],
                "ready": any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in n.get("status", {}).get("conditions", [])
                ),
                "taints": [t["key"] for t in n.get("spec", {}).get("taints", [])],
                "gpus": n.get("status", {}).get("allocatable", {}).get("nvidia.com/gpu", "0"),
            }
            for n in nodes
        ]

    def _wait_nodes_ready(self, timeout: float) -> None:
        def ready() -> bool:
            nodes = self.node_summary()
            # The node-lifecycle controller removes the not-ready taint once KWOK reports Ready;
            # until then nothing can be scheduled.
            return bool(nodes) and all(
                n["ready"] and "node.kubernetes.io/not-ready" not in n["taints"] for n in nodes
            )

        self._wait("kwok", ready, timeout)

    def _write_state(self, seconds: float) -> None:
        state = {
            "server": self.server,
            "namespaces": self.namespaces.name,
            "kubeconfig": str(self.kubeconfig),
            "pids": self.running(),
            "start_seconds": round(seconds, 2),
        }
        (self.run_dir / "state.json").write_text(json.dumps(state, indent=2))
