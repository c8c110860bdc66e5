"""The front door's OpenAI protocol, pure parts: which paths speak it, how ``model`` picks one
of the caller's deployments, the model cards, and the documented request bodies."""

from __future__ import annotations

from typing import Any

import pytest

from paitient_api.openai_schemas import ChatCompletionRequest, CompletionRequest
from paitient_api.openai_wire import (
    is_openai_path,
    model_card,
    model_list,
    requested_model,
    resolve_model,
)
from paitient_common.errors import ConflictError, NotFoundError, RequestValidationError


def md(name: str, model: str | None = None, phase: str = "Ready") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "tenant-a",
            "creationTimestamp": "2026-11-26T12:00:00Z",
        },
        "spec": {"model": {"name": model}} if model else {},
        "status": {"phase": phase},
    }


MINE = [
    md("chat", "org/alpha"),
    md("beta-1", "org/beta"),
    md("beta-2", "org/beta", phase="Failed"),
    md("org-beta-x", "chat"),  # a model name that is also another deployment's id
]


@pytest.mark.parametrize(
    ("path", "openai"),
    [
        ("/v1/chat/completions", True),
        ("/v1/completions", True),
        ("/v1/models", True),
        ("/v1/models/org/alpha", True),
        ("/v1/generate", False),
        ("/v1/deployments", False),
        ("/v1/deployments/x/generate", False),
        ("/v1/modelsx", False),
        ("/v1/chat/completions/x", False),
    ],
)
def test_only_the_openai_routes_speak_openai(path: str, openai: bool) -> None:
    assert is_openai_path(path) is openai


def test_model_is_a_deployment_id_first() -> None:
    assert resolve_model(MINE, "chat")["metadata"]["name"] == "chat"
    assert resolve_model(MINE, "beta-2")["metadata"]["name"] == "beta-2"  # any phase


def test_a_model_name_served_by_one_deployment_names_it() -> None:
    assert resolve_model(MINE, "org/alpha")["metadata"]["name"] == "chat"


def test_a_model_name_served_by_several_is_a_409_naming_their_ids() -> None:
    with pytest.raises(ConflictError) as info:
        resolve_model(MINE, "org/beta")
    err = info.value
    assert (err.status, err.param, err.code) == (409, "model", "model_ambiguous")
    assert "beta-1, beta-2" in err.message


@pytest.mark.parametrize("model", ["org/gamma", "CHAT", "x" * 500])
def test_an_unknown_model_is_a_404_model_not_found(model: str) -> None:
    with pytest.raises(NotFoundError) as info:
        resolve_model(MINE, model)
    err = info.value
    assert (err.status, err.param, err.code) == (404, "model", "model_not_found")
    assert len(err.message) < 300  # a long model is not echoed whole


def test_nobody_elses_deployment_is_among_the_candidates() -> None:
    # The handler lists only the caller's namespace: with nothing there, every model is unknown.
    with pytest.raises(NotFoundError):
        resolve_model([], "chat")


@pytest.mark.parametrize("body", [{}, {"model": ""}, {"model": 7}, {"model": ["chat"]}])
def test_model_must_be_a_non_empty_string(body: dict[str, Any]) -> None:
    with pytest.raises(RequestValidationError) as info:
        requested_model(body)
    assert (info.value.status, info.value.param) == (400, "model")


def test_model_cards_name_the_deployment_and_its_model() -> None:
    assert model_card(MINE[0]) == {
        "id": "chat",
        "object": "model",
        "created": 1795694400,
        "owned_by": "paitient",
        "root": "org/alpha",
    }
    assert model_card(md("bare"))["root"] is None
    assert model_card({"metadata": {"name": "new"}})["created"] == 0
    assert model_list(MINE[:1]) == {"object": "list", "data": [model_card(MINE[0])]}


def test_the_documented_bodies_accept_what_openai_clients_send() -> None:
    chat = ChatCompletionRequest.model_validate(
        {
            "model": "chat",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "stream_options": {"include_usage": True},
            "top_p": 0.9,
            "tools": [],
        }
    )
    assert chat.model_extra == {"top_p": 0.9, "tools": []}
    CompletionRequest.model_validate({"model": "chat", "prompt": [1, 2, 3], "max_tokens": 4})
