"""Routing that knows the replicas, measured: round robin, least-load and prefix routing on one
shared-prefix workload, against replicas of real vLLM on the local cluster's real node.

    make bench-routing                          # the tiny model, then the bench model
    make bench-routing ARGS="--model bench --requests 240"
    python benchmarks/bench_routing.py --smoke --kubeconfig K --routes R   # what a test runs

Real (the default): ``make up``'s stack (operator and front door as pods on the real node, from
the images ``make images`` built; started if it is not running), a tenant of its own, and a CPU
ModelDeployment of ``--replicas`` replicas of real vLLM. The tiny model reaches its claim by the
tiny-model Job; the bench model (``tinymodel_make``'s ``bench`` recipe: the same tokenizer, 8
layers of 768, a 4,096-token context, made on this machine, nothing downloaded) is copied into
its claim's volume, as a user uploads weights to their storage. Each replica's KV cache is held
to ``--kv-blocks`` blocks of 128 tokens (vLLM's ``--num-gpu-blocks-override``): the workload's
templates do not all fit in one replica's cache, as a real GPU's cache does not hold every
tenant's long prompts, while the replicas' caches together hold them.

For each strategy (the deployment's ``spec.routing.strategy``, changed in place; the front door
reads it with every request) the workload (``routing_workload.py``) runs with templates of its
own, so no strategy finds another's prompts cached: time to first token p50/p90, tokens/s, the
share of prompt tokens vLLM found in its prefix cache (its own counters
``vllm:prefix_cache_hits`` / ``vllm:prefix_cache_queries``, read inside each pod, and the
answers' ``cached_tokens``), and the front door's picks that went above the load bound (its
``paitient_api_routing_load_ratio``).

``--smoke``: the same flow in seconds on the simulated cluster a test runs (``--kubeconfig``,
``--routes``: its operator and local data plane; GPU pods simulated, the vLLM stand-in behind
real gateways, a front door process of its own). Its figures say nothing about caching (the
stand-in has no cache); it shows the benchmark runs. The last line is a JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import routing_workload as workload  # noqa: E402

from benchmarks.summary import print_summary  # noqa: E402
from paitient_cli import admin  # noqa: E402
from paitient_common.kubeapi import Kube  # noqa: E402
from paitient_common.tls import client_context  # noqa: E402
from tests.integration.frontdoor_process import ApiProcess  # noqa: E402
from tests.integration.metrics_text import metric_sum  # noqa: E402
from tests.integration.node_pods import exec_python  # noqa: E402
from tests.integration.stack_helpers import make_tenant  # noqa: E402
from tests.integration.waiting import wait_for  # noqa: E402
from tests.unit.operator.factories import make_md  # noqa: E402

NAME = "routed"
MD = ("paitient.ai/v1alpha1", "ModelDeployment")
STRATEGIES = ("round-robin", "least-load", "prefix")
# Per model: KV-cache blocks per replica, words per template (about 2.8 characters, so a word
# and a half, a token: the tiny tokenizer). The templates fill about 14 blocks each for the tiny
# model (2,048-token context), 23 for the bench model (4,096): 8 of them take 110 and 184
# blocks, more than one replica holds, about what two hold once each keeps its own half.
SIZES = {"tiny": (80, 600), "bench": (128, 1000), "smoke": (80, 60)}
MD_LABEL = "paitient.ai/modeldeployment"
# vLLM's own prefix-cache counters (tokens), read on loopback inside each model pod.
VLLM_COUNTERS = """
import json, re, urllib.request
text = urllib.request.urlopen("http://127.0.0.1:8000/metrics", timeout=10).read().decode()
found = {}
for name in ("vllm:prefix_cache_queries", "vllm:prefix_cache_hits"):
    total = 0.0
    for line in text.splitlines():
        if re.match(re.escape(name) + r"(_total)?\\{", line):
            total += float(line.rsplit(" ", 1)[1])
    found[name] = total
