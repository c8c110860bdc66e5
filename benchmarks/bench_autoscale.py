"""Elastic serving: how long a request waits when its model starts from zero, and replicas and
latency over time under a step of load.

    make bench-autoscale [ARGS="--rounds 3"]     # real vLLM on the real node, the chart's pods
    python benchmarks/bench_autoscale.py --smoke  # the data plane's stand-ins, in a minute

Real mode: the local cluster (started if none runs; the vllm-cpu image imported into its real
node), the chart installed as `make up` installs it (operator and front door pods), a tenant,
the tiny model in a claim. Each round:

- **apply -> first token (cold cache)**: a new ModelDeployment (``minReplicas: 0``, a fresh
  model-cache volume) created, and at once a streamed completion sent through the front door,
  which holds it while one replica starts; the time from the create to the first token's event;
- **0 -> first token (warm cache)**: the same deployment back at zero (idle past its
  scale-down delay), a streamed completion: the time to its first token. Its volume keeps what
  the first start compiled.

Each start is broken down from what the cluster and vLLM say: the wake seen by the operator,
the pod created, scheduled, its vLLM container started, vLLM's own log (API server up, engine
process, worker, model loaded, warm-up/compile done, serving), the pod Ready, the first token.
The medians are printed as Markdown.

Then the **step**: a deployment with ``minReplicas: 1``, ``maxReplicas: 2``, target 2 in
flight; 1 client, then 6, then none; every 2 s the replicas asked for and Ready, and every
answer's latency. Drawn as a PNG (``--png``, default ``docs/bench-autoscale.png``; smoke:
a temporary file) by matplotlib.

``--smoke``: the same flows on the local data plane (gateways in front of the vLLM stand-in on
simulated GPU nodes), short phases; tests/integration/test_bench_autoscale_smoke.py runs it.
The last line printed is a JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import ssl
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402

from benchmarks.summary import print_summary  # noqa: E402
from paitient_cli import admin  # noqa: E402
from paitient_common.kubeapi import Kube  # noqa: E402
from paitient_common.resources.install import install_crds  # noqa: E402
from paitient_localcluster.cluster import LocalCluster  # noqa: E402
from paitient_localcluster.stack.tiny_model import MODEL_URI, fill_model_claim  # noqa: E402
from tests.integration.autoscaling_load import FrontDoorLoad, pace_standin  # noqa: E402
from tests.integration.frontdoor_process import ApiProcess, client_trust  # noqa: E402
from tests.integration.node_pods import kubectl  # noqa: E402
from tests.integration.operator_process import OperatorProcess  # noqa: E402
from tests.integration.release import installed_release  # noqa: E402
from tests.integration.stack_helpers import make_tenant, start_data_plane  # noqa: E402
from tests.integration.waiting import wait_for  # noqa: E402

MD = ("paitient.ai/v1alpha1", "ModelDeployment")
DEFAULT_PNG = REPO / "docs" / "bench-autoscale.png"
VALUES = (
    "--set", "operator.config.autoscaling.intervalSeconds=2",
    "--set", "operator.config.drain.shutdownDelaySeconds=2",
    "--set", "operator.config.drain.shutdownTimeoutSeconds=120",
    "--set", "frontDoor.holdSeconds=900",
)  # fmt: skip
# vLLM's own log lines that mark its start (vLLM 0.32.0), in order.
VLLM_MILESTONES = (
    ("api server up", r"version 0\.32"),
    ("engine process up", r"Initializing a V1 LLM engine"),
    ("worker loads the model", r"Starting to load model"),
    ("warm-up (compile) starts", r"Warming up model"),
    ("warm-up done", r"Warming up done"),
    ("serving", r"Starting vLLM server"),
)
LOG_TIME = re.compile(r"(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)")


@dataclass
class Scene:
    """Where the benchmark runs: the cluster, the front door, a tenant, how deployments look."""

    kube: Kube
    kubeconfig: Path
    root: str  # the front door (scheme://host:port)
    ssl: ssl.SSLContext | None
    tenant: dict[str, str]
    spec: Callable[[dict[str, Any]], dict[str, Any]]  # autoscaling -> spec
    real: bool
    timeout: float
    # The local data plane's routes file (smoke): where each deployment's stand-in is paced.
    routes: Path | None = None

    @property
    def namespace(self) -> str:
        return self.tenant["namespace"]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tenant['key']}",
                "X-Client-ID": self.tenant["client_id"]}  # fmt: skip

    def create(self, name: str, autoscaling: dict[str, Any]) -> float:
        """Create the deployment; the wall-clock time just before (epoch seconds)."""
        body = {"apiVersion": MD[0], "kind": MD[1],
                "metadata": {"name": name, "namespace": self.namespace},
                "spec": self.spec(autoscaling)}  # fmt: skip
        started = time.time()
        self.kube.create(body)
        return started

    def status(self, name: str) -> dict[str, Any]:
        found = self.kube.get(*MD, name, namespace=self.namespace) or {}
        return dict(found.get("status") or {})

    def delete(self, name: str) -> None:
        self.kube.delete(*MD, name, namespace=self.namespace)
        wait_for(lambda: not self.pods(name), timeout=600, interval=1, what=f"{name}'s pods gone")

    def pods(self, name: str) -> list[dict[str, Any]]:
        return self.kube.list("v1", "Pod", namespace=self.namespace,
                              label_selector=f"paitient.ai/modeldeployment={name}")  # fmt: skip


# -- the first token ------------------------------------------------------------------------------


async def first_token(scene: Scene, name: str) -> float:
    """Send a streamed completion; the wall-clock time its first token's event arrived."""
    body = {"model": name, "prompt": "Hello", "max_tokens": 4, "stream": True}
    timeout = aiohttp.ClientTimeout(total=scene.timeout)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(
            f"{scene.root}/v1/completions", json=body, headers=scene.headers, ssl=scene.ssl
        ) as response,  # fmt: skip
    ):
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {await response.text()}")
        async for raw in response.content:
            line = raw.decode().strip()
            if (
                line.startswith("data:")
                and line != "data: [DONE]"
                and json.loads(line[5:]).get("choices")
            ):
                return time.time()
    raise RuntimeError("the stream ended without a token")


