"""The whole product on this machine, as it runs in a cluster (``make up`` / ``make down``), and
the demo (``make demo``): the local cluster with its real node, the CRDs, and the Helm chart
installed with the images ``make images`` built, so the operator and the front door run as pods
on the real node and the front door reaches each gateway by its Service's name. The host reaches
the front door only through a relay on 127.0.0.1 into the cluster's network namespace (like
kind's port mappings). The front door serves HTTPS with a certificate of a local CA
(``local_tls.py``); the gateways serve TLS with the operator's certificates.

    python -m paitient_localcluster.stack up      # prints export lines: base URL, CA bundle, kubeconfig
    python -m paitient_localcluster.stack demo    # up, then tenant, key, deploy, generate, usage
    python -m paitient_localcluster.stack tiny-model --namespace tenant-acme   # the model that serves here
    python -m paitient_localcluster.stack down
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from paitient_common.kubeapi import Kube

from ..cluster import LocalCluster
from ..errors import ClusterError
from ..host.processes import Managed, port_owner, probe_context, wait_http_ok
from ..host.relay import PortMapping, relay_argv
from .chart import CHART, helm, local_values
from .local_tls import LocalCertificate, front_door_certificate
from .tiny_model import CLAIM, MODEL_URI, fill_model_claim

API_PORT = int(os.environ.get("PAITIENT_API_PORT", "18080"))
RELEASE = "paitient"
SYSTEM_NAMESPACE = "paitient-system"  # the release's: keys, tiers and the CA bundle live here
FRONT_DOOR_SERVICE = "paitient-api"  # the chart's name for it in a release called "paitient"
TLS_SECRET = "paitient-api-tls"  # noqa: S105 - a Secret's name, not a secret
# The Managed process that marks a `make up` stack on this cluster (tests look for it).
FRONT_DOOR_RELAY = "front-door-relay"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def up(extra_values: Sequence[str] = ()) -> tuple[str, Path, Path]:
    """Start (or reuse) everything; return (base URL, CA bundle, admin kubeconfig).
    ``extra_values``: more ``helm --set`` arguments (tests and benchmarks tune settings)."""
    cluster = LocalCluster(log=_log)
    kubeconfig = cluster.up()
    kube = Kube.from_kubeconfig(str(kubeconfig))
    from paitient_common.resources.install import install_crds  # noqa: PLC0415 - heavy, only here

    install_crds(kube)
    tls = front_door_certificate(cluster.run_dir / "frontdoor-tls")
    _system_namespace(kube, tls)
    started = time.monotonic()
    _log(
        f"[stack] helm upgrade --install {RELEASE} (operator and front door pods on the real node)"
    )
    helm(
        kubeconfig, "upgrade", "--install", RELEASE, str(CHART), "--namespace", SYSTEM_NAMESPACE,
        "--skip-crds", *local_values(kube), "--set", f"frontDoor.tls.existingSecret={TLS_SECRET}",
        *extra_values, "--wait", "--timeout", "5m",
    )  # fmt: skip
    _log(f"[stack] operator and front door Ready in {time.monotonic() - started:.0f} s")
    base_url = f"https://127.0.0.1:{API_PORT}/v1"
    relay = Managed(FRONT_DOOR_RELAY, cluster.run_dir)
    if relay.read_pid() is None:
        if owner := port_owner(API_PORT):
            raise ClusterError(
                f"port {API_PORT} for the front door is used by {owner}; set PAITIENT_API_PORT"
            )
        service = kube.get("v1", "Service", FRONT_DOOR_SERVICE, namespace=SYSTEM_NAMESPACE)
        if service is None:
            raise ClusterError(f"the chart made no Service {SYSTEM_NAMESPACE}/{FRONT_DOOR_SERVICE}")
        target = PortMapping(
            API_PORT, service["spec"]["clusterIP"], service["spec"]["ports"][0]["port"]
        )
        pid = relay.start(relay_argv(cluster.namespaces.netns_path, [target]))
        _log(f"[stack] started the front door's relay (pid {pid}): 127.0.0.1:{API_PORT} -> "
             f"service/{FRONT_DOOR_SERVICE} {target.target_host}:{target.target_port}")  # fmt: skip
    if not wait_http_ok(base_url.removesuffix("/v1") + "/readyz", 60, alive=relay.ensure_alive,
                        context=probe_context()):  # fmt: skip
        raise ClusterError(f"the front door did not answer through its relay:\n{relay.log_tail()}")
    return base_url, tls.ca_bundle, kubeconfig


def _system_namespace(kube: Kube, tls: LocalCertificate) -> None:
    """The release namespace, enforcing Pod Security ``restricted``, with the front door's
    serving certificate (the local CA's, for 127.0.0.1: the host calls through the relay)."""
    if kube.get("v1", "Namespace", SYSTEM_NAMESPACE) is None:
        kube.create({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": SYSTEM_NAMESPACE,
                         "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
        })  # fmt: skip
    data = {
        "tls.crt": base64.b64encode(tls.cert_file.read_bytes()).decode(),
        "tls.key": base64.b64encode(tls.key_file.read_bytes()).decode(),
    }
    if kube.get("v1", "Secret", TLS_SECRET, namespace=SYSTEM_NAMESPACE) is None:
        kube.create({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": TLS_SECRET, "namespace": SYSTEM_NAMESPACE}, "data": data,
        })  # fmt: skip
    else:
        kube.patch("v1", "Secret", TLS_SECRET, {"data": data}, namespace=SYSTEM_NAMESPACE)


def tiny_model_into(namespace: str) -> None:
    """The model that really serves on this stack (real vLLM on the real node's CPU) into the
    claim ``tiny-model`` of ``namespace``: deploy it as ``pvc://tiny-model/tiny-llama``."""
    kube = Kube.from_kubeconfig(str(LocalCluster(log=_log).kubeconfig))
    if kube.get("v1", "Namespace", namespace) is None:
        raise ClusterError(
            f"no namespace {namespace}: create its tenant first (paitient tenants create)"
        )
    fill_model_claim(kube, namespace)
    _log(f"[stack] the tiny model is in {namespace}'s claim {CLAIM}: model {MODEL_URI}")


def down() -> None:
    cluster = LocalCluster(log=_log)
    if Managed(FRONT_DOOR_RELAY, cluster.run_dir).stop():
        _log("[stack] stopped the front door's relay")
    cluster.down()  # the chart's pods go with the node


def how_to_call(base_url: str, ca_bundle: Path, kubeconfig: Path) -> str:
    """What `make up` ends with: how to call the API from the host (pure)."""
    return (
        "The stack runs: operator and front door are pods on the real node; the front door is "
        f"reached only through 127.0.0.1:{API_PORT} (HTTPS, certificate of a local CA).\n"
        'Make a tenant and a key, then call it (README.md, "Using it", serves a model too):\n'
        f"  export KUBECONFIG={kubeconfig}\n"
        "  .venv/bin/paitient tenants create my-clinic --client-id my-clinic\n"
        "  .venv/bin/paitient keys create --client-id my-clinic   # prints the key once: KEY=...\n"
        f"  curl -s --cacert {ca_bundle} {base_url}/subscription "
        "-H \"Authorization: Bearer $KEY\" -H 'X-Client-ID: my-clinic'\n"
        "Stop everything with: make down"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="paitient-stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["up", "down", "demo", "tiny-model"])
    parser.add_argument(
        "--namespace",
        help="tiny-model: the namespace (a tenant's) whose claim tiny-model gets the tiny model",
    )
    args = parser.parse_args(argv)
    if args.command == "tiny-model" and not args.namespace:
        parser.error("tiny-model needs --namespace, e.g. --namespace tenant-acme")
    try:
        if args.command == "down":
            down()
            return 0
        if args.command == "tiny-model":
            tiny_model_into(args.namespace)
            return 0
        base_url, ca_bundle, kubeconfig = up()
        if args.command == "demo":
            from .demo import run_demo  # noqa: PLC0415

            run_demo(base_url, ca_bundle, kubeconfig)
        else:
            _log(how_to_call(base_url, ca_bundle, kubeconfig))
        print(f"export PAITIENT_BASE_URL={base_url}")
        print(f"export PAITIENT_CA_BUNDLE={ca_bundle}")
        print(f"export KUBECONFIG={kubeconfig}")
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
