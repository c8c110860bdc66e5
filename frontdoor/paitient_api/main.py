"""``paitient-api``: serve the /v1 API.

In a cluster it reads keys and tenants through the API (in-cluster config) and routes generate
to each deployment's gateway Service over TLS, trusting only the CA bundle in the ConfigMap
``--gateway-ca-configmap``; locally ``--kubeconfig`` and ``--gateway-url`` point it at the local
cluster and a local gateway. With ``--tls-cert-file`` and ``--tls-key-file`` it serves HTTPS
itself (the certificate is reloaded when the files change).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import REGISTRY

from paitient_api.app import create_app
from paitient_api.door import FrontDoor
from paitient_api.gateway_client import GatewayTrust
from paitient_api.routing import IN_CLUSTER, GatewayRoute
from paitient_common.informer import watch_settings_from_env
from paitient_common.keycache.directory import Directory
from paitient_common.keycache.kubernetes_source import KubernetesKeySource
from paitient_common.kubeapi import Kube
from paitient_common.logs import quiet_http_parser_logs
from paitient_common.secrets import CA_BUNDLE_CONFIGMAP
from paitient_common.store.connection import Store
from paitient_common.store.health import StoreHealth, keep_probing
from paitient_common.store.metrics import StoreMetrics
from paitient_common.store.settings import StoreSettingsError, store_settings_from_env
from paitient_common.tls import ReloadingCertificate
from paitient_common.tls_metrics import CertificateExpiryCollector


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="paitient-api", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("PAITIENT_API_HOST", "0.0.0.0"))  # noqa: S104
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("PAITIENT_API_PORT", "8080"))
    )
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    parser.add_argument(
        "--system-namespace", default=os.environ.get("PAITIENT_SYSTEM_NAMESPACE", "paitient-system")
    )
    parser.add_argument(
        "--gateway-url",
        default=os.environ.get("PAITIENT_API_GATEWAY_URL", IN_CLUSTER),
        help="template of a deployment's gateway URL ({name}, {namespace}); default in-cluster Services",
    )
    parser.add_argument(
        "--gateway-ca-configmap",
        default=os.environ.get("PAITIENT_API_GATEWAY_CA_CONFIGMAP", CA_BUNDLE_CONFIGMAP),
        help="ConfigMap (system namespace, key ca.crt) of the CAs the gateways' certificates "
        "must chain to",
    )
    parser.add_argument(
        "--tls-cert-file",
        default=os.environ.get("PAITIENT_API_TLS_CERT_FILE"),
        help="serve HTTPS with this certificate (PEM chain); plain HTTP without it",
    )
    parser.add_argument(
        "--tls-key-file",
        default=os.environ.get("PAITIENT_API_TLS_KEY_FILE"),
        help="the certificate's private key (PEM)",
    )
    args = parser.parse_args(argv)
    if bool(args.tls_cert_file) != bool(args.tls_key_file):
        parser.error("--tls-cert-file and --tls-key-file go together")
    try:
        store_settings = store_settings_from_env()
    except StoreSettingsError as exc:
        parser.error(str(exc))
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
        settings=watch_settings_from_env(os.environ),
        store=store,
        store_health=health,
    )
    REGISTRY.register(source.collector())
    certificate = (
        ReloadingCertificate(args.tls_cert_file, args.tls_key_file) if args.tls_cert_file else None
    )
    if certificate is not None:
        REGISTRY.register(CertificateExpiryCollector(certificate))

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
