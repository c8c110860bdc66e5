"""Gateway overhead and throughput against the vLLM stand-in, and against LiteLLM's proxy.

``make bench-gateway`` (tools from ``scripts/install-bench-tools.sh``). In one run, with the same
stand-in backend and the same load generator, it measures ``POST /v1/completions`` (JSON and
SSE) four ways:

- ``direct``: wrk → the stand-in;
- ``gateway``: wrk → ``paitient_gateway`` over plain HTTP (``--insecure-plaintext``; key auth, a
  tier with limits far above the load, the usage ledger and the audit line on) → the stand-in;
- ``gateway-tls``: the same gateway serving TLS as in a model pod (an ECDSA P-256 certificate
  from the operator's own X.509 code; TLS 1.3), so the two differ by TLS alone; both gateways
  are also driven with ``Connection: close`` (a new connection, hence a full handshake, per
  request: the worst case, as the front door keeps its connections to gateways open);
- ``litellm``: wrk → LiteLLM's proxy (``litellm[proxy]==1.100.0``, master-key auth, no database,
  no callbacks, no access log) → the stand-in.

Placement on the 2 cores: wrk is pinned to core 0 (``taskset``); the server under test (gateway
or LiteLLM) to core 1, alone; the stand-in to core 0 beside wrk in every run, so the backend is
the same process in the same place for all three and never takes CPU from the server under test.
The stand-in runs on uvloop with no added latency and no token pacing.

For each target and mode: the highest throughput wrk reaches with a few connections (closed
loop), then latency at fixed request rates (wrk 4 has no ``-R``: ``benchmarks/wrk/completions.lua``
paces sends on a constant schedule; see there). A rate above 80 % of a target's measured maximum
is not run for it. Every measurement is bounded (``--duration``, default 10 s) and records the
CPU used on the machine by processes that are not ours (a test suite may share the cores).
Then py-spy samples the gateway under closed-loop load and the script prints where its time goes.

Every server listens on 127.0.0.1 and every process started here is stopped in a ``finally``,
also on SIGTERM/SIGINT and when the whole run exceeds ``--budget`` seconds. The last line is a
JSON summary; ``--smoke`` runs every step for a second (wrk and taskset needed; LiteLLM only when
installed), which a test does.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.summary import print_summary
from paitient_common.apikeys import generate_api_key, new_record
from paitient_common.tls import client_context
from paitient_operator.certificates import x509

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / ".local" / "bench"
LITELLM = BENCH_DIR / "litellm-venv" / "bin" / "litellm"
PYSPY = BENCH_DIR / "tools-venv" / "bin" / "py-spy"
LUA = ROOT / "benchmarks" / "wrk" / "completions.lua"
RESULTS = BENCH_DIR / "gateway-results.json"
PYTHON = sys.executable
MODEL = "bench-model"
LOAD_CORE, SERVER_CORE = 0, 1
TENANT, CLIENT_ID, NAMESPACE = "bench", "bench-client", "tenant-bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Never handed to a server here: LiteLLM would try a database, the gateway a cluster.
UNSET = frozenset({"DATABASE_URL", "KUBECONFIG"})


@dataclass
class Trust:
    """What this run's clients trust for https targets (set once the gateway's CA is made)."""

    context: ssl.SSLContext | None = None


TRUST = Trust()
GOAL_ADDED_P50_MS, GOAL_ADDED_P99_MS, GOAL_THROUGHPUT_X = 1.0, 5.0, 5.0

# The stand-in as it is, on uvloop (the gateway and LiteLLM use uvloop too).
STANDIN_BOOT = (
    "import asyncio, runpy, sys, uvloop\n"
    "asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())\n"
    "sys.argv = ['vllm_standin', *sys.argv[1:]]\n"
    "runpy.run_module('tests.standins.vllm_standin', run_name='__main__')\n"
)


class Interrupted(BaseException):
    """SIGTERM, SIGINT or the run's time budget: unwinds through every ``finally``."""


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# -- processes -------------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log: Path
    file: IO[bytes]

    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:]


