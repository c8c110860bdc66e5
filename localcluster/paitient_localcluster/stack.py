"""The whole product on this machine: local cluster, CRDs, operator, local data plane and front
door, as background processes (``make up`` / ``make down``), and the demo (``make demo``). The
front door serves HTTPS with a certificate of a local CA (``local_tls.py``); the gateways serve
TLS with the operator's certificates, as in a cluster.

    python -m paitient_localcluster.stack up      # prints export lines: base URL, CA bundle, kubeconfig
    python -m paitient_localcluster.stack demo    # up, then tenant, key, deploy, generate, usage
    python -m paitient_localcluster.stack down
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from paitient_common.kubeapi import Kube

from .cluster import LocalCluster
from .commands import Ports
from .errors import ClusterError
from .local_tls import front_door_certificate
from .processes import Managed, port_owner, probe_context, wait_http_ok

API_PORT = int(os.environ.get("PAITIENT_API_PORT", "18080"))
SERVICES = ("operator", "dataplane", "paitient-api")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _wait_url(url: str, what: str, proc: Managed, timeout: float = 60) -> None:
    context = probe_context() if url.startswith("https:") else None
    if not wait_http_ok(url, timeout, alive=proc.ensure_alive, context=context):
        raise ClusterError(f"{what} did not become ready in {timeout:.0f} s:\n{proc.log_tail()}")


def up() -> tuple[str, Path, Path]:
    """Start (or reuse) everything; return (base URL, CA bundle, admin kubeconfig)."""
    cluster = LocalCluster(log=_log)
    kubeconfig = cluster.up()
    from paitient_operator.resources.install import install_crds  # noqa: PLC0415 - heavy, only here

    install_crds(Kube.from_kubeconfig(str(kubeconfig)))
    run = cluster.run_dir
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.layout.kubeconfig("operator")),
        # The local cluster's encrypted class serves deployments that name none (the API's).
        "PAITIENT_DEFAULT_STORAGE_CLASS": "encrypted-local",
    }
    operator = Managed("operator", run)
    liveness = f"http://127.0.0.1:{Ports.from_env().operator_liveness}/healthz"
    if operator.read_pid() is None:
        argv = [sys.executable, "-m", "paitient_operator.main", "--liveness", liveness]
        _start(operator, argv, env)
    _wait_url(liveness, "the operator", operator)
    routes = run / "routes.json"
    plane = Managed("dataplane", run)
    if plane.read_pid() is None:
        argv = [sys.executable, "-m", "paitient_localcluster.dataplane", "--kubeconfig", str(kubeconfig),
                "--routes", str(routes), "--state-dir", str(run / "dataplane")]  # fmt: skip
        _start(plane, argv, {**os.environ})
    api = Managed("paitient-api", run)
    tls = front_door_certificate(run / "frontdoor-tls")
    if api.read_pid() is None:
        if owner := port_owner(API_PORT):
            raise ClusterError(
                f"port {API_PORT} for the front door is used by {owner}; set PAITIENT_API_PORT"
            )
        argv = [sys.executable, "-m", "paitient_api.main", "--host", "127.0.0.1", "--port", str(API_PORT),
                "--kubeconfig", str(kubeconfig), "--gateway-url", f"file:{routes}",
                "--tls-cert-file", str(tls.cert_file), "--tls-key-file", str(tls.key_file)]  # fmt: skip
        _start(api, argv, {**os.environ})
    _wait_url(f"https://127.0.0.1:{API_PORT}/readyz", "the front door", api)
    return f"https://127.0.0.1:{API_PORT}/v1", tls.ca_bundle, kubeconfig


def _start(proc: Managed, argv: list[str], env: dict[str, str]) -> None:
    pid = proc.start(argv, env=env)
    _log(f"[stack] started {proc.name} (pid {pid}, log {proc.log_file})")


def down() -> None:
    cluster = LocalCluster(log=_log)
    for name in reversed(SERVICES):
        if Managed(name, cluster.run_dir).stop():
            _log(f"[stack] stopped {name}")
    cluster.down()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="paitient-stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["up", "down", "demo"])
    args = parser.parse_args(argv)
    try:
        if args.command == "down":
            down()
            return 0
        base_url, ca_bundle, kubeconfig = up()
        if args.command == "demo":
            from .demo import run_demo  # noqa: PLC0415

            run_demo(base_url, ca_bundle, kubeconfig)
        print(f"export PAITIENT_BASE_URL={base_url}")
        print(f"export PAITIENT_CA_BUNDLE={ca_bundle}")
        print(f"export KUBECONFIG={kubeconfig}")
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