print(json.dumps(found))
"""
# The front door's own metrics, read inside its pod (it serves them on its HTTPS port).
FRONT_DOOR_METRICS = """
import ssl, sys, urllib.request
context = ssl.create_default_context(); context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
print(urllib.request.urlopen(sys.argv[1], timeout=10, context=context).read().decode())
"""


@dataclass
class Target:
    """How the benchmark reaches the product, and what it reads there."""

    kube: Kube
    namespace: str
    completions_url: str
    headers: dict[str, str]
    context: ssl.SSLContext | None
    front_door_metrics: Callable[[], list[str]]  # each front door's /metrics page
    vllm_counters: Callable[[], dict[str, float]] | None  # summed over the replicas

    def set_strategy(self, strategy: str, load_bound: float) -> None:
        patch = {"spec": {"routing": {"strategy": strategy, "loadBound": load_bound}}}
        self.kube.patch(*MD, NAME, patch, namespace=self.namespace)


def picks(pages: list[str], strategy: str) -> dict[str, float]:
    """The front doors' picks for ``strategy``: all, those within the load bound, spilled."""
    ratio = "paitient_api_routing_load_ratio"
    return {
        "picks": sum(metric_sum(p, f"{ratio}_count", strategy=strategy) for p in pages),
        "within": sum(metric_sum(p, f"{ratio}_bucket", strategy=strategy, le="1.0") for p in pages),
        "spilled": sum(
            metric_sum(p, "paitient_api_routing_picks_total", strategy=strategy, choice="spilled")
            for p in pages
        ),
        "to_service": sum(
            metric_sum(p, "paitient_api_routing_fallbacks_total", reason="service") for p in pages
        ),
        "refused": sum(
            metric_sum(p, "paitient_api_routing_fallbacks_total", reason="refused") for p in pages
        ),
    }


def run_strategy(target: Target, strategy: str, args: argparse.Namespace) -> dict[str, Any]:
    target.set_strategy(strategy, args.load_bound)
    time.sleep(1)  # the front door reads the deployment with each request: nothing to wait for
    templates = workload.system_prompts(args.templates, args.template_words, uuid.uuid4().hex[:8])
    prompts = workload.requests_of(templates, args.requests, seed=7)
    counters = target.vllm_counters() if target.vllm_counters else None
    before = picks(target.front_door_metrics(), strategy)
    outcomes, wall = asyncio.run(
        workload.run(
            target.completions_url,
            target.headers,
            NAME,
            prompts,
            args.concurrency,
            args.max_tokens,
            target.context,
        )
    )
    after = picks(target.front_door_metrics(), strategy)
    result = {"strategy": strategy, **workload.figures(outcomes, wall)}
    if counters is not None and target.vllm_counters is not None:
        now = target.vllm_counters()
        queries = now["vllm:prefix_cache_queries"] - counters["vllm:prefix_cache_queries"]
        hits = now["vllm:prefix_cache_hits"] - counters["vllm:prefix_cache_hits"]
        result["vllm_prefix_cache_hit_rate"] = round(hits / queries, 3) if queries else None
    moved = {k: after[k] - before[k] for k in after}
    result["picks_over_load_bound"] = int(moved["picks"] - moved["within"])
    result["picks_spilled"] = int(moved["spilled"])
    result["requests_to_the_service"] = int(moved["to_service"])
    result["connections_refused"] = int(moved["refused"])
    return result


def wait_replicas(kube: Kube, namespace: str, replicas: int, timeout: float) -> None:
    def ready() -> bool:
        md = kube.get(*MD, NAME, namespace=namespace) or {}
        return (md.get("status") or {}).get("readyReplicas") == replicas

    wait_for(ready, timeout=timeout, interval=2, what=f"{replicas} Ready replicas of {NAME}")


def headers_of(tenant: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant['key']}", "X-Client-ID": tenant["client_id"]}


# -- the simulated cluster (--smoke) -----------------------------------------------------------


