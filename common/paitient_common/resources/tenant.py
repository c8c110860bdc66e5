"""The Tenant resource (cluster-scoped): a client of the service, its namespace and its tier.

A tenant is named by ``clientId`` on every API call; its API keys live, hashed, in a Secret the
operator makes; its usage in the current period is summed from the gateways' UsageReports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pydantic import Field, ValidationError

from paitient_common.apikeys import CLIENT_ID_PATTERN
from paitient_common.resources._base import OpenModel, WireModel

# Re-exported: callers read the group and version from each kind's module.
from paitient_common.resources.shared import API_VERSION as API_VERSION
from paitient_common.resources.shared import GROUP as GROUP
from paitient_common.resources.shared import (
    LABEL_NAME_PATTERN,
    Condition,
    InvalidResource,
    ObjectMeta,
    plain,
)
from paitient_common.resources.shared import VERSION as VERSION

KIND: Final = "Tenant"
PLURAL: Final = "tenants"
SINGULAR: Final = "tenant"
SHORT_NAMES: Final = ("tn",)
CATEGORIES: Final = ("paitient",)
# The tenant's name prefixes its namespace (tenant-<name>): a DNS label with room for the prefix.
NAME_PATTERN: Final = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
NAME_MAX: Final = 56
FORCE_DELETE_ANNOTATION: Final = "paitient.ai/force-delete"


class TenantSpec(WireModel):
    """Who the tenant is and what it may use."""

    client_id: str = Field(
        description="Client ID the tenant sends as X-Client-ID; unique across tenants.",
        pattern=CLIENT_ID_PATTERN,
        max_length=128,
    )
    namespace: str | None = Field(
        default=None,
        description="Namespace of the tenant's ModelDeployments (default: tenant-<name>).",
        pattern=LABEL_NAME_PATTERN,
        max_length=63,
    )
    tier: str = Field(
        default="standard",
        description="Subscription tier, one defined in the operator's configuration.",
        pattern=LABEL_NAME_PATTERN,
        max_length=63,
    )
    suspended: bool = Field(
        default=False,
        description="When true every request with the tenant's keys is refused (403); data is kept.",
    )
    usage_limit_override: int | None = Field(
        default=None,
        ge=0,
        description="Tokens per period, instead of the tier's limit.",
    )


class PeriodUsage(WireModel):
    """Tokens used in one past period."""

    period_start: str = Field(description="Start of the period (RFC 3339).")
    period_end: str = Field(description="End of the period (RFC 3339).")
    prompt_tokens: int = Field(default=0, ge=0, description="Prompt tokens in the period.")
    completion_tokens: int = Field(default=0, ge=0, description="Completion tokens in the period.")
    requests: int = Field(default=0, ge=0, description="Requests in the period.")


class TenantStatus(OpenModel):
    """Observed state, written by the operator only."""

    tier: str | None = Field(default=None, description="Tier in force.")
    namespace: str | None = Field(default=None, description="The tenant's namespace.")
    usage_limit: int | None = Field(default=None, ge=0, description="Tokens per period.")
    current_usage: int | None = Field(
        default=None, ge=0, description="Tokens (prompt + completion) used in the current period."
    )
    prompt_tokens: int | None = Field(default=None, ge=0, description="Prompt tokens this period.")
    completion_tokens: int | None = Field(
        default=None, ge=0, description="Completion tokens this period."
    )
    requests: int | None = Field(default=None, ge=0, description="Requests this period.")
    period_start: str | None = Field(default=None, description="Start of the current period.")
    period_end: str | None = Field(default=None, description="End of the current period.")
    deployments: int | None = Field(default=None, ge=0, description="ModelDeployments it has.")
    suspended: bool | None = Field(default=None, description="Whether its keys are refused.")
    history: list[PeriodUsage] = Field(
        default_factory=list, description="Usage of past periods, newest first (up to 12)."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready and the conditions behind it (metav1.Condition).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    observed_generation: int | None = Field(default=None, description="Generation described.")
    message: str | None = Field(default=None, description="Human-readable summary.")


class Tenant(WireModel):
    """A client of the service: its namespace, tier, keys and usage."""

    api_version: str = Field(default=API_VERSION, description="API version.")
    kind: str = Field(default=KIND, description="Kind.")
    metadata: ObjectMeta = Field(description="Standard object metadata.")
    spec: TenantSpec = Field(description="Desired state.")
    status: TenantStatus | None = Field(default=None, description="Observed state.")

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        """The tenant's namespace: ``spec.namespace`` or ``tenant-<name>``."""
        return self.spec.namespace or f"tenant-{self.metadata.name}"

    @property
    def force_delete(self) -> bool:
        return self.metadata.annotations.get(FORCE_DELETE_ANNOTATION) == "true"


def parse_tenant(body: Mapping[str, Any]) -> Tenant:
    """A Tenant from an API object; ``InvalidResource`` with pydantic's words if it is not one."""
    try:
        return Tenant.model_validate(plain(body))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidResource(f"invalid Tenant: {problems}") from exc