def breakdown(scene: Scene, name: str, since: float, token_at: float) -> dict[str, float]:
    """Seconds from ``since`` to each step of the start that served the first token."""
    steps: dict[str, float] = {}
    autoscaling = scene.status(name).get("autoscaling") or {}
    if autoscaling.get("wakeSeenAt"):
        steps["wake seen by the operator"] = _epoch(autoscaling["wakeSeenAt"]) - since
    pods = sorted(scene.pods(name), key=lambda p: p["metadata"]["creationTimestamp"])
    if pods:
        pod = pods[-1]
        steps["pod created"] = _after(pod["metadata"]["creationTimestamp"], since)
        conditions = {c["type"]: c for c in pod["status"].get("conditions") or []}
        if "PodScheduled" in conditions:
            steps["pod scheduled"] = _after(conditions["PodScheduled"]["lastTransitionTime"], since)
        for container in pod["status"].get("containerStatuses") or []:
            started = (container.get("state", {}).get("running") or {}).get("startedAt")
            if container["name"] == "vllm" and started:
                steps["vLLM container started"] = _after(started, since)
        if scene.real:
            steps.update(_vllm_milestones(scene, pod, since))
        if "Ready" in conditions and conditions["Ready"]["status"] == "True":
            steps["pod Ready (gateway and vLLM)"] = _after(
                conditions["Ready"]["lastTransitionTime"], since
            )
    steps["first token at the client"] = token_at - since
    return steps


def _vllm_milestones(scene: Scene, pod: dict[str, Any], since: float) -> dict[str, float]:
    done = kubectl(scene.kubeconfig, "-n", scene.namespace, "logs", pod["metadata"]["name"],
                   "-c", "vllm")  # fmt: skip
    year = datetime.fromtimestamp(since, UTC).year
    found: dict[str, float] = {}
    for label, pattern in VLLM_MILESTONES:
        for line in done.stdout.splitlines():
            match = LOG_TIME.search(line) if re.search(pattern, line) else None
            if match:
                month, day, hour, minute, second = map(int, match.groups())
                # vLLM logs local time, to the second; this machine's clock is UTC.
                moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
                found[f"vLLM: {label}"] = moment.timestamp() - since
                break
    return found