@contextlib.contextmanager
def simulated(args: argparse.Namespace, work: Path) -> Iterator[Target]:
    kube = Kube.from_kubeconfig(args.kubeconfig)
    tenant = make_tenant(kube)
    api = ApiProcess(Path(args.kubeconfig), work / "api.log", gateway_url=f"file:{args.routes}")
    try:
        ns = tenant["namespace"]
        kube.create(
            make_md(NAME).namespace(ns).replicas(args.replicas).storage("5Gi", "encrypted-local")
            .manifest()
        )  # fmt: skip
        wait_replicas(kube, ns, args.replicas, timeout=180)
        api.start()

        def pages() -> list[str]:
            with urllib.request.urlopen(f"{api.root}/metrics", timeout=10) as response:
                return [response.read().decode()]

        yield Target(kube, ns, f"{api.base_url}/completions", headers_of(tenant), None, pages,
                     None)  # fmt: skip
    finally:
        api.stop()
        admin.delete_tenant(kube, tenant["name"], force=True)


# -- the real node (real vLLM) -----------------------------------------------------------------


def deliver_bench_model(kube: Kube, namespace: str) -> str:
    """The bench model (made once, cached by ``make images``' cache) in a claim of its own;
    its ``pvc://`` URI."""
    made = subprocess.run(
        [sys.executable, "-m", "paitient_images", "bench-model"], cwd=REPO, check=True,
        capture_output=True, text=True,
    )  # fmt: skip
    model = Path(made.stdout.strip().splitlines()[-1])
    claim = "bench-model"
    kube.create({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": claim, "namespace": namespace},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "encrypted-local",
                 "resources": {"requests": {"storage": "1Gi"}}},
    })  # fmt: skip

    def volume() -> str | None:
        found = kube.get("v1", "PersistentVolumeClaim", claim, namespace=namespace) or {}
        return (found.get("spec") or {}).get("volumeName")

    pv = kube.get("v1", "PersistentVolume", wait_for(volume, timeout=60, what="the claim bound"))
    target = Path(pv["spec"]["hostPath"]["path"]) / "bench-llama"  # type: ignore[index]
    shutil.copytree(model, target)
    for path in (target, *target.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)  # vLLM runs as uid 1000
    return f"pvc://{claim}/bench-llama"