class Procs:
    """Every process this run starts, each in its own session, all stopped by ``stop_all``."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.items: list[Proc] = []

    def start(
        self, name: str, args: list[str], core: int, port: int, env: dict[str, str] | None = None
    ) -> Proc:
        log = self.logs / f"{name}.log"
        f = log.open("ab")
        popen = subprocess.Popen(
            ["taskset", "-c", str(core), *args],
            cwd=ROOT,
            stdout=f,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={k: v for k, v in {**os.environ, **(env or {})}.items() if k not in UNSET},
            start_new_session=True,
        )
        proc = Proc(name, popen, port, log, f)
        self.items.append(proc)
        return proc

    def stop(self, proc: Proc) -> None:
        if proc.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGTERM)
            try:
                proc.popen.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGKILL)
                proc.popen.wait(10)
        # Children the server may have left in its session (none expected).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.popen.pid, signal.SIGKILL)
        proc.file.close()
        if proc in self.items:
            self.items.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.items)):
            with contextlib.suppress(Exception):
                self.stop(proc)


def wait_http(url: str, proc: Proc, timeout: float, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
        with contextlib.suppress(OSError):
            request = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(request, timeout=2, context=TRUST.context) as r:
                if r.status == 200:
                    return
        time.sleep(0.2)
    raise TimeoutError(f"{proc.name}: {url} did not answer 200 within {timeout:.0f} s")


# -- CPU accounting --------------------------------------------------------------------------------


def core_jiffies() -> dict[str, tuple[int, int]]:
    """(busy, total) jiffies per core from /proc/stat."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            name, *vals = line.split()
            v = [int(x) for x in vals[:8]]
            idle = v[3] + v[4]
            out[name] = (sum(v) - idle, sum(v))
    return out


