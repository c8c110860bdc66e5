"""An in-memory emulation of the /v1 contract (docs/rest-api.md, and the OpenAI-compatible chat
route of docs/openai.md) behind httpx.MockTransport.

Its error answers on the /v1 contract are the front door's own, recorded in
sdk/testdata/errors.json (generated from the service's code and kept in sync by the service's
tests), so they cannot drift from what the service says.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BASE_URL = "http://paitient.test/v1"
API_KEY = "your-api-key"
CLIENT_ID = "your-client-id"

_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


SERVICE_ERRORS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "testdata" / "errors.json").read_text()
)["errors"]


def error(status: int, type_: str, message: str, request_id: str = "req-fake") -> httpx.Response:
    """Any error in the contract's shape, for tests that script one."""
    body = {"error": {"type": type_, "message": message, "request_id": request_id}}
    return httpx.Response(status, json=body, headers={"x-request-id": request_id})


def service_error(name: str, request_id: str = "req-fake") -> httpx.Response:
    """The front door's own answer ``name`` from sdk/testdata/errors.json."""
    case = SERVICE_ERRORS[name]
    body = {"error": {**case["body"]["error"], "request_id": request_id}}
    headers = {**case["headers"], "x-request-id": request_id}
    return httpx.Response(case["status"], json=body, headers=headers)


def sse(*events: Any) -> bytes:
    """A text/event-stream body: dicts become JSON data events, strings are sent as-is."""
    out = []
    for event in events:
        data = event if isinstance(event, str) else json.dumps(event)
        out.append(f"data: {data}\n\n")
    return "".join(out).encode()