@contextlib.contextmanager
def real_node(args: argparse.Namespace, work: Path) -> Iterator[Target]:
    from paitient_localcluster.stack.lifecycle import FRONT_DOOR_SERVICE, SYSTEM_NAMESPACE, up  # noqa: PLC0415
    from paitient_localcluster.stack.tiny_model import MODEL_URI, fill_model_claim  # noqa: PLC0415

    base_url, ca_bundle, kubeconfig = up()
    kube = Kube.from_kubeconfig(str(kubeconfig))
    tenant = make_tenant(kube)
    ns = tenant["namespace"]
    try:
        if args.model == "bench":
            uri, length = deliver_bench_model(kube, ns), 4096
        else:
            fill_model_claim(kube, ns)
            uri, length = MODEL_URI, 2048
        kube.create(
            make_md(NAME).namespace(ns).cpu_only().resources(args.cpu, args.memory).uri(uri)
            .storage("1Gi", "encrypted-local").replicas(args.replicas).max_model_len(length)
            .extra_args("--num-gpu-blocks-override", str(args.kv_blocks))
            .routing(strategy="prefix").manifest()
        )  # fmt: skip
        started = time.monotonic()
        wait_replicas(kube, ns, args.replicas, timeout=1200)
        print(f"[bench] {args.replicas} replicas of real vLLM Ready in "
              f"{time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)  # fmt: skip

        def pods(namespace: str, selector: str) -> list[dict[str, Any]]:
            found = kube.list("v1", "Pod", namespace=namespace, label_selector=selector)
            return [p for p in found if p["status"].get("phase") == "Running"]

        def vllm_counters() -> dict[str, float]:
            total: dict[str, float] = {}
            for pod in pods(ns, f"{MD_LABEL}={NAME}"):
                done = exec_python(kubeconfig, ns, pod["metadata"]["name"], VLLM_COUNTERS,
                                   container="vllm")  # fmt: skip
                for name, value in json.loads(done.stdout).items():
                    total[name] = total.get(name, 0.0) + value
            return total

        service = kube.get("v1", "Service", FRONT_DOOR_SERVICE, namespace=SYSTEM_NAMESPACE) or {}
        port_name = service["spec"]["ports"][0]["targetPort"]
        selector = ",".join(f"{k}={v}" for k, v in service["spec"]["selector"].items())

        def front_door_metrics() -> list[str]:
            pages = []
            for pod in pods(SYSTEM_NAMESPACE, selector):
                port = next(p["containerPort"] for c in pod["spec"]["containers"]
                            for p in c.get("ports") or [] if p.get("name") == port_name)  # fmt: skip
                pages.append(exec_python(kubeconfig, SYSTEM_NAMESPACE, pod["metadata"]["name"],
                             FRONT_DOOR_METRICS, f"https://127.0.0.1:{port}/metrics").stdout)  # fmt: skip
            return pages

        context = client_context(Path(ca_bundle).read_text())
        yield Target(kube, ns, f"{base_url}/completions", headers_of(tenant), context,
                     front_door_metrics, vllm_counters)  # fmt: skip
    finally:
        admin.delete_tenant(kube, tenant["name"], force=True)
        # The next model's replicas start only once these have let go of their memory.
        wait_for(lambda: not kube.list("v1", "Pod", namespace=ns, label_selector=MD_LABEL),
                 timeout=300, interval=2, what="the model pods gone")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--smoke", action="store_true", help="seconds, on the simulated cluster")
    parser.add_argument("--kubeconfig", help="--smoke: the cluster the test runs")
    parser.add_argument("--routes", help="--smoke: its local data plane's routes file")
    parser.add_argument("--model", choices=("tiny", "bench", "both"), default="both")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--cpu", default="500m")
    parser.add_argument("--memory", default="5Gi")
    parser.add_argument("--kv-blocks", type=int, help="KV-cache blocks per replica")
    parser.add_argument("--templates", type=int, default=8, help="long system prompts")
    parser.add_argument("--template-words", type=int, help="words per template")
    parser.add_argument("--requests", type=int, default=200, help="per strategy")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--load-bound", type=float, default=1.25)
    args = parser.parse_args()
    if args.smoke and not (args.kubeconfig and args.routes):
        parser.error("--smoke runs on a test's cluster: give --kubeconfig and --routes")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.smoke:
        args.requests, args.templates = 24, 3
    models = (
        ["smoke"] if args.smoke else (["tiny", "bench"] if args.model == "both" else [args.model])
    )
    summary: dict[str, Any] = {"replicas": args.replicas, "runs": {}}
    chosen = (args.kv_blocks, args.template_words)
    for model in models:
        args.model = model
        defaults = SIZES.get(model, SIZES["smoke"])
        args.kv_blocks, args.template_words = (
            c or d for c, d in zip(chosen, defaults, strict=True)
        )
        with tempfile.TemporaryDirectory(prefix="paitient-bench-routing-") as tmp:
            setup = simulated if args.smoke else real_node
            with setup(args, Path(tmp)) as target:
                rows = [run_strategy(target, s, args) for s in STRATEGIES]
        for row in rows:
            print(f"{model:6} {row['strategy']:11} TTFT p50 {row['ttft_p50_ms']} ms, p90 "
                  f"{row['ttft_p90_ms']} ms; {row['tokens_per_s']} tokens/s; cache hit "
                  f"{row.get('vllm_prefix_cache_hit_rate')} (vLLM), "
                  f"{row['cached_share_from_usage']} (answers); over the bound "
                  f"{row['picks_over_load_bound']}, spilled {row['picks_spilled']}; errors "
                  f"{row['errors']}", flush=True)  # fmt: skip
        by = {r["strategy"]: r for r in rows}
        rr, prefix = by["round-robin"]["ttft_p90_ms"], by["prefix"]["ttft_p90_ms"]
        gain = round(rr / prefix, 2) if rr and prefix else None
        print(f"{model:6} TTFT p90, round robin over prefix: {gain}x", flush=True)
        summary["runs"][model] = {"strategies": rows, "ttft_p90_round_robin_over_prefix": gain}
    print_summary(__file__, args.smoke, **summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
