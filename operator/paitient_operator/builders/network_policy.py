"""The NetworkPolicy isolating a model's pods: in only to the gateway, out only to what it needs.

Ingress: the gateway port, from the front door's namespace, the operator's (its autoscaler reads
the gateways' load) and the namespaces the spec allows.
Egress: DNS; HTTPS while the weights come from outside the cluster (Hugging Face, S3); the API
server's endpoints, which the gateway calls to flush usage; the shared store, where the gateway
reserves and settles every request (``store.store_egress``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

from paitient_common.resources.modeldeployment import ModelDeployment
from paitient_operator.builders.metadata import Manifest, object_meta, selector_labels
from paitient_operator.builders.store import store_egress
from paitient_operator.config import OperatorConfig

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set by the API server on every namespace


def _namespaces(names: Iterable[str]) -> list[dict[str, Any]]:
    return [
        {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: name}}}
        for name in sorted(set(names))
    ]


def _host_cidr(ip: str) -> str:
    address = ipaddress.ip_address(ip)
    return f"{address}/{address.max_prefixlen}"


def build_network_policy(
    md: ModelDeployment,
    config: OperatorConfig,
    *,
    allow_model_download: bool = True,
    api_server_endpoints: Sequence[tuple[str, int]] = (),
) -> Manifest:
    """NetworkPolicy for ``md``'s pods (both directions).

    ``allow_model_download=False`` closes HTTPS egress once the weights are cached (the handler
    decides when). ``api_server_endpoints`` are (ip, port) pairs of the ``kubernetes``
    EndpointSlice: the API server is no pod, so only its addresses can let the gateway reach it.
    """
    gateway_port = config.gateway.port
    ingress: list[dict[str, Any]] = [
        {
            "from": _namespaces(
                [
                    config.front_door_namespace,
                    config.system_namespace,
                    *md.spec.access.allowed_namespaces,
                ]
            ),
            "ports": [{"protocol": "TCP", "port": gateway_port}],
        }
    ]
    metrics_port = config.gateway.metrics_port
    if metrics_port is not None and config.monitoring_namespaces:
        ingress.append(
            {
                "from": _namespaces(config.monitoring_namespaces),
                "ports": [{"protocol": "TCP", "port": metrics_port}],
            }
        )

    dns: dict[str, Any] = {
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    if config.dns_namespace:
        dns = {"to": _namespaces([config.dns_namespace]), **dns}
    egress: list[dict[str, Any]] = [dns]
    if md.spec.model.is_remote and allow_model_download:
        egress.append({"ports": [{"protocol": "TCP", "port": 443}]})
    store = store_egress(config.store)
    if store is not None:
        egress.append(store)
    for ip, port in sorted(set(api_server_endpoints)):
        egress.append(
            {
                "to": [{"ipBlock": {"cidr": _host_cidr(ip)}}],
                "ports": [{"protocol": "TCP", "port": port}],
            }
        )

    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": object_meta(md),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(md)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        },
    }
