"""Shared pydantic settings for resource models: camelCase on the wire, snake_case in Python."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


def cel(rule: str, message: str, **extra: str) -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry (CEL rule, message shown on refusal)."""
    return {"rule": rule, "message": message, **extra}


def cel_rules(*rules: dict[str, str]) -> dict[str, Any]:
    """``json_schema_extra`` carrying CEL rules, so the rules sit next to the model they guard."""
    return {"x-kubernetes-validations": list(rules)}


class WireModel(BaseModel):
    """A model whose fields are camelCase on the wire; unknown fields are refused.

    Refusing unknown fields makes a typo in Python (factories, the front door) fail loudly;
    the API server prunes unknown fields before the operator ever sees them.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
    )

    def to_wire(self) -> dict[str, Any]:
        """camelCase, JSON-ready, without unset optional fields: what goes to the API server."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class OpenModel(WireModel):
    """A wire model that keeps fields it does not know (status: kopf writes its own there)."""

    model_config = ConfigDict(extra="allow")
