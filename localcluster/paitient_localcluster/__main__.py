"""``paitient-localcluster build|up|down|status|nodes``: the local cluster from the command line.

``build`` only builds (or finds cached) every upstream program the cluster runs, so that a cold
machine's long Go builds happen before the tests start rather than inside a test's time limit.

``check`` says whether this machine can run the cluster at all (root, apt, kernel features).

``up`` prints progress, then the absolute kubeconfig path as its last line, so scripts can do
``KUBECONFIG=$(paitient-localcluster up | tail -n1)``.
"""

from __future__ import annotations

import argparse
import sys

from .cluster import LocalCluster
from .errors import ClusterError
from .host.prerequisites import problems, read_facts, report
from .upstream.build import ensure_built


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="paitient-localcluster", description=__doc__)
    parser.add_argument("command", choices=["check", "build", "up", "down", "status", "nodes"])
    args = parser.parse_args(argv)
    cluster = LocalCluster(log=_log)
    try:
        if args.command == "check":
            if found := problems(read_facts()):
                raise ClusterError(report(found))
            print("this machine can run the local cluster")
        elif args.command == "build":
            ensure_built(_log)
        elif args.command == "up":
            print(cluster.up(), flush=True)
        elif args.command == "down":
            cluster.down()
        elif args.command == "status":
            for name, pid in cluster.running().items():
                print(f"{name:<26} {'running (pid ' + str(pid) + ')' if pid else 'stopped'}")
            print(f"kubeconfig: {cluster.kubeconfig}" if cluster.is_healthy() else "not ready")
        else:
            for node in cluster.node_summary():
                state = "Ready" if node["ready"] else "NotReady"
                print(f"{node['name']:<14} {state:<9} gpus={node['gpus']} taints={node['taints']}")
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
