"""Turn a pydantic JSON schema (draft 2020-12) into a Kubernetes structural OpenAPI v3 schema.

The API server accepts only "structural" schemas: every node typed, no ``$ref``, no ``anyOf``
for optional values (``nullable: true`` instead), no ``additionalProperties: false``, no
``uniqueItems``, OpenAPI 3.0's boolean ``exclusiveMinimum``. This module is the only place
that knows both dialects, so a new kind only writes pydantic models.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

# Keys pydantic emits that the apiextensions schema either lacks or that only add noise.
_DROPPED = frozenset({"title", "$defs", "examples", "$schema"})
_NULL = {"type": "null"}


class UnsupportedSchema(ValueError):
    """The pydantic model uses a construct with no structural-schema equivalent."""


def to_structural(schema: Schema) -> Schema:
    """The structural form of ``schema`` (a ``model_json_schema()`` result); input is untouched."""
    defs: dict[str, Schema] = schema.get("$defs", {})
    return _convert(schema, defs, path="")


def _resolve(ref: str, defs: dict[str, Schema], path: str) -> Schema:
    prefix = "#/$defs/"
    if not ref.startswith(prefix) or ref[len(prefix) :] not in defs:
        raise UnsupportedSchema(f"{path or '<root>'}: unresolvable $ref {ref!r}")
    return defs[ref[len(prefix) :]]


def _convert(node: Schema, defs: dict[str, Schema], path: str) -> Schema:
    node = dict(node)
    if "$ref" in node:
        # Keys beside a $ref (a field's description, default) win over the referenced model's.
        target = _convert(_resolve(node.pop("$ref"), defs, path), defs, path)
        return {**target, **_convert_keys(node, defs, path)}
    if "anyOf" in node:
        return _convert_any_of(node, defs, path)
    if "allOf" in node and len(node["allOf"]) == 1:
        # pydantic wraps a $ref in a single allOf when a field adds siblings to it.
        (only,) = node.pop("allOf")
        return {**_convert(only, defs, path), **_convert_keys(node, defs, path)}
    return _convert_keys(node, defs, path)


def _convert_any_of(node: Schema, defs: dict[str, Schema], path: str) -> Schema:
    branches: list[Schema] = node.pop("anyOf")
    non_null = [b for b in branches if b != _NULL]
    rest = _convert_keys(node, defs, path)
    if len(non_null) == 1:
        merged = {**_convert(non_null[0], defs, path), **rest}
        if len(non_null) < len(branches):
            merged["nullable"] = True
        return merged
    types = {b.get("type") for b in non_null}
    if types == {"integer", "string"} and len(non_null) == 2:
        merged = {"x-kubernetes-int-or-string": True, **rest}
        if len(non_null) < len(branches):
            merged["nullable"] = True
        return merged
    raise UnsupportedSchema(
        f"{path or '<root>'}: a union of {sorted(map(str, types))} "
        "is not structural; use one type (or int | str)"
    )


def _convert_keys(node: Schema, defs: dict[str, Schema], path: str) -> Schema:
    out: Schema = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "default" and value is None:
            continue  # "no value" is already said by nullable / not required
        if key == "const":
            out["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound] = value
            out[key] = True
        elif key == "uniqueItems":
            if value:
                raise UnsupportedSchema(
                    f"{path}: uniqueItems is not allowed; use a list with "
                    "x-kubernetes-list-type: set"
                )
        elif key == "properties":
            out[key] = {name: _convert(sub, defs, f"{path}.{name}") for name, sub in value.items()}
        elif key == "items":
            out[key] = _convert(value, defs, f"{path}[]")
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out[key] = _convert(value, defs, f"{path}{{}}")
            elif value is True and "properties" not in node:
                out["x-kubernetes-preserve-unknown-fields"] = True
            # False (closed model) is the API server's pruning; True beside properties is moot.
        else:
            out[key] = value
    if "properties" in out or "additionalProperties" in out:
        out.setdefault("type", "object")
    return out