def cold_and_warm_round(scene: Scene, index: int, delay: str) -> dict[str, Any]:
    name = f"start-{index}-{uuid.uuid4().hex[:4]}"
    created = scene.create(name, {"minReplicas": 0, "maxReplicas": 1, "scaleDownDelay": delay})
    try:
        token = asyncio.run(first_token(scene, name))
        cold = breakdown(scene, name, created, token)
        wait_for(
            lambda: scene.status(name).get("phase") == "ScaledToZero" and not scene.pods(name),
            timeout=scene.timeout, interval=1, what="back at zero",
        )  # fmt: skip
        sent = time.time()
        token = asyncio.run(first_token(scene, name))
        warm = breakdown(scene, name, sent, token)
    finally:
        scene.delete(name)
    return {"cold": cold, "warm": warm}


# -- the step -------------------------------------------------------------------------------------


@dataclass
class Timeline:
    started: float = field(default_factory=time.monotonic)
    samples: list[tuple[float, int, int, int]] = field(
        default_factory=list
    )  # t, asked, ready, clients
    answers: list[tuple[float, float]] = field(default_factory=list)  # t (start), seconds
    # Each phase's (begin, end) as it ran: a phase ends once its clients' last answers are in,
    # so the next one starts a little later than the nominal durations add up to.
    phase_bounds: list[tuple[float, float]] = field(default_factory=list)


async def step(scene: Scene, name: str, phases: list[tuple[int, float]]) -> Timeline:
    """Run ``phases`` (clients, seconds) against ``name``, sampling every 2 s."""
    line = Timeline()
    clients = 0
    loads: list[FrontDoorLoad] = []

    async def sample() -> None:
        while True:
            status = await asyncio.to_thread(scene.status, name)
            asked = int((status.get("autoscaling") or {}).get("desiredReplicas") or 0)
            line.samples.append((time.monotonic() - line.started, asked,
                                 int(status.get("readyReplicas") or 0), clients))  # fmt: skip
            await asyncio.sleep(2)

    sampler = asyncio.ensure_future(sample())
    try:
        for count, seconds in phases:
            clients = count
            begin = time.monotonic() - line.started
            load = FrontDoorLoad(scene.root, scene.headers, name, clients=count,
                                 max_tokens=100 if scene.real else 30, ssl=scene.ssl)  # fmt: skip
            loads.append(load)
            running = asyncio.ensure_future(load.run())
            await asyncio.sleep(seconds)
            load.stop()
            await running
            line.phase_bounds.append((begin, time.monotonic() - line.started))
    finally:
        sampler.cancel()
    for load in loads:
        if load.failures:
            raise RuntimeError(f"{len(load.failures)} failed requests, e.g. {load.failures[0]}")
        line.answers += [(a.started - line.started, a.seconds) for a in load.answers]
    return line


def draw(line: Timeline, png: Path, title: str) -> None:
    import matplotlib  # noqa: PLC0415 - the benchmark's own dependency

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 6))
    t = [s[0] for s in line.samples]
    top.step(t, [s[3] for s in line.samples], where="post", label="clients", color="grey")
    top.step(t, [s[1] for s in line.samples], where="post", label="replicas asked for")
    top.step(t, [s[2] for s in line.samples], where="post", label="replicas Ready")
    top.set_ylabel("count")
    top.legend(loc="upper left")
    top.set_title(title)
    bottom.scatter([a[0] for a in line.answers], [a[1] for a in line.answers], s=6)
    bottom.set_ylabel("request latency (s)")
    bottom.set_xlabel("seconds since the start")
    figure.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=100)
    plt.close(figure)


def step_figures(line: Timeline, phases: list[tuple[int, float]]) -> dict[str, Any]:
    """Per phase: latency p50 and max, the most replicas Ready, and how long after the phase
    began the replicas reached their peak."""
    out = []
    for (clients, seconds), (begin, end) in zip(phases, line.phase_bounds, strict=True):
        answers = [a[1] for a in line.answers if begin <= a[0] < end]
        ready = [(s[0], s[2]) for s in line.samples if begin <= s[0] < end]
        peak = max((r for _, r in ready), default=0)
        reached = next((t - begin for t, r in ready if r == peak), None)
        out.append({
            "clients": clients, "seconds": seconds, "answers": len(answers),
            "p50": statistics.median(answers) if answers else None,
            "max": max(answers) if answers else None,
            "most replicas Ready": peak, "peak reached after": reached,
        })  # fmt: skip
    return {"phases": out}