def session_cpu(sid: int) -> float:
    """CPU seconds (user + system) of every live process in session ``sid``."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == sid:  # field 6: session
            total += int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime
    return total / CLK_TCK


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass
class CpuWindow:
    """CPU use during one measurement, in % of one core."""

    server: float = 0.0
    standin: float = 0.0
    wrk: float = 0.0
    others: float = 0.0  # everything on the machine that this run did not start
    core0_busy: float = 0.0
    core1_busy: float = 0.0


@contextlib.contextmanager
def cpu_window(server: Proc | None, standin: Proc) -> Iterator[CpuWindow]:
    win = CpuWindow()
    t0, j0 = time.monotonic(), core_jiffies()
    s0 = session_cpu(server.popen.pid) if server else 0.0
    b0 = session_cpu(standin.popen.pid)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    yield win
    wall = time.monotonic() - t0
    j1 = core_jiffies()
    s1 = session_cpu(server.popen.pid) if server else 0.0
    b1 = session_cpu(standin.popen.pid)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    busy = {k: (j1[k][0] - j0[k][0]) / CLK_TCK for k in j1}
    win.server, win.standin, win.wrk = (
        100 * (s1 - s0) / wall,
        100 * (b1 - b0) / wall,
        100 * wrk_cpu / wall,
    )
    win.core0_busy = 100 * busy.get("cpu0", 0.0) / wall
    win.core1_busy = 100 * busy.get("cpu1", 0.0) / wall
    ours = (s1 - s0) + (b1 - b0) + wrk_cpu
    win.others = max(0.0, 100 * (sum(busy.values()) - ours) / wall)


# -- load ------------------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    url: str
    auth: str
    server: Proc | None  # None for direct: the stand-in is the server
    handshakes: bool = False  # also measure a new connection per request (the gateways)


@dataclass
class Measurement:
    target: str
    mode: str  # "json" or "stream"
    kind: str  # "max", "rate", or "close" (max with a new connection per request)
    connections: int
    rate: float  # target rate, 0 for closed loop
    rps: float
    requests: int
    errors: int
    late: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    cpu: CpuWindow = field(default_factory=CpuWindow)
    attempts: int = 1

    @property
    def per_core(self) -> float:
        """Requests per second per core of CPU the server under test used (the stand-in when
        direct): throughput normalised for the CPU other processes took from it."""
        cpu = self.cpu.server if self.target != "direct" else self.cpu.standin
        return self.rps * 100 / cpu if cpu > 0 else 0.0


def run_wrk(
    target: Target,
    stream: bool,
    connections: int,
    seconds: float,
    rate: float = 0.0,
    close: bool = False,
) -> dict[str, Any]:
    env = {
        **os.environ,
        "BENCH_MODEL": MODEL,
        "BENCH_STREAM": "1" if stream else "0",
        "BENCH_AUTH": target.auth,
        "BENCH_CLIENT_ID": CLIENT_ID,
        "BENCH_RATE": str(rate),
        "BENCH_THREADS": "1",
        "BENCH_CLOSE": "1" if close else "0",
    }
    cmd = ["taskset", "-c", str(LOAD_CORE), "wrk", "-t1", f"-c{connections}"]
    cmd += [f"-d{seconds:g}s", "--timeout", "5s", "-s", str(LUA), target.url]
    done = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=seconds + 30, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
            return result
    raise RuntimeError(f"wrk gave no result (exit {done.returncode}):\n{done.stdout}{done.stderr}")


def measure(
    target: Target,
    standin: Proc,
    mode: str,
    kind: str,
    connections: int,
    seconds: float,
    rate: float = 0.0,
) -> Measurement:
    with cpu_window(target.server, standin) as cpu:
        r = run_wrk(target, mode == "stream", connections, seconds, rate, close=kind == "close")
    errors = sum(
        r[k] for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout")
    )
    m = Measurement(
        target=target.name,
        mode=mode,
        kind=kind,
        connections=connections,
        rate=rate,
        rps=r["requests"] / (r["duration_us"] / 1e6),
        requests=r["requests"],
        errors=errors,
        late=r["late"],
        p50_ms=r["p50_us"] / 1000,
        p90_ms=r["p90_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        p999_ms=r["p999_us"] / 1000,
        max_ms=r["max_us"] / 1000,
        cpu=cpu,
    )
    what = {"rate": f"rate {rate:g}/s", "close": "conn per req"}.get(kind, "closed loop")
    print(
        f"  {target.name:11} {mode:6} {what:14} c={connections:<3} {m.rps:8.0f} req/s  "
        f"p50 {m.p50_ms:7.3f} ms  p99 {m.p99_ms:7.3f} ms  errors {errors}  late {m.late}  "
        f"| CPU server {cpu.server:3.0f}% stand-in {cpu.standin:3.0f}% wrk {cpu.wrk:3.0f}% "
        f"others {cpu.others:3.0f}%",
        flush=True,
    )
    return m


def measure_quietest(
    target: Target, standin: Proc, mode: str, args: argparse.Namespace, rate: float
) -> Measurement:
    """A fixed-rate run, repeated (up to ``--attempts``) while other processes used more than
    ``--quiet`` % of a core during it; the quietest attempt counts. Tail latency on 2 shared
    cores is mostly other processes' scheduling, which this keeps out of the comparison."""
    runs: list[Measurement] = []
    for _ in range(args.attempts):
        conns = args.rate_connections
        runs.append(measure(target, standin, mode, "rate", conns, args.duration, rate))
        if runs[-1].cpu.others <= args.quiet:
            break
    best = min(runs, key=lambda m: m.cpu.others)
    best.attempts = len(runs)
    return best


def check_target(target: Target) -> None:
    """One JSON and one SSE completion must come back whole before any load."""
    headers = {"Authorization": f"Bearer {target.auth}", "X-Client-ID": CLIENT_ID}
    headers["Content-Type"] = "application/json"
    for stream in (False, True):
        body = {"model": MODEL, "prompt": "the quick brown fox", "max_tokens": 4, "stream": stream}
        request = urllib.request.Request(
            f"{target.url}/v1/completions", data=json.dumps(body).encode(), headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30, context=TRUST.context) as r:
                text = r.read().decode()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(
                f"{target.name}: HTTP {exc.code} {exc.read()[:500]!r} (stream={stream})"
            ) from None
        if "quick" not in text or (stream and "[DONE]" not in text):
            raise RuntimeError(f"{target.name}: unexpected answer (stream={stream}): {text[:500]}")


