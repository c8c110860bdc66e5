"""The OpenAPI 3.1 document of the /v1 API, built from the pydantic schemas (pure).

Served at /v1/openapi.json and kept in docs/openapi.json; a test fails when they differ
(``python -m paitient_api.openapi`` rewrites the file).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from paitient_api import openai_schemas, schemas

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
MODELS: tuple[type[BaseModel], ...] = (
    schemas.CreateDeployment,
    schemas.UpdateDeployment,
    schemas.Generate,
    schemas.GenerateForDeployment,
    schemas.Deployment,
    schemas.DeploymentList,
    schemas.DeploymentStatus,
    schemas.Deleted,
    schemas.Generation,
    schemas.Subscription,
    schemas.ErrorBody,
    openai_schemas.ChatCompletionRequest,
    openai_schemas.CompletionRequest,
    openai_schemas.ChatCompletion,
    openai_schemas.Completion,
    openai_schemas.ModelList,
    openai_schemas.Model,
    openai_schemas.OpenAIErrorBody,
)
ERRORS = {
    "400": "validation_error: unreadable request",
    "401": "authentication_error: invalid API key or client ID",
    "403": "permission_error: suspended, or over the tier",
    "404": "not_found_error",
    "405": "validation_error: method not allowed",
    "409": "conflict_error: the name is taken",
    "413": "validation_error: body too large",
    "422": "validation_error: invalid field",
    "429": "rate_limit_error",
    "500": "service_error",
    "502": "service_error: the gateway failed",
    "503": "service_error: not ready",
}
# The OpenAI routes: their errors come in OpenAI's shape (ours plus param and code).
OPENAI_ERRORS = {
    "400": "validation_error: unreadable or invalid request",
    "401": "authentication_error (code invalid_api_key)",
    "403": "permission_error: suspended",
    "404": "not_found_error: no such route, or the model names none of your deployments "
    "(code model_not_found)",
    "405": "validation_error: method not allowed",
    "409": "conflict_error: the model name is served by several of your deployments "
    "(code model_ambiguous)",
    "413": "validation_error: body too large",
    "422": "validation_error: n or best_of above the deployment's maxChoices",
    "429": "rate_limit_error (code rate_limit_exceeded), with Retry-After",
    "500": "service_error",
    "502": "service_error: the gateway failed",
    "503": "service_error: not ready",
    "504": "service_error: the model server timed out",
}


# One event of a stream, as OpenAPI 3.1 describes text/event-stream (per event: the fields the
# HTML standard parses; ``data`` carries one JSON object, or the literal [DONE] at the end).
SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {"type": "string", "contentMediaType": "application/json"},
        "event": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer", "minimum": 0},
    },
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(model: type[BaseModel]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": _ref(model)}}}


def _op(
    summary: str,
    ok: tuple[str, type[BaseModel]],
    body: type[BaseModel] | None = None,
    sse: bool = False,
    openai: bool = False,
) -> dict[str, Any]:
    status, model = ok
    responses: dict[str, Any] = {status: {"description": summary, **_json(model)}}
    if sse:
        responses[status]["content"]["text/event-stream"] = {"schema": SSE_EVENT}
    errors, error_model = (
        (OPENAI_ERRORS, openai_schemas.OpenAIErrorBody) if openai else (ERRORS, schemas.ErrorBody)
    )
    for code, text in errors.items():
        responses[code] = {"description": text, **_json(error_model)}
    op: dict[str, Any] = {
        "summary": summary,
        "responses": responses,
        "security": [{"bearer": [], "clientId": []}],
    }
    if body is not None:
        op["requestBody"] = {"required": True, **_json(body)}
    return op


def openapi_document() -> dict[str, Any]:
    _, defs = models_json_schema(
        [(m, "validation") for m in MODELS], ref_template="#/components/schemas/{model}"
    )
    id_param = [
        {
            "name": "id",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": schemas.NAME_PATTERN, "maxLength": 63},
        }
    ]
    paths: dict[str, Any] = {
        "/deployments": {
            "post": _op(
                "Create a deployment", ("202", schemas.Deployment), schemas.CreateDeployment
            ),
            "get": _op("List deployments", ("200", schemas.DeploymentList)),
        },
        "/deployments/{id}": {
            "parameters": id_param,
            "get": _op("Get a deployment", ("200", schemas.Deployment)),
            "patch": _op(
                "Update a deployment", ("200", schemas.Deployment), schemas.UpdateDeployment
            ),
            "delete": _op("Delete a deployment", ("202", schemas.Deleted)),
        },
        "/deployments/{id}/status": {
            "parameters": id_param,
            "get": _op("Deployment status", ("200", schemas.DeploymentStatus)),
        },
        "/deployments/{id}/generate": {
            "parameters": id_param,
            "post": _op(
                "Generate text",
                ("200", schemas.Generation),
                schemas.GenerateForDeployment,
                sse=True,
            ),
        },
        "/generate": {
            "post": _op("Generate text", ("200", schemas.Generation), schemas.Generate, sse=True)
        },
        "/subscription": {"get": _op("Subscription and usage", ("200", schemas.Subscription))},
        "/chat/completions": {
            "post": _op(
                "Chat (OpenAI-compatible)",
                ("200", openai_schemas.ChatCompletion),
                openai_schemas.ChatCompletionRequest,
                sse=True,
                openai=True,
            )
        },
        "/completions": {
            "post": _op(
                "Complete text (OpenAI-compatible)",
                ("200", openai_schemas.Completion),
                openai_schemas.CompletionRequest,
                sse=True,
                openai=True,
            )
        },
        "/models": {
            "get": _op(
                "Your deployments that take requests (OpenAI-compatible)",
                ("200", openai_schemas.ModelList),
                openai=True,
            )
        },
        "/models/{model}": {
            "parameters": [
                {
                    "name": "model",
                    "in": "path",
                    "required": True,
                    "description": openai_schemas.MODEL_DESCRIPTION,
                    "schema": {"type": "string", "minLength": 1},
                }
            ],
            "get": _op(
                "One of your deployments (OpenAI-compatible)",
                ("200", openai_schemas.Model),
                openai=True,
            ),
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "PaiTIENT Secure Model Service",
            "version": "1.0.0",
            "description": "See docs/rest-api.md.",
        },
        "servers": [{"url": "https://api.paitient.ai/v1"}],
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "clientId": {"type": "apiKey", "in": "header", "name": "X-Client-ID"},
            },
        },
    }


def render() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    if "--check" in sys.argv:
        sys.exit(0 if DOC_PATH.read_text() == render() else 1)
    DOC_PATH.write_text(render())
    print(f"wrote {DOC_PATH}")
