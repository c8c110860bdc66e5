"""``paitient-api``: serve the /v1 API.

In a cluster it reads keys and tenants through the API (in-cluster config) and routes generate
to each deployment's gateway Service; locally ``--kubeconfig`` and ``--gateway-url`` point it at
the local cluster and a local gateway.
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
from paitient_api.routing import IN_CLUSTER, GatewayRoute
from paitient_common.informer import watch_settings_from_env
from paitient_common.kubeapi import Kube
from paitient_common.logs import quiet_http_parser_logs
from paitient_gateway.keysource import Directory
from paitient_gateway.kubekeys import KubernetesKeySource


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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    quiet_http_parser_logs()
    kube = Kube.from_kubeconfig(args.kubeconfig)
    directory = Directory()
    door = FrontDoor(kube=kube, callers=directory, route=GatewayRoute(args.gateway_url))
    app = create_app(door)
    source = KubernetesKeySource(
        args.kubeconfig, args.system_namespace, settings=watch_settings_from_env(os.environ)
    )
    REGISTRY.register(source.collector())

    async def keys(_: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(source.run(directory))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(keys)
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
