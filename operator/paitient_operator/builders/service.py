"""The ClusterIP Service in front of the model pods: the gateway port and nothing else."""

from __future__ import annotations

from paitient_common.resources.modeldeployment import ModelDeployment
from paitient_operator.builders.deployment import GATEWAY_PORT_NAME
from paitient_operator.builders.metadata import Manifest, object_meta, selector_labels
from paitient_operator.config import OperatorConfig


def build_service(md: ModelDeployment, config: OperatorConfig) -> Manifest:
    """ClusterIP Service named after ``md`` exposing only the gateway port."""
    port = config.gateway.port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(md),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(md),
            "ports": [
                {
                    "name": GATEWAY_PORT_NAME,
                    "port": port,
                    "targetPort": GATEWAY_PORT_NAME,
                    "protocol": "TCP",
                },
            ],
        },
    }


def endpoint_url(md: ModelDeployment, config: OperatorConfig) -> str:
    """The in-cluster URL of the gateway, for ``status.endpoint`` (TLS only)."""
    return f"https://{md.name}.{md.namespace}.svc:{config.gateway.port}"
