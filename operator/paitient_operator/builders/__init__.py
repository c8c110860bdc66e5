"""Pure builders: a ModelDeployment (and the operator's config) in, Kubernetes manifests out.

No cluster access and no owner references here: the handlers adopt and apply what these return.
"""

from __future__ import annotations

from paitient_operator.builders.autoscalers import build_hpa, build_scaled_object
from paitient_operator.builders.deployment import build_deployment
from paitient_operator.builders.gateway_identity import build_gateway_identity
from paitient_operator.builders.gateway_rbac import build_gateway_roles
from paitient_operator.builders.metadata import (
    common_labels,
    selector_labels,
    selector_string,
    spec_hash,
    with_spec_hash,
)
from paitient_operator.builders.network_policy import build_network_policy
from paitient_operator.builders.pvc import build_pvc
from paitient_operator.builders.service import build_service, endpoint_url
from paitient_operator.builders.store import build_store_secret
from paitient_operator.builders.vllm_args import build_vllm_args, check_extra_args

__all__ = [
    "build_deployment",
    "build_gateway_identity",
    "build_gateway_roles",
    "build_hpa",
    "build_network_policy",
    "build_pvc",
    "build_scaled_object",
    "build_service",
    "build_store_secret",
    "build_vllm_args",
    "check_extra_args",
    "common_labels",
    "endpoint_url",
    "selector_labels",
    "selector_string",
    "spec_hash",
    "with_spec_hash",
]
