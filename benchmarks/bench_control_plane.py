"""Figures of the local control plane: cold build, warm start until every node is Ready, and
resident memory at rest.

    python benchmarks/bench_control_plane.py            # warm start + memory (uses the cache)
    python benchmarks/bench_control_plane.py --cold     # also a cold build in a throwaway cache

The cold build uses an empty binary cache and an empty GOCACHE (the Go module download cache is
kept: it measures compiling, not the network). Results go to stdout; docs/benchmarks.md records
them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from paitient_localcluster.build import ensure_built
from paitient_localcluster.cluster import LocalCluster
from paitient_localcluster.commands import Ports
from paitient_localcluster.processes import spare_ports


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cold_build() -> float:
    scratch = Path(tempfile.mkdtemp(prefix="paitient-cold-"))
    saved = {k: os.environ.get(k) for k in ("PAITIENT_CACHE_DIR", "GOCACHE")}
    os.environ["PAITIENT_CACHE_DIR"] = str(scratch / "bin")
    os.environ["GOCACHE"] = str(scratch / "gocache")
    try:
        started = time.monotonic()
        ensure_built(log=lambda m: print(m, file=sys.stderr))
        return time.monotonic() - started
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cold", action="store_true", help="also time a cold build (~7 min)")
    parser.add_argument("--rest", type=float, default=30.0, help="seconds at rest before RSS")
    args = parser.parse_args()
    # A SIGTERM (timeout, Ctrl-C in make) must still run the clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    if args.cold:
        print(
            f"cold build (etcd, kube-apiserver, -controller-manager, -scheduler, kwok): {cold_build():.0f} s"
        )

    ensure_built(log=lambda m: print(m, file=sys.stderr))
    with tempfile.TemporaryDirectory(prefix="paitient-bench-") as run_dir:
        cluster = LocalCluster(
            run_dir=Path(run_dir),
            ports=spare_ports(reserved=Ports.from_env().every_port()),
            log=lambda _m: None,
        )
        try:
            started = time.monotonic()
            cluster.up()
            print(
                f"warm start until all {len(cluster.node_summary())} nodes Ready: {time.monotonic() - started:.1f} s"
            )
            time.sleep(args.rest)
            total = 0.0
            for name, pid in cluster.running().items():
                mib = rss_mib(pid) if pid else 0.0
                total += mib
                print(f"  rss {name:<24} {mib:7.0f} MiB")
            print(
                f"resident memory of the control plane after {args.rest:.0f} s at rest: {total:.0f} MiB"
            )
        finally:
            cluster.down(quiet=True)


if __name__ == "__main__":
    main()
