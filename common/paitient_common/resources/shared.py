"""Types and patterns every resource kind shares: metadata, conditions, Secret references, and
the error a kind's parser raises.

A second kind (Tenant) builds on these instead of redefining them, so every kind's status
conditions and Secret references look the same on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from pydantic import Field

from paitient_common.resources._base import OpenModel, WireModel

# The API group and version every kind of the operator is served under.
GROUP: Final = "paitient.ai"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

# Kubernetes quantity without sign ("8", "500m", "64Gi", "1e3"): a string, as in the core API.
QUANTITY_PATTERN: Final = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[mkMGTPE]|[eE][0-9]+)?$"
K8S_NAME_PATTERN: Final = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
SECRET_KEY_PATTERN: Final = r"^[-._a-zA-Z0-9]+$"  # noqa: S105 - a regex, not a secret
LABEL_NAME_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class InvalidResource(ValueError):
    """An API object is not a valid instance of its kind; the message says why, in pydantic's
    words. The operator reports it as the condition reason ``InvalidSpec``."""


class SecretKeyRef(WireModel):
    """A key of a Secret in the namespace of the resource that refers to it."""

    name: str = Field(
        description="Name of the Secret, in the same namespace as this resource.",
        max_length=253,
        pattern=K8S_NAME_PATTERN,
    )
    key: str = Field(
        default="token",
        description="Key within the Secret whose value is used.",
        max_length=253,
        pattern=SECRET_KEY_PATTERN,
    )


class Condition(OpenModel):
    """A metav1.Condition: one aspect of the resource's state."""

    type: str = Field(description="Condition type, e.g. Ready.", max_length=316)
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation the condition was computed from."
    )
    last_transition_time: str = Field(
        description="When status last changed (RFC 3339).",
        json_schema_extra={"format": "date-time"},
    )
    reason: str = Field(description="CamelCase reason for the status.", max_length=1024)
    message: str = Field(default="", description="Human-readable detail.", max_length=32768)


class ObjectMeta(OpenModel):
    """The part of metadata the operator reads; the rest is kept as given."""

    name: str = Field(description="Name of the resource.")
    namespace: str | None = Field(default=None, description="Namespace of the resource.")
    generation: int | None = Field(default=None, description="Spec generation.")
    uid: str | None = Field(default=None, description="Object UID.")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Annotations.")


def nested_object(model: type[WireModel], description: str) -> Any:
    """A nested-object field defaulting to the model's defaults, on the wire and in Python."""
    # default {} on the CRD lets the API server fill the nested defaults into stored objects.
    return Field(default_factory=model, description=description, json_schema_extra={"default": {}})


def plain(value: Any) -> Any:
    """Plain dicts and lists from Mappings (kopf bodies), for pydantic."""
    # kopf hands Body/Spec views (Mappings, not dicts); pydantic wants plain containers.
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