def bench_target(
    target: Target, standin: Proc, args: argparse.Namespace, out: list[Measurement]
) -> None:
    print(f"\n== {target.name} ({target.url})", flush=True)
    check_target(target)
    for mode in ("json", "stream"):
        run_wrk(target, mode == "stream", 4, args.warmup)  # warm-up, discarded
        best = 0.0
        for c in args.connections:
            m = measure(target, standin, mode, "max", c, args.duration)
            out.append(m)
            if m.errors == 0:
                best = max(best, m.rps)
        for rate in args.rates:
            if rate > 0.8 * best:
                print(
                    f"  {target.name:11} {mode:6} rate {rate:g}/s skipped: above 80% of {best:.0f}"
                )
                continue
            out.append(measure_quietest(target, standin, mode, args, rate))
        if target.handshakes and mode == "json":
            out.append(measure(target, standin, mode, "close", 4, args.duration))


# -- the three targets -----------------------------------------------------------------------------


def write_keys_file(path: Path) -> str:
    """A keys file with one tenant on a tier whose limits are far above any load here."""
    pepper = secrets.token_bytes(32)
    key = generate_api_key()
    record = new_record(key, pepper, TENANT, CLIENT_ID, datetime.now(UTC))
    data = {
        "pepper": base64.b64encode(pepper).decode(),
        "records": [record.model_dump(mode="json", by_alias=True)],
        "tenants": [
            {"name": TENANT, "clientId": CLIENT_ID, "namespace": NAMESPACE, "tier": "bench"}
        ],
        "allowedNamespaces": [],
        "tiers": {
            "bench": {
                "tokenLimit": 10**15,
                "period": "monthly",
                "requestsPerMinute": 10**9,
                "tokensPerMinute": 10**12,
                "maxDeployments": 1,
                "maxGpus": 0,
                "gpusAllowed": False,
            }
        },
    }
    path.write_text(json.dumps(data))
    return key.plaintext


def start_standin(procs: Procs) -> Proc:
    port = free_port()
    args = [PYTHON, "-c", STANDIN_BOOT, "--port", str(port), "--served-model-name", MODEL]
    proc = procs.start("standin", args, LOAD_CORE, port)
    wait_http(f"{proc.url}/health", proc, 30)
    return proc


def _trust(work: Path) -> tuple[Path, Path]:
    """A serving certificate for 127.0.0.1 from a CA of this run (the operator's X.509 code:
    ECDSA P-256, as every gateway gets); clients of this run trust that CA."""
    now = datetime.now(UTC)
    ca = x509.new_authority("bench CA", timedelta(days=1), now)
    leaf = x509.issue(ca, ["127.0.0.1"], timedelta(days=1), now)
    cert, key = work / "tls.crt", work / "tls.key"
    cert.write_text(leaf.cert_pem)
    key.touch(mode=0o600)
    key.write_text(leaf.key_pem)
    TRUST.context = client_context(ca.cert_pem)
    return cert, key


def start_gateway(
    procs: Procs, work: Path, upstream: str, key_file: Path, tls: bool = False
) -> Proc:
    port = free_port()
    env = {
        "PAITIENT_MODELDEPLOYMENT_NAMESPACE": NAMESPACE,
        "PAITIENT_MODELDEPLOYMENT_NAME": "bench",
        "PAITIENT_POD_NAME": "bench-pod",
    }
    args = [PYTHON, "-m", "paitient_gateway", "--keys-file", str(key_file)]
    args += ["--ledger-dir", str(work / "ledger"), "--host", "127.0.0.1", "--port", str(port)]
    args += ["--upstream-url", upstream, "--served-model-name", MODEL]
    if tls:
        cert, key = _trust(work)
        env |= {"PAITIENT_TLS_CERT_FILE": str(cert), "PAITIENT_TLS_KEY_FILE": str(key)}
    else:
        args.append("--insecure-plaintext")
    proc = procs.start("gateway-tls" if tls else "gateway", args, SERVER_CORE, port, env)
    proc.scheme = "https" if tls else "http"
    wait_http(f"{proc.url}/healthz/ready", proc, 30)
    return proc


