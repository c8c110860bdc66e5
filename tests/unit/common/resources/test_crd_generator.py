"""build_crd is generic: another kind (cluster-scoped, say Tenant) reuses it unchanged."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, Field

from paitient_common.resources._base import WireModel, cel, cel_rules
from paitient_common.resources._openapi import UnsupportedSchema, to_structural
from paitient_common.resources.crd import build_crd, printer_column


class _Limits(WireModel):
    """Limits of a tier."""

    gpus: int = Field(default=1, ge=0, description="GPUs.")


class _TenantSpec(WireModel):
    """A customer."""

    model_config = {"json_schema_extra": cel_rules(cel("self.clientId != ''", "clientId empty"))}

    client_id: str = Field(description="Client ID.")
    tier: Literal["basic"] = Field(default="basic", description="Tier.")
    limits: _Limits | None = Field(default=None, description="Limits.")
    quota: int | str = Field(default=1, description="A quantity.")
    ratio: float = Field(default=0.5, gt=0, lt=1, description="Ratio.")


class _TenantStatus(WireModel):
    """Usage."""

    used: int = Field(default=0, description="Used.")


def test_cluster_scoped_kind_with_own_columns_and_rules() -> None:
    crd = build_crd(
        group="paitient.ai",
        version="v1alpha1",
        kind="Tenant",
        plural="tenants",
        spec_model=_TenantSpec,
        status_model=_TenantStatus,
        scope="Cluster",
        short_names=["tn"],
        printer_columns=[printer_column("Client", ".spec.clientId")],
        validations=[cel("self.spec.clientId.size() < 40", "short id")],
    )
    assert crd["metadata"]["name"] == "tenants.paitient.ai"
    assert crd["spec"]["scope"] == "Cluster"
    assert crd["spec"]["names"]["listKind"] == "TenantList"
    (version,) = crd["spec"]["versions"]
    assert "scale" not in version["subresources"]
    root = version["schema"]["openAPIV3Schema"]
    assert root["x-kubernetes-validations"][0]["message"] == "short id"
    assert root["properties"]["metadata"] == {"type": "object"}
    spec = root["properties"]["spec"]
    assert spec["required"] == ["clientId"]
    assert spec["x-kubernetes-validations"][0]["rule"] == "self.clientId != ''"
    assert spec["properties"]["tier"]["enum"] == ["basic"]
    assert spec["properties"]["limits"]["nullable"] is True
    assert spec["properties"]["limits"]["properties"]["gpus"]["minimum"] == 0
    assert spec["properties"]["quota"]["x-kubernetes-int-or-string"] is True
    ratio = spec["properties"]["ratio"]
    assert ratio["exclusiveMinimum"] is True and ratio["exclusiveMaximum"] is True
    assert root["properties"]["status"]["x-kubernetes-preserve-unknown-fields"] is True


def test_field_description_wins_over_the_referenced_models_docstring() -> None:
    schema = to_structural(_TenantSpec.model_json_schema(by_alias=True))
    assert schema["properties"]["limits"]["description"] == "Limits."
    assert "title" not in schema["properties"]["limits"]


def test_unions_that_are_not_structural_are_refused() -> None:
    class Bad(BaseModel):
        value: int | list[str]

    with pytest.raises(UnsupportedSchema, match="value"):
        to_structural(Bad.model_json_schema())


def test_sets_are_refused_in_favour_of_list_type_set() -> None:
    class Bad(BaseModel):
        names: set[str]

    with pytest.raises(UnsupportedSchema, match="list-type"):
        to_structural(Bad.model_json_schema())
