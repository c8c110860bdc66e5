"""``paitient``: manage tenants and API keys on the cluster of the current kubeconfig.

paitient tenants create acme --client-id acme-clinic --tier standard
paitient tenants list | suspend NAME | resume NAME | delete NAME [--force]
paitient keys create --client-id acme-clinic [--expires 90d] [--description TEXT] [--key-retention 30d]
paitient keys list [--client-id ID] | revoke KEY_ID
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kubernetes.config import ConfigException
from urllib3.exceptions import HTTPError as TransportError

from paitient_cli import admin
from paitient_common.durations import parse_duration
from paitient_common.keyretention import DEFAULT_RETENTION, describe
from paitient_common.kubeapi import Kube, KubeError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paitient", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kubeconfig", help="kubeconfig (default: $KUBECONFIG, ~/.kube/config)")
    parser.add_argument(
        "--system-namespace", default="paitient-system", help="where key Secrets live"
    )
    groups = parser.add_subparsers(dest="group", required=True)

    tenants = groups.add_parser("tenants", help="create, list, suspend, resume, delete tenants")
    t = tenants.add_subparsers(dest="action", required=True)
    create = t.add_parser("create", help="create a tenant")
    create.add_argument("name")
    create.add_argument("--client-id", required=True)
    create.add_argument("--tier", default="standard")
    create.add_argument("--namespace", help="default: tenant-<name>")
    t.add_parser("list", help="list tenants with their usage")
    for action in ("suspend", "resume"):
        t.add_parser(action, help=f"{action} a tenant").add_argument("name")
    delete = t.add_parser("delete", help="delete a tenant (refused while it has deployments)")
    delete.add_argument("name")
    delete.add_argument(
        "--force", action="store_true", help="also delete its namespace and deployments"
    )

    keys = groups.add_parser("keys", help="create, list, revoke API keys")
    k = keys.add_subparsers(dest="action", required=True)
    kc = k.add_parser("create", help="create a key (printed once)")
    kc.add_argument("--client-id", required=True)
    kc.add_argument("--expires", type=_duration, help="lifetime, e.g. 90d, 12h")
    kc.add_argument("--description", default="")
    kc.add_argument(
        "--key-retention",
        type=_duration,
        default=DEFAULT_RETENTION,
        help="how long a revoked or expired key's record is kept; older ones are removed by "
        f"this write (default {describe(DEFAULT_RETENTION)})",
    )
    kl = k.add_parser("list", help="list keys (never the secret)")
    kl.add_argument("--client-id")
    k.add_parser("revoke", help="revoke a key").add_argument("key_id")
    return parser


def _duration(text: str) -> object:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def run(args: argparse.Namespace, kube: Kube) -> list[str]:
    ns = args.system_namespace
    if args.group == "tenants":
        if args.action == "create":
            tiers = admin.known_tiers(kube, ns)
            return admin.create_tenant(
                kube, args.name, args.client_id, args.tier, args.namespace, tiers
            )
        if args.action == "list":
            return admin.list_tenants(kube)
        if args.action in ("suspend", "resume"):
            return admin.set_suspended(kube, args.name, args.action == "suspend")
        return admin.delete_tenant(kube, args.name, args.force)
    if args.action == "create":
        return admin.create_key(
            kube, args.client_id, args.expires, args.description, ns, args.key_retention
        )
    if args.action == "list":
        return admin.list_keys(kube, args.client_id, ns)
    return admin.revoke_key(kube, args.key_id, ns)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        kube = Kube.from_kubeconfig(args.kubeconfig)
        lines = run(args, kube)
    except admin.CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ConfigException as exc:
        print(
            f"error: no cluster configured: {exc} (set KUBECONFIG or pass --kubeconfig)",
            file=sys.stderr,
        )
        return 1
    except TransportError as exc:
        print(
            f"error: no cluster reachable: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
            file=sys.stderr,
        )
        return 1
    except KubeError as exc:
        if exc.status == 404 and "could not find the requested resource" in exc.message:
            print(
                "error: the PaiTIENT CRDs are not installed on this cluster (install the Helm chart)",
                file=sys.stderr,
            )
        else:
            print(f"error: the API server refused: {exc.status} {exc.message}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