def litellm_config(work: Path, upstream: str, master_key: str) -> tuple[Path, Path]:
    """As close to the gateway as LiteLLM allows without a database (see docs/benchmarks.md)."""
    config = {
        "model_list": [
            {
                "model_name": MODEL,
                "litellm_params": {
                    # The text-completion provider: LiteLLM calls the stand-in's /v1/completions.
                    "model": f"text-completion-openai/{MODEL}",
                    "api_base": f"{upstream}/v1",
                    "api_key": "stand-in-needs-no-key",
                },
            }
        ],
        "litellm_settings": {
            "set_verbose": False,
            "json_logs": False,
            "callbacks": [],
            "success_callback": [],
            "failure_callback": [],
            "turn_off_message_logging": True,
            "drop_params": True,
        },
        "general_settings": {
            "master_key": master_key,
            "disable_spend_logs": True,
            "disable_error_logs": True,
            "background_health_checks": False,
        },
    }
    config_path, log_path = work / "litellm.json", work / "litellm-logging.json"
    config_path.write_text(json.dumps(config, indent=2))  # YAML is a superset of JSON
    log_config = {  # uvicorn's access log off: the gateway writes no access log either
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(levelname)s %(name)s %(message)s"}},
        "handlers": {"err": {"class": "logging.StreamHandler", "formatter": "plain"}},
        "loggers": {
            "uvicorn": {"level": "WARNING", "handlers": ["err"], "propagate": False},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        },
    }
    log_path.write_text(json.dumps(log_config))
    return config_path, log_path