# -- the scenes -------------------------------------------------------------------------------------


def _cpu_spec(autoscaling: dict[str, Any]) -> dict[str, Any]:
    return {"model": {"uri": MODEL_URI}, "useGpu": False,
            "resources": {"cpu": "500m", "memory": "6Gi"}, "runtime": {"maxModelLen": 512},
            "storage": {"size": "1Gi", "storageClassName": "encrypted-local"},
            "autoscaling": autoscaling}  # fmt: skip


def _gpu_spec(autoscaling: dict[str, Any]) -> dict[str, Any]:
    return {"model": {"name": "org/standin"}, "useGpu": True, "gpu": {"count": 1},
            "storage": {"size": "1Gi", "storageClassName": "encrypted-local"},
            "autoscaling": autoscaling}  # fmt: skip


@contextmanager
def real_scene() -> Iterator[Scene]:
    cluster = LocalCluster(log=lambda m: print(m, file=sys.stderr, flush=True))
    kubeconfig = cluster.up()
    kube = Kube.from_kubeconfig(str(kubeconfig))
    install_crds(kube)
    with installed_release(kubeconfig, kube, VALUES) as release:
        tenant = make_tenant(kube)
        try:
            fill_model_claim(kube, tenant["namespace"])
            context = ssl.create_default_context(cafile=str(release.ca_bundle))
            yield Scene(kube, kubeconfig, release.root, context, tenant, _cpu_spec, True, 900)
        finally:
            admin.delete_tenant(kube, tenant["name"], force=True)


@contextmanager
def session_scene(kubeconfig: Path, front_door: str, routes: Path | None) -> Iterator[Scene]:
    """The data plane, operator and front door a test session already runs (the smoke test)."""
    kube = Kube.from_kubeconfig(str(kubeconfig))
    tenant = make_tenant(kube, tier="enterprise")
    try:
        yield Scene(
            kube, kubeconfig, front_door, client_trust(), tenant, _gpu_spec, False, 120, routes
        )
    finally:
        admin.delete_tenant(kube, tenant["name"], force=True)


@contextmanager
def smoke_scene(kubeconfig: Path, work: Path) -> Iterator[Scene]:
    """The data plane, an operator and a front door of its own, on the cluster given."""
    kube = Kube.from_kubeconfig(str(kubeconfig))
    install_crds(kube)
    plane, routes = start_data_plane(kubeconfig, work)
    own = kubeconfig.parent / "operator.kubeconfig"
    operator = OperatorProcess(own if own.is_file() else kubeconfig, work / "operator.log", env={
        "PAITIENT_DEFAULT_STORAGE_CLASS": "encrypted-local",
        "PAITIENT_AUTOSCALING_GATEWAY_ADDRESSES": f"file:{routes}",
        "PAITIENT_AUTOSCALING_INTERVAL_SECONDS": "1",
        "PAITIENT_DRAIN_SHUTDOWN_DELAY_SECONDS": "1",
    })  # fmt: skip
    api = ApiProcess(kubeconfig, work / "api.log", gateway_url=f"file:{routes}")
    tenant = None
    try:
        with OperatorProcess.others_paused():
            operator.start()
            api.start()
            tenant = make_tenant(kube, tier="enterprise")
            yield Scene(
                kube, kubeconfig, api.root, client_trust(), tenant, _gpu_spec, False, 120, routes
            )
    finally:
        if tenant is not None:
            admin.delete_tenant(kube, tenant["name"], force=True)
        api.stop()
        operator.stop()
        plane.terminate()
        plane.wait(timeout=30)


