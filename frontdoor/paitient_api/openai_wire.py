"""The OpenAI protocol at the front door (pure): which paths speak it, which of the caller's
deployments a request's ``model`` names, and the model cards of ``GET /v1/models``.

``model`` is a deployment id (its name). A model name (``spec.model.name``, e.g.
``ZimaBlueAI/HuatuoGPT-o1-8B``) also works while exactly one of the caller's deployments serves
it; none is a 404 ``model_not_found``, more than one a 409 ``model_ambiguous`` naming their ids
(409, not 400: the request is well formed, the tenant's state is what stands in its way, and
deleting or renaming a twin resolves it).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from paitient_common.errors import ConflictError, NotFoundError, RequestValidationError
from paitient_common.kubeapi import Obj

CHAT_COMPLETIONS: Final = "/v1/chat/completions"
COMPLETIONS: Final = "/v1/completions"
MODELS: Final = "/v1/models"
# How much of an unknown ``model`` an error message quotes back.
_MAX_ECHO: Final = 100


def is_openai_path(path: str) -> bool:
    """Whether ``path`` answers in OpenAI's shape (errors included)."""
    return path in (CHAT_COMPLETIONS, COMPLETIONS, MODELS) or path.startswith(MODELS + "/")


def requested_model(body: dict[str, Any]) -> str:
    """The ``model`` of a request body; 400 naming the field when it is missing or not text."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestValidationError(
            "'model' must be a non-empty string: the id of one of your deployments",
            param="model",
        )
    return model


def model_name(md: Obj) -> str | None:
    name = ((md.get("spec") or {}).get("model") or {}).get("name")
    return name if isinstance(name, str) else None


def resolve_model(deployments: Iterable[Obj], model: str) -> Obj:
    """The deployment ``model`` names: by id first, then by its model name when unambiguous."""
    candidates = list(deployments)
    for md in candidates:
        if md["metadata"]["name"] == model:
            return md
    serving = [md for md in candidates if model_name(md) == model]
    if len(serving) == 1:
        return serving[0]
    shown = model if len(model) <= _MAX_ECHO else model[:_MAX_ECHO] + "…"
    if not serving:
        raise NotFoundError(
            f"the model '{shown}' is not one of your deployments (give a deployment id, or a "
            "model name one of your deployments serves)",
            param="model",
            code="model_not_found",
        )
    ids = ", ".join(sorted(md["metadata"]["name"] for md in serving))
    raise ConflictError(
        f"the model name '{shown}' is served by {len(serving)} of your deployments ({ids}): "
        "give a deployment id as 'model'",
        param="model",
        code="model_ambiguous",
    )


def model_card(md: Obj) -> dict[str, Any]:
    """One entry of ``GET /v1/models``: the deployment id is what ``model`` takes."""
    return {
        "id": md["metadata"]["name"],
        "object": "model",
        "created": _epoch(md["metadata"].get("creationTimestamp")),
        "owned_by": "paitient",
        "root": model_name(md),
    }


def model_list(deployments: Iterable[Obj]) -> dict[str, Any]:
    return {"object": "list", "data": [model_card(md) for md in deployments]}


def _epoch(timestamp: object) -> int:
    if not isinstance(timestamp, str):
        return 0
    try:
        return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0