@dataclass
class FakeServer:
    """Deployments, generation and a subscription for one tenant; records every request."""

    credentials: dict[str, str] = field(default_factory=lambda: {API_KEY: CLIENT_ID})
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    # Deployments created, with the Idempotency-Key of the request that created each.
    creates: list[tuple[str | None, str]] = field(default_factory=list)
    # The first answer to each Idempotency-Key of a write (5xx not kept), as the front door
    # keeps it (docs/rest-api.md#retries-idempotency-key).
    _answers: dict[str, httpx.Response] = field(default_factory=dict)
    usage: int = 1234
    # Each status poll moves a pending deployment on (pending -> progressing -> ready).
    auto_progress: bool = False
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.add_deployment("deployment-123", status="ready")

    def add_deployment(self, name: str, status: str = "pending", **fields: Any) -> dict[str, Any]:
        deployment = {
            "id": name,
            "name": name,
            "model_name": "ZimaBlueAI/HuatuoGPT-o1-8B",
            "status": status,
            "use_gpu": True,
            "gpu_count": 1,
            "replicas": 1,
            "ready_replicas": 1 if status == "ready" else 0,
            "endpoint": None,
            "message": "",
            "created_at": "2026-11-26T12:00:00Z",
            **fields,
        }
        self.deployments[name] = deployment
        return deployment

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    @property
    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests]

    # -- the contract

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = request.headers.get("idempotency-key") if request.method != "GET" else None
        if key is not None and key in self._answers:
            first = self._answers[key]
            return httpx.Response(first.status_code, headers=first.headers, content=first.content)
        answer = self._handle(request)
        if key is not None and answer.status_code < 500:
            answer.read()
            self._answers[key] = answer
        return answer

    def _handle(self, request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("authorization", "")
        key = auth.removeprefix("Bearer ")
        if self.credentials.get(key) != request.headers.get("x-client-id"):
            return service_error("authentication")
        path = request.url.path.removeprefix("/v1")
        body = json.loads(request.content) if request.content else {}
        route = (request.method, path)
        if route == ("POST", "/deployments"):
            answer = self._create(body)
            if answer.status_code == 202:
                self.creates.append((request.headers.get("idempotency-key"), answer.json()["id"]))
            return answer
        if route == ("GET", "/deployments"):
            return self._ok({"data": list(self.deployments.values())})
        if route == ("POST", "/generate"):
            return self._generate(body)
        if route == ("POST", "/chat/completions"):
            return self._chat(body)
        if route == ("GET", "/subscription"):
            return self._ok(
                {
                    "tier": "standard",
                    "current_usage": self.usage,
                    "usage_limit": 10000000,
                    "period_start": "2026-11-01T00:00:00Z",
                    "period_end": "2026-12-01T00:00:00Z",
                }
            )
        match = re.fullmatch(r"/deployments/([^/]+)(/status)?", path)
        if match:
            deployment = self.deployments.get(match.group(1))
            if deployment is None:
                return service_error("deployment_not_found")
            if request.method == "GET" and match.group(2):
                if self.auto_progress and deployment["status"] in ("pending", "progressing"):
                    ready = deployment["status"] == "progressing"
                    deployment["status"] = "ready" if ready else "progressing"
                    deployment["ready_replicas"] = deployment["replicas"] if ready else 0
                return self._ok(self._status(deployment))
            if request.method == "GET":
                return self._ok(deployment)
            if request.method == "PATCH":
                deployment.update(
                    {k: v for k, v in body.items() if k in ("replicas", "max_model_len")}
                )
                return self._ok(deployment)
            if request.method == "DELETE":
                del self.deployments[deployment["id"]]
                return self._ok({"id": deployment["id"], "deleted": True}, 202)
        return service_error("no_such_route")

    def _ok(self, body: Any, status: int = 200) -> httpx.Response:
        return httpx.Response(status, json=body, headers={"x-request-id": "req-fake"})

    def _create(self, body: dict[str, Any]) -> httpx.Response:
        model = body.get("model_name")
        if not isinstance(model, str) or not model:
            return service_error("model_name_missing")
        name = body.get("deployment_name") or (
            re.sub(r"[^a-z0-9]+", "-", model.lower().split("/")[-1]).strip("-") + "-x1y2z"
        )
        if not _NAME.match(name):
            return service_error("deployment_name_invalid")
        if name in self.deployments:
            return service_error("deployment_exists")
        use_gpu = body.get("use_gpu", True)
        deployment = self.add_deployment(
            name,
            model_name=model,
            use_gpu=use_gpu,
            gpu_count=body.get("gpu_count", 1) if use_gpu else None,
            replicas=body.get("replicas", 1),
        )
        return self._ok(deployment, 202)

    def _status(self, deployment: dict[str, Any]) -> dict[str, Any]:
        ready = deployment["status"] == "ready"
        return {
            "id": deployment["id"],
            "status": deployment["status"],
            "ready_replicas": deployment["ready_replicas"],
            "replicas": deployment["replicas"],
            "message": deployment["message"],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "reason": "Ready" if ready else "Progressing",
                    "message": deployment["message"],
                }
            ],
        }

    def _generate(self, body: dict[str, Any]) -> httpx.Response:
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            return service_error("prompt_empty")
        max_tokens = body.get("max_tokens", 256)
        if not isinstance(max_tokens, int):
            return service_error("max_tokens_not_an_integer")
        if max_tokens < 1:
            return service_error("max_tokens_too_small")
        if max_tokens > 32768:
            return service_error("max_tokens_too_large")
        temperature = body.get("temperature", 1.0)
        if temperature < 0:
            return service_error("temperature_too_low")
        if temperature > 2:
            return service_error("temperature_too_high")
        deployment = self.deployments.get(body.get("deployment_id", ""))
        if deployment is None:
            return service_error("generate_deployment_not_found")
        words = ["HIPAA", " compliance", " protects", " patients."]
        usage = {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16}
        if body.get("stream"):
            content = sse(
                *({"text": w} for w in words), {"finish_reason": "stop", "usage": usage}, "[DONE]"
            )
            return httpx.Response(
                200,
                content=content,
                headers={"content-type": "text/event-stream", "x-request-id": "req-fake"},
            )
        return self._ok(
            {
                "id": f"gen-{next(self._ids)}",
                "deployment_id": deployment["id"],
                "text": "".join(words),
                "finish_reason": "stop",
                "usage": usage,
            }
        )

    def _chat(self, body: dict[str, Any]) -> httpx.Response:
        """The answer's words come as vLLM streams them: a role-only chunk, text chunks, the
        finish reason with an empty delta, then (when asked) the usage chunk without choices."""
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return service_error("chat_messages_empty")
        deployment = self.deployments.get(body.get("model", ""))
        if deployment is None:
            return service_error("chat_model_unknown")
        words = ["Protected", " health", " information."]
        usage = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
        base = {"id": "chatcmpl-1", "created": 1795694400, "model": deployment["model_name"]}
        if not body.get("stream"):
            message = {"role": "assistant", "content": "".join(words)}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            return self._ok(
                {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
            )
        chunk = {**base, "object": "chat.completion.chunk"}
        deltas = [{"role": "assistant", "content": ""}, *({"content": w} for w in words)]
        events: list[Any] = [
            {**chunk, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas
        ]
        events.append(
            {**chunk, "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "stop"}]}
        )
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**chunk, "choices": [], "usage": usage})
        return httpx.Response(
            200,
            content=sse(*events, "[DONE]"),
            headers={"content-type": "text/event-stream", "x-request-id": "req-fake"},
        )
