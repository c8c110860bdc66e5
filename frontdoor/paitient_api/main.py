"""``paitient-api``: serve the /v1 API.

In a cluster it reads keys and tenants through the API (in-cluster config) and routes generate
to each deployment's gateway Service over TLS, trusting only the CA bundle in the ConfigMap
``--gateway-ca-configmap``; locally ``--kubeconfig`` and ``--gateway-url`` point it at the local
cluster and a local gateway. With ``--tls-cert-file`` and ``--tls-key-file`` it serves HTTPS
itself (the certificate is reloaded when the files change). Every setting, with its flag and
environment variable: docs/configuration.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import REGISTRY

from paitient_api.app import create_app
from paitient_api.door import FrontDoor
from paitient_api.gateway_client import GatewayTrust
from paitient_api.routing import GatewayRoute
from paitient_api.settings import FrontDoorSettings
from paitient_common.keycache.directory import Directory
from paitient_common.keycache.kubernetes_source import KubernetesKeySource
from paitient_common.kubeapi import Kube
from paitient_common.logs import quiet_http_parser_logs
from paitient_common.settings import load_or_exit
from paitient_common.store.connection import Store
from paitient_common.store.health import StoreHealth, keep_probing
from paitient_common.store.metrics import StoreMetrics
from paitient_common.tls import ReloadingCertificate


def main(argv: list[str] | None = None) -> int:
    args = load_or_exit(FrontDoorSettings, argv, prog="paitient-api", description=__doc__)
    store_settings = args.store
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    quiet_http_parser_logs()
    kube = Kube.from_kubeconfig(args.kubeconfig)
    directory = Directory()
    store = Store(store_settings) if store_settings else None
    health = None
    if store_settings is None:
        logging.getLogger("paitient.api").warning(
            "no shared store (PAITIENT_STORE_URL unset): idempotency records and the negative "
            "key cache are this replica's own, and usage shows as the UsageReports last reported"
        )
    else:
        health = StoreHealth(
            store_settings,
            "answering usage from Tenant.status and keeping idempotency records in this replica",
            StoreMetrics().changed,
        )
    door = FrontDoor(
        kube=kube,
        callers=directory,
        route=GatewayRoute(args.gateway_url),
        trust=GatewayTrust(args.system_namespace, args.gateway_ca_configmap),
        store=store,
        store_health=health,
    )
    app = create_app(door)
    source = KubernetesKeySource(
        args.kubeconfig,
        args.system_namespace,
        settings=args.watch,
        store=store,
        store_health=health,
    )
    REGISTRY.register(source.collector())
    certificate = (
        ReloadingCertificate(args.tls_cert_file, args.tls_key_file)
        if args.tls_cert_file is not None and args.tls_key_file is not None
        else None
    )

    async def background(_: web.Application) -> AsyncIterator[None]:
        tasks = [
            asyncio.create_task(source.run(directory)),
            asyncio.create_task(door.trust.run(door.config_map)),
        ]
        if certificate is not None:
            tasks.append(asyncio.create_task(certificate.run()))
        if store is not None and health is not None:
            tasks.append(asyncio.create_task(keep_probing(store, health)))
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if store is not None:
            await store.close()

    app.cleanup_ctx.append(background)
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
        ssl_context=certificate.context if certificate else None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