def run(scene: Scene, rounds: int, png: Path) -> dict[str, Any]:
    delay = "60s" if scene.real else "5s"
    starts = [cold_and_warm_round(scene, n, delay) for n in range(rounds)]
    phases = [(1, 60.0), (6, 240.0), (0, 150.0)] if scene.real else [(1, 8.0), (6, 25.0), (0, 20.0)]
    name = f"step-{uuid.uuid4().hex[:4]}"
    scene.create(name, {"minReplicas": 1, "maxReplicas": 2, "target": {"value": 2},
                        "stabilizationWindow": "10s" if scene.real else "2s",
                        "scaleDownDelay": "60s" if scene.real else "8s"})  # fmt: skip
    try:
        wait_for(lambda: int(scene.status(name).get("readyReplicas") or 0) >= 1,
                 timeout=scene.timeout, interval=1, what="the step's first replica")  # fmt: skip
        if scene.routes is not None:
            # An unpaced stand-in answers in milliseconds: six clients would hold about one
            # request in flight, on a fast machine fewer. 30 tokens at 30/s: 1 s an answer.
            pace_standin(scene.routes, scene.namespace, name, 30)
        line = asyncio.run(step(scene, name, phases))
    finally:
        scene.delete(name)
    where = "real vLLM (tiny model, 500m CPU each)" if scene.real else "vLLM stand-in"
    draw(line, png, f"Step load on {where}: replicas and latency")
    summary = {
        "cold": _medians([s["cold"] for s in starts]),
        "warm": _medians([s["warm"] for s in starts]),
        "step": step_figures(line, phases),
        "png": str(png),
    }
    print(markdown(summary, rounds))
    return summary


def _medians(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = [k for k in rows[0] if all(k in r for r in rows)]
    return {k: round(statistics.median(r[k] for r in rows), 1) for k in keys}


def markdown(summary: dict[str, Any], rounds: int) -> str:
    lines = [f"| step (seconds since the create / the request; median of {rounds}) | "
             "apply -> first token, cold cache | 0 -> first token, warm cache |",
             "|---|---|---|"]  # fmt: skip
    for key in summary["cold"] | summary["warm"]:
        cold, warm = summary["cold"].get(key, ""), summary["warm"].get(key, "")
        lines.append(f"| {key} | {cold} | {warm} |")
    lines += ["", "| clients | seconds | answers | latency p50 (s) | max (s) | most replicas Ready | peak after (s) |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for p in summary["step"]["phases"]:
        fmt = lambda v: "" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))  # noqa: E731
        lines.append(f"| {p['clients']} | {p['seconds']:.0f} | {p['answers']} | {fmt(p['p50'])} | "
                     f"{fmt(p['max'])} | {p['most replicas Ready']} | {fmt(p['peak reached after'])} |")  # fmt: skip
    return "\n".join(lines)


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _after(stamp: str, since: float) -> float:
    """Seconds from ``since`` to a Kubernetes timestamp. Those are whole seconds (truncated), so
    a step in the same second as ``since`` would read up to 1 s before it: it counts as 0 (every
    step of a start follows the request that caused it)."""
    return max(_epoch(stamp) - since, 0.0)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="stand-ins on the data plane")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--png", type=Path, default=None)
    parser.add_argument("--kubeconfig", type=Path, default=None, help="smoke: the cluster to use")
    parser.add_argument(
        "--front-door",
        default=None,
        help="smoke: the front door of a running data plane and operator (a test session's)",
    )
    parser.add_argument(
        "--routes", type=Path, default=None, help="smoke: that data plane's routes file"
    )
    args = parser.parse_args(argv)
    if args.smoke and args.front_door:
        cluster = args.kubeconfig or LocalCluster().up()
        with session_scene(cluster, args.front_door, args.routes) as scene:
            summary = run(scene, 1, args.png or Path(tempfile.mkdtemp()) / "step.png")
    elif args.smoke:
        kubeconfig = args.kubeconfig or LocalCluster().up()
        with tempfile.TemporaryDirectory() as tmp, smoke_scene(kubeconfig, Path(tmp)) as scene:
            summary = run(scene, min(args.rounds, 1), args.png or Path(tmp) / "step.png")
            if args.png is None:
                summary["png_bytes"] = (Path(tmp) / "step.png").stat().st_size
    else:
        with real_scene() as scene:
            summary = run(scene, args.rounds, args.png or DEFAULT_PNG)
    print_summary(__file__, args.smoke, **summary)
    return summary


if __name__ == "__main__":
    main()
