"""The whole product on this machine: local cluster, CRDs, operator, local data plane and front
door, as background processes (``make up`` / ``make down``), and the demo (``make demo``).

    python -m paitient_localcluster.stack up      # prints export lines for the base URL and kubeconfig
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
from .errors import ClusterError
from .processes import Managed, port_owner, wait_http_ok

API_PORT = int(os.environ.get("PAITIENT_API_PORT", "18080"))
# The operator's liveness endpoint: the port after the front door's, so checkouts that set
# PAITIENT_API_PORT apart never share it.
OPERATOR_LIVENESS = f"http://127.0.0.1:{API_PORT + 1}/healthz"
SERVICES = ("operator", "dataplane", "paitient-api")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _wait_url(url: str, what: str, proc: Managed, timeout: float = 60) -> None:
    if not wait_http_ok(url, timeout, alive=proc.ensure_alive):
        raise ClusterError(f"{what} did not become ready in {timeout:.0f} s:\n{proc.log_tail()}")


def up() -> tuple[str, Path]:
    """Start (or reuse) everything; return (base URL, admin kubeconfig)."""
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
    if operator.read_pid() is None:
        _start(
            operator,
            [
                sys.executable,
                "-m",
                "paitient_operator.main",
                "--liveness",
                OPERATOR_LIVENESS,
            ],
            env,
        )
    _wait_url(OPERATOR_LIVENESS, "the operator", operator)
    routes = run / "routes.json"
    plane = Managed("dataplane", run)
    if plane.read_pid() is None:
        argv = [sys.executable, "-m", "paitient_localcluster.dataplane", "--kubeconfig", str(kubeconfig),
                "--routes", str(routes), "--state-dir", str(run / "dataplane")]  # fmt: skip
        _start(plane, argv, {**os.environ})
    api = Managed("paitient-api", run)
    if api.read_pid() is None:
        if owner := port_owner(API_PORT):
            raise ClusterError(
                f"port {API_PORT} for the front door is used by {owner}; set PAITIENT_API_PORT"
            )
        argv = [sys.executable, "-m", "paitient_api.main", "--host", "127.0.0.1", "--port", str(API_PORT),
                "--kubeconfig", str(kubeconfig), "--gateway-url", f"file:{routes}"]  # fmt: skip
        _start(api, argv, {**os.environ})
    _wait_url(f"http://127.0.0.1:{API_PORT}/readyz", "the front door", api)
    return f"http://127.0.0.1:{API_PORT}/v1", kubeconfig


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
        base_url, kubeconfig = up()
        if args.command == "demo":
            from .demo import run_demo  # noqa: PLC0415

            run_demo(base_url, kubeconfig)
        print(f"export PAITIENT_BASE_URL={base_url}")
        print(f"export KUBECONFIG={kubeconfig}")
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
