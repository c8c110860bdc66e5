"""The UsageReport resource: cumulative token counters one gateway pod reports.

Each gateway pod owns one report (named after the pod, in the pod's namespace) and overwrites
its ``spec.entries`` with cumulative counters per (tenant, period). Cumulative, so a retried or
repeated write is harmless; the operator sums the reports of every pod into
``Tenant.status.currentUsage``. A report outlives its pod (the counters are history); the
operator deletes reports whose periods have all left the tenants' history.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pydantic import Field, ValidationError

from paitient_common.resources._base import WireModel

# Re-exported: callers read the group and version from each kind's module.
from paitient_common.resources.shared import API_VERSION as API_VERSION
from paitient_common.resources.shared import GROUP as GROUP
from paitient_common.resources.shared import (
    LABEL_NAME_PATTERN,
    InvalidResource,
    ObjectMeta,
    plain,
)
from paitient_common.resources.shared import VERSION as VERSION

KIND: Final = "UsageReport"
PLURAL: Final = "usagereports"
SINGULAR: Final = "usagereport"
SHORT_NAMES: Final = ("ur",)
CATEGORIES: Final = ("paitient",)


class UsageEntry(WireModel):
    """Cumulative counters of one tenant in one period, as counted by one gateway pod."""

    tenant: str = Field(description="Tenant name.", pattern=LABEL_NAME_PATTERN, max_length=63)
    period_start: str = Field(description="Start of the period the counters belong to (RFC 3339).")
    prompt_tokens: int = Field(default=0, ge=0, description="Prompt tokens, cumulative.")
    completion_tokens: int = Field(default=0, ge=0, description="Completion tokens, cumulative.")
    requests: int = Field(default=0, ge=0, description="Requests, cumulative.")


class UsageReportSpec(WireModel):
    """What one gateway pod has counted."""

    pod: str = Field(description="Name of the reporting gateway pod.", max_length=253)
    model_deployment: str | None = Field(
        default=None, description="ModelDeployment the pod serves.", max_length=63
    )
    entries: list[UsageEntry] = Field(
        default_factory=list, description="Cumulative counters per tenant and period."
    )
    key_last_used: dict[str, str] = Field(
        default_factory=dict, description="API key id -> last time this pod saw it (RFC 3339)."
    )


class UsageReport(WireModel):
    """Cumulative token counters of one gateway pod."""

    api_version: str = Field(default=API_VERSION, description="API version.")
    kind: str = Field(default=KIND, description="Kind.")
    metadata: ObjectMeta = Field(description="Standard object metadata.")
    spec: UsageReportSpec = Field(description="The counters.")


def parse_usage_report(body: Mapping[str, Any]) -> UsageReport:
    try:
        return UsageReport.model_validate(plain(body))
    except ValidationError as exc:
        raise InvalidResource(f"invalid UsageReport: {exc.error_count()} problems") from exc