def start_litellm(procs: Procs, work: Path, upstream: str, master_key: str) -> Proc:
    if not LITELLM.exists():
        raise RuntimeError(f"{LITELLM} missing: run scripts/install-bench-tools.sh")
    config, log_config = litellm_config(work, upstream, master_key)
    port = free_port()
    args = [str(LITELLM), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    args += ["--num_workers", "1", "--telemetry", "False", "--log_config", str(log_config)]
    env = {
        "LITELLM_LOG": "ERROR",
        "LITELLM_MODE": "PRODUCTION",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch of the cost map from the internet
        "NO_DOCS": "True",
    }
    proc = procs.start("litellm", args, SERVER_CORE, port, env)
    wait_http(f"{proc.url}/health/liveliness", proc, 180)
    return proc


# -- profile ---------------------------------------------------------------------------------------


def _component(frame: str) -> str:
    if frame.startswith("Runner.run "):  # the Python frame below uvloop's C code
        return "event loop (uvloop, C)"
    where = frame[frame.rfind("(") + 1 :]
    for key, name in (
        ("paitient_gateway", "paitient_gateway"),
        ("paitient_common", "paitient_common"),
        ("aiohttp", "aiohttp"),
        ("multidict", "aiohttp"),
        ("yarl", "aiohttp"),
        ("prometheus_client", "prometheus_client"),
        ("pydantic", "pydantic"),
        ("logging", "logging"),
        ("json", "json"),
        ("hmac", "hmac/hashlib"),
        ("asyncio", "asyncio/uvloop"),
        ("uvloop", "asyncio/uvloop"),
    ):
        if key in where:
            return name
    return "other (stdlib etc.)"


def profile_gateway(
    target: Target, standin: Proc, mode: str, seconds: float, work: Path
) -> dict[str, Any]:
    """py-spy samples the gateway while wrk drives it closed-loop; the time by function."""
    assert target.server is not None
    raw = work / f"profile-{mode}.txt"
    env = {
        **os.environ,
        "BENCH_MODEL": MODEL,
        "BENCH_STREAM": "1" if mode == "stream" else "0",
        "BENCH_AUTH": target.auth,
        "BENCH_CLIENT_ID": CLIENT_ID,
        "BENCH_RATE": "0",
    }
    cmd = ["taskset", "-c", str(LOAD_CORE), "wrk", "-t1", "-c16", f"-d{seconds + 4:g}s"]
    cmd += ["-s", str(LUA), target.url]
    load = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(1)
        spy = [str(PYSPY), "record", "--pid", str(target.server.popen.pid), "--duration"]
        spy += [f"{seconds:g}", "--rate", "200", "--function", "--nonblocking"]
        spy += ["--format", "raw", "--output", str(raw)]
        done = subprocess.run(
            ["taskset", "-c", str(LOAD_CORE), *spy],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"py-spy failed: {done.stderr[-1000:]}")
    finally:
        if load.poll() is None:
            load.terminate()
        load.communicate(timeout=30)
    self_time: Counter[str] = Counter()
    total_time: Counter[str] = Counter()
    components: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        samples += count
        self_time[frames[-1]] += count
        components[_component(frames[-1])] += count
        for frame in set(frames):
            total_time[frame] += count
    shutil.copy(raw, BENCH_DIR / raw.name)  # collapsed stacks, e.g. for a flame graph
    return {
        "mode": mode,
        "samples": samples,
        "busy_share": samples / (200 * seconds),
        "self": self_time.most_common(20),
        "total": total_time.most_common(40),
        "components": components.most_common(),
    }


def print_profile(p: dict[str, Any]) -> None:
    n = max(1, p["samples"])
    print(
        f"\n-- gateway profile, {p['mode']}: {p['samples']} samples "
        f"(busy in Python {100 * p['busy_share']:.0f}% of the time)"
    )
    print("  self time by component:")
    for name, count in p["components"]:
        print(f"    {100 * count / n:5.1f}%  {name}")
    print("  top functions by self time:")
    for frame, count in p["self"][:15]:
        print(f"    {100 * count / n:5.1f}%  {frame}")
    print("  top functions by inclusive time (paitient_* and aiohttp):")
    shown = 0
    for frame, count in p["total"]:
        if "__main__" in frame:  # coroutines resumed by uvloop do not show main below them
            continue
        if any(k in frame for k in ("paitient_", "aiohttp/")) and shown < 20:
            print(f"    {100 * count / n:5.1f}%  {frame}")
            shown += 1


# -- report ----------------------------------------------------------------------------------------


def _find(ms: list[Measurement], target: str, mode: str, kind: str, rate: float = 0.0) -> Any:
    for m in ms:
        if (m.target, m.mode, m.kind) == (target, mode, kind) and (kind == "max" or m.rate == rate):
            return m
    return None


def _best(ms: list[Measurement], target: str, mode: str) -> Measurement | None:
    runs = [m for m in ms if (m.target, m.mode, m.kind) == (target, mode, "max") and not m.errors]
    return max(runs, key=lambda m: m.rps, default=None)


def _per_core(ms: list[Measurement], target: str, mode: str) -> float:
    runs = [m for m in ms if (m.target, m.mode, m.kind) == (target, mode, "max") and not m.errors]
    return max((m.per_core for m in runs), default=0.0)


def report(ms: list[Measurement], rates: list[float]) -> list[str]:
    lines = [
        "| target | mode | load | req/s | req/s per core | p50 ms | p99 ms | added p50 ms "
        "| added p99 ms | errors | late | server CPU | others' CPU |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for mode in ("json", "stream"):
        for target in ("direct", "gateway", "gateway-tls", "litellm"):
            for rate in rates:
                m = _find(ms, target, mode, "rate", rate)
                if m is None:
                    continue
                base = _find(ms, "direct", mode, "rate", rate)
                added = (
                    (f"{m.p50_ms - base.p50_ms:+.3f}", f"{m.p99_ms - base.p99_ms:+.3f}")
                    if base is not None and target != "direct"
                    else ("", "")
                )
                lines.append(
                    f"| {target} | {mode} | {rate:g}/s, {m.connections} conns | {m.rps:.0f} | "
                    f"| {m.p50_ms:.3f} | {m.p99_ms:.3f} | {added[0]} | {added[1]} | {m.errors} "
                    f"| {m.late} | {m.cpu.server:.0f}% | {m.cpu.others:.0f}% |"
                )
            for m in ms:
                if (m.target, m.mode) != (target, mode) or m.kind not in ("max", "close"):
                    continue
                load = "conn per request" if m.kind == "close" else "max"
                lines.append(
                    f"| {target} | {mode} | {load}, {m.connections} conns | **{m.rps:.0f}** "
                    f"| {m.per_core:.0f} | {m.p50_ms:.3f} | {m.p99_ms:.3f} | | | {m.errors} | | "
                    f"{m.cpu.server:.0f}% | {m.cpu.others:.0f}% |"
                )
    lines.append("")
    lines.append("Goals:")
    for mode in ("json", "stream"):
        for rate in rates:
            gw, base = (
                _find(ms, "gateway", mode, "rate", rate),
                _find(ms, "direct", mode, "rate", rate),
            )
            if gw is None or base is None:
                continue
            a50, a99 = gw.p50_ms - base.p50_ms, gw.p99_ms - base.p99_ms
            ok = a50 <= GOAL_ADDED_P50_MS and a99 <= GOAL_ADDED_P99_MS and not gw.late
            lines.append(
                f"- {mode} at {rate:g}/s: gateway adds p50 {a50:+.3f} ms (goal ≤ 1), "
                f"p99 {a99:+.3f} ms (goal ≤ 5): {'met' if ok else 'NOT met'}"
            )
        gw_best, ll_best = _best(ms, "gateway", mode), _best(ms, "litellm", mode)
        if gw_best and ll_best:
            x = gw_best.rps / ll_best.rps
            gw_core, ll_core = _per_core(ms, "gateway", mode), _per_core(ms, "litellm", mode)
            xc = gw_core / ll_core if ll_core else 0.0
            lines.append(
                f"- {mode} throughput on one core: gateway {gw_best.rps:.0f} req/s, LiteLLM "
                f"{ll_best.rps:.0f} req/s = {x:.1f}x; per core of CPU used {gw_core:.0f} vs "
                f"{ll_core:.0f} = {xc:.1f}x (goal ≥ 5x): "
                f"{'met' if min(x, xc) >= GOAL_THROUGHPUT_X else 'NOT met'}"
            )
    lines += tls_summary(ms, rates)
    return lines


def tls_summary(ms: list[Measurement], rates: list[float]) -> list[str]:
    """What TLS adds: the TLS gateway next to the plain one, same load, same backend."""
    lines = []
    for mode in ("json", "stream"):
        for rate in rates:
            tls, plain = (
                _find(ms, "gateway-tls", mode, "rate", rate),
                _find(ms, "gateway", mode, "rate", rate),
            )
            if tls and plain:
                lines.append(
                    f"- TLS, {mode} at {rate:g}/s: p50 {tls.p50_ms:.3f} vs {plain.p50_ms:.3f} ms "
                    f"({tls.p50_ms - plain.p50_ms:+.3f}), p99 {tls.p99_ms:.3f} vs "
                    f"{plain.p99_ms:.3f} ms ({tls.p99_ms - plain.p99_ms:+.3f})"
                )
        tls_best, plain_best = _best(ms, "gateway-tls", mode), _best(ms, "gateway", mode)
        if tls_best and plain_best:
            lines.append(
                f"- TLS, {mode} max throughput: {tls_best.rps:.0f} vs {plain_best.rps:.0f} req/s "
                f"({100 * (tls_best.rps / plain_best.rps - 1):+.1f}%)"
            )
    tls_close, plain_close = (
        _find(ms, "gateway-tls", "json", "close"),
        _find(ms, "gateway", "json", "close"),
    )
    if tls_close and plain_close:
        lines.append(
            f"- a new connection per request (full TLS handshake each): {tls_close.rps:.0f} vs "
            f"{plain_close.rps:.0f} req/s, p50 {tls_close.p50_ms:.3f} vs {plain_close.p50_ms:.3f} ms"
        )
    return lines


# -- main ------------------------------------------------------------------------------------------


def bench_gateways(
    procs: Procs,
    work: Path,
    standin: Proc,
    key: str,
    args: argparse.Namespace,
    measurements: list[Measurement],
    profiles: list[dict[str, Any]],
) -> None:
    """The plain gateway (and its profile), then the TLS one: the same process but for TLS."""
    gateway = start_gateway(procs, work, standin.url, work / "keys.json")
    gw_target = Target("gateway", gateway.url, key, gateway, handshakes=True)
    bench_target(gw_target, standin, args, measurements)
    if args.profile_seconds > 0:
        if PYSPY.exists():
            for mode in ("json", "stream"):
                profiles.append(
                    profile_gateway(gw_target, standin, mode, args.profile_seconds, work)
                )
        else:
            print(f"{PYSPY} missing: no profile (run scripts/install-bench-tools.sh)")
    procs.stop(gateway)
    if not args.skip_tls:
        secure = start_gateway(procs, work, standin.url, work / "keys.json", tls=True)
        tls_target = Target("gateway-tls", secure.url, key, secure, handshakes=True)
        bench_target(tls_target, standin, args, measurements)
        procs.stop(secure)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per mode")
    p.add_argument("--rates", default="100,500", help="fixed rates (req/s), comma-separated")
    p.add_argument("--rate-connections", type=int, default=16, help="connections at fixed rate")
    p.add_argument("--connections", default="4,16", help="connections for max throughput")
    p.add_argument("--attempts", type=int, default=3, help="tries per fixed-rate run (quietest)")
    p.add_argument("--quiet", type=float, default=25.0, help="others' CPU %% that is quiet enough")
    p.add_argument("--profile-seconds", type=float, default=8.0, help="0 skips the profile")
    p.add_argument("--skip-litellm", action="store_true")
    p.add_argument("--skip-tls", action="store_true", help="no gateway-tls target")
    p.add_argument("--budget", type=int, default=1200, help="abort the whole run after this")
    p.add_argument(
        "--smoke", action="store_true",
        help="1 s per measurement, one rate, no profile, LiteLLM only when installed (a test runs it)",
    )  # fmt: skip
    args = p.parse_args()
    if args.smoke:
        args.duration, args.warmup, args.rates, args.connections = 1.0, 1.0, "20", "2"
        args.attempts, args.profile_seconds, args.budget = 1, 0.0, 180
        args.skip_litellm = args.skip_litellm or not LITELLM.exists()
    args.rates = [float(r) for r in args.rates.split(",") if r]
    args.connections = [int(c) for c in args.connections.split(",") if c]
    return args


def main() -> int:
    args = parse_args()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
        signal.signal(sig, _interrupt)
    signal.alarm(args.budget)
    for tool in ("wrk", "taskset"):
        if subprocess.run(["which", tool], capture_output=True, check=False).returncode:
            print(f"{tool} missing: run scripts/install-bench-tools.sh", file=sys.stderr)
            return 2
    measurements: list[Measurement] = []
    profiles: list[dict[str, Any]] = []
    load_before = loadavg()
    started = time.monotonic()
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        work = Path(tmp)
        procs = Procs(work)
        try:
            key = write_keys_file(work / "keys.json")
            standin = start_standin(procs)
            print(f"machine: {os.cpu_count()} cores, load average {load_before}")
            print(
                f"wrk on core {LOAD_CORE} with the stand-in; server under test on core {SERVER_CORE}"
            )
            direct = Target("direct", standin.url, key, None)
            bench_target(direct, standin, args, measurements)

            bench_gateways(procs, work, standin, key, args, measurements, profiles)

            if not args.skip_litellm:
                master_key = "sk-bench-" + secrets.token_urlsafe(16)
                litellm = start_litellm(procs, work, standin.url, master_key)
                ll_target = Target("litellm", litellm.url, master_key, litellm)
                bench_target(ll_target, standin, args, measurements)
                procs.stop(litellm)
        except Interrupted as exc:
            print(f"\ninterrupted ({exc}); stopping everything", file=sys.stderr)
            return 130
        finally:
            signal.alarm(0)
            logs = {p.name: p.tail(1500) for p in procs.items if p.popen.poll() is not None}
            procs.stop_all()
            for name, tail in logs.items():
                print(f"{name} had exited; its last output:\n{tail}", file=sys.stderr)
    load_after = loadavg()
    print(
        f"\n== results ({time.monotonic() - started:.0f} s; load average before {load_before}, "
        f"after {load_after}; 'others' = CPU used by processes this run did not start, "
        "in % of one core)\n"
    )
    lines = report(measurements, args.rates)
    print("\n".join(lines))
    for p in profiles:
        print_profile(p)
    RESULTS.write_text(
        json.dumps(
            {
                "load_before": load_before,
                "load_after": load_after,
                "measurements": [{**asdict(m), "per_core": m.per_core} for m in measurements],
                "profiles": profiles,
            },
            indent=1,
        )
    )
    print(f"\nraw figures: {RESULTS.relative_to(ROOT)}")
    best = {f"{m.target} {m.mode}": round(m.rps) for m in measurements if m.kind == "max"}
    print_summary(__file__, args.smoke, max_rps=best, litellm=not args.skip_litellm)
    return 0


if __name__ == "__main__":
    sys.exit(main())
