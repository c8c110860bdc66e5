"""``python -m paitient_gateway``: the sidecar, configured by the operator's environment.

It serves only TLS, with the certificate in ``PAITIENT_TLS_CERT_FILE`` / ``PAITIENT_TLS_KEY_FILE``
(reloaded when the files change); ``--insecure-plaintext`` serves plain HTTP instead, for local
tests and benchmarks that carry no patient data. Local runs add ``--keys-file`` (keys, tenants
and pepper from a JSON file instead of the API) and ``--ledger-dir``; without a keys file the
gateway reads everything from the Kubernetes API (in-cluster config, or ``--kubeconfig``).
Every setting, with its flag and environment variable: docs/configuration.md.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from types import ModuleType

from aiohttp import web

from paitient_common.keycache.directory import FileKeySource, KeySource
from paitient_common.keycache.kubernetes_source import KubernetesKeySource
from paitient_common.kubeapi import Kube
from paitient_common.logs import quiet_http_parser_logs
from paitient_common.settings import load_or_exit
from paitient_common.tls import ReloadingCertificate
from paitient_gateway.app import create_app, create_metrics_app
from paitient_gateway.config import GatewayConfig
from paitient_gateway.state import Gateway

uvloop: ModuleType | None
try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency, but not on every platform
    uvloop = None

log = logging.getLogger("paitient.gateway")


def build(config: GatewayConfig) -> Gateway:
    kube: Kube | None = None
    source: KeySource
    if config.keys_file is not None:
        source = FileKeySource(config.keys_file)
        if config.kubeconfig:  # usage reports still go to a cluster when one is named
            kube = Kube.from_kubeconfig(config.kubeconfig, pool_size=4)
        return Gateway(config, source, kube)
    kube = Kube.from_kubeconfig(config.kubeconfig, pool_size=4)
    watched = KubernetesKeySource(
        config.kubeconfig,
        config.system_namespace,
        config.namespace,
        config.deployment,
        config.watch,
    )
    gateway = Gateway(config, watched, kube)
    if gateway.shared is not None:  # unknown keys are remembered in the store too
        watched.store, watched.store_health = gateway.store, gateway.shared.health
    gateway.metrics.registry.register(watched.collector())
    return gateway


async def serve(gateway: Gateway) -> None:
    config = gateway.config
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # No access log: the audit line is the access log, without anything it must not hold.
    certificate = None
    if config.tls_cert_file is not None and config.tls_key_file is not None:
        certificate = ReloadingCertificate(config.tls_cert_file, config.tls_key_file)
    runners = [web.AppRunner(create_app(gateway), access_log=None, shutdown_timeout=30)]
    if config.metrics_port is not None:
        runners.append(web.AppRunner(create_metrics_app(gateway), access_log=None))
    reload = asyncio.create_task(certificate.run()) if certificate else None
    try:
        await runners[0].setup()
        ssl_context = certificate.context if certificate else None
        await web.TCPSite(runners[0], config.host, config.port, ssl_context=ssl_context).start()
        if len(runners) > 1:  # metrics carry no request content: plain HTTP for scrapers
            await runners[1].setup()
            await web.TCPSite(runners[1], config.host, config.metrics_port).start()
        scheme = "https" if certificate else "http (--insecure-plaintext)"
        log.info("gateway listening on %s:%d, %s", config.host, config.port, scheme)
        await stop.wait()
    finally:
        if reload is not None:
            reload.cancel()
        for runner in reversed(runners):
            await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    quiet_http_parser_logs()
    config = load_or_exit(GatewayConfig, argv, prog="paitient-gateway", description=__doc__)
    gateway = build(config)
    factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    if uvloop is not None:  # a faster event loop for the same code, where it is installed
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(gateway))


if __name__ == "__main__":
    main()
