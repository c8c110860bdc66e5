"""Names, labels, selectors and the spec hash shared by every child of a ModelDeployment.

Children are named exactly like their ModelDeployment (a rerun finds its own objects) and carry
no owner references: the handler adopts them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from paitient_common.resources.modeldeployment import MD_LABEL as MD_LABEL
from paitient_common.resources.modeldeployment import ModelDeployment

Manifest = dict[str, Any]

APP_NAME: Final = "paitient-model"
MANAGED_BY: Final = "paitient-operator"
SPEC_HASH_ANNOTATION: Final = "paitient.ai/spec-hash"


def selector_labels(md: ModelDeployment) -> dict[str, str]:
    """Labels that select the deployment's pods; never change them (Deployment selectors are
    immutable)."""
    return {"app.kubernetes.io/name": APP_NAME, MD_LABEL: md.name}


def common_labels(md: ModelDeployment) -> dict[str, str]:
    """Labels on every child object and pod."""
    return {
        **selector_labels(md),
        "app.kubernetes.io/instance": md.name,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def serving_secret_name(md: ModelDeployment) -> str:
    """The Secret of the gateway's TLS serving certificate (the one child not named exactly
    like the ModelDeployment: a Secret beside other objects of that name reads clearer)."""
    return f"{md.name}-tls"


def service_names(md: ModelDeployment) -> list[str]:
    """The names clients reach the gateway by, which its certificate must carry."""
    return [f"{md.name}.{md.namespace}.svc", f"{md.name}.{md.namespace}.svc.cluster.local"]


def selector_string(md: ModelDeployment) -> str:
    """``selector_labels`` as a label-selector string, for ``status.selector`` (scale)."""
    return ",".join(f"{k}={v}" for k, v in sorted(selector_labels(md).items()))


def object_meta(md: ModelDeployment, **extra: Any) -> Manifest:
    """metadata for a child: the MD's name and namespace, the common labels."""
    return {"name": md.name, "namespace": md.namespace, "labels": common_labels(md), **extra}


def spec_hash(obj: Mapping[str, Any]) -> str:
    """A stable hash of a manifest (canonical JSON, hash annotation excluded), so a handler can
    tell an unchanged child from a changed one without a field-by-field comparison."""
    content = json.loads(json.dumps(obj, sort_keys=True, default=str))
    meta = content.get("metadata") or {}
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(SPEC_HASH_ANNOTATION, None)
        if not annotations:
            del meta["annotations"]  # so adding the hash does not change the hash
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def with_spec_hash(obj: Mapping[str, Any]) -> Manifest:
    """A copy of ``obj`` with ``paitient.ai/spec-hash`` set in its metadata annotations."""
    copy: Manifest = json.loads(json.dumps(obj))
    meta = copy.setdefault("metadata", {})
    meta.setdefault("annotations", {})[SPEC_HASH_ANNOTATION] = spec_hash(obj)
    return copy
