"""A STAND-IN for vLLM's OpenAI server, for tests and benchmarks (vLLM itself needs a GPU).

It is not a model: the completion echoes the prompt's words, cycled, one "token" per
whitespace-separated word, so every count is deterministic. It speaks the parts of vLLM's
protocol the gateway relies on: ``/v1/completions`` and ``/v1/chat/completions`` (JSON and SSE,
``stream_options.include_usage`` and ``continuous_usage_stats``), ``/v1/models``, ``/health``,
and vLLM's extra routes (``/tokenize``, ``/detokenize``, ``/version``, profiling and cache
admin) so tests can prove the gateway hides them.

Test controls (reachable only directly, never through the gateway): ``POST /standin/config``
with ``latency`` (seconds before the first token), ``tokens_per_second`` (0 = no pacing),
``max_completion`` (cap on generated tokens), ``fail`` (``null``, ``"status500"``,
``"cut_stream"`` after two tokens, ``"hang"``, ``"unhealthy"``); ``GET /standin/last`` returns the
last completion request body as received.

    python -m tests.standins.vllm_standin --port 8000 --served-model-name demo
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

from aiohttp import web

# An upstream 500 as vLLM would send it, with internals the gateway must never pass on.
INTERNAL_DETAIL = "Traceback (most recent call last): STANDIN-INTERNAL-DETAIL /opt/vllm/engine.py"


def count_tokens(text: str) -> int:
    return len(text.split())


def prompt_text(body: dict[str, Any], chat: bool) -> str:
    if chat:
        parts = []
        for message in body.get("messages") or []:
            content = message.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
        return " ".join(parts)
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        return " ".join(str(p) for p in prompt)
    return str(prompt or "")


class StandIn:
    def __init__(self, served_model_name: str, max_completion: int) -> None:
        self.model = served_model_name
        self.settings: dict[str, Any] = {
            "latency": 0.0,
            "tokens_per_second": 0.0,
            "max_completion": max_completion,
            "fail": None,
        }
        self.last: dict[str, Any] | None = None
        self.requests = 0

    def words(self, body: dict[str, Any], chat: bool) -> tuple[int, list[str]]:
        prompt_words = prompt_text(body, chat).split() or ["empty"]
        limit = body.get("max_completion_tokens") or body.get("max_tokens") or 16
        n = min(int(limit), int(self.settings["max_completion"]))
        return len(prompt_words), [prompt_words[i % len(prompt_words)] for i in range(n)]

    async def completions(self, request: web.Request) -> web.StreamResponse:
        chat = request.path.endswith("/chat/completions")
        body = await request.json()
        self.last, self.requests = body, self.requests + 1
        fail = self.settings["fail"]
        if fail == "status500":
            return web.json_response(
                {"object": "error", "message": INTERNAL_DETAIL, "type": "Internal", "code": 500},
                status=500,
            )
        if fail == "hang":
            await asyncio.sleep(3600)
        if body.get("model") != self.model:
            return web.json_response(
                {"object": "error", "message": f"model {body.get('model')} does not exist"},
                status=404,
            )
        prompt_tokens, words = self.words(body, chat)
        if self.settings["latency"]:
            await asyncio.sleep(float(self.settings["latency"]))
        if body.get("stream"):
            return await self._stream(request, body, chat, prompt_tokens, words)
        await self._pace(len(words))
        text = " ".join(words)
        choice: dict[str, Any] = {"index": 0, "finish_reason": "length", "logprobs": None}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        return web.json_response(
            {
                "id": f"cmpl-{uuid.uuid4().hex}",
                "object": "chat.completion" if chat else "text_completion",
                "created": int(time.time()),
                "model": self.model,
                "choices": [choice],
                "usage": _usage(prompt_tokens, len(words)),
            }
        )

    async def _pace(self, tokens: int) -> None:
        tps = float(self.settings["tokens_per_second"])
        if tps > 0:
            await asyncio.sleep(tokens / tps)

    async def _stream(
        self,
        request: web.Request,
        body: dict[str, Any],
        chat: bool,
        prompt_tokens: int,
        words: list[str],
    ) -> web.StreamResponse:
        options = body.get("stream_options") or {}
        include, continuous = options.get("include_usage"), options.get("continuous_usage_stats")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        cid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        obj = "chat.completion.chunk" if chat else "text_completion"

        async def send(choices: list[dict[str, Any]], completion: int | None) -> None:
            chunk: dict[str, Any] = {
                "id": cid,
                "object": obj,
                "created": created,
                "model": self.model,
                "choices": choices,
            }
            if completion is not None:
                chunk["usage"] = _usage(prompt_tokens, completion)
            await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")

        if chat:
            await send(
                [{"index": 0, "delta": {"role": "assistant", "content": ""}}],
                0 if continuous else None,
            )
        for i, word in enumerate(words):
            if self.settings["fail"] == "cut_stream" and i == 2:
                if request.transport is not None:
                    request.transport.close()
                return response
            await self._pace(1)
            last = i == len(words) - 1
            finish = "length" if last else None
            choice = (
                {"index": 0, "delta": {"content": word + " "}, "finish_reason": finish}
                if chat
                else {"index": 0, "text": word + " ", "finish_reason": finish}
            )
            await send([choice], i + 1 if continuous else None)
        if include:
            await send([], len(words))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def health(self, _request: web.Request) -> web.Response:
        if self.settings["fail"] == "unhealthy":
            return web.Response(status=503)
        return web.Response(status=200)

    async def models(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": [{"id": self.model, "object": "model", "root": "/models/secret-path"}],
            }
        )

    async def tokenize(self, request: web.Request) -> web.Response:
        body = await request.json()
        tokens = str(body.get("prompt", "")).split()
        return web.json_response({"tokens": list(range(len(tokens))), "count": len(tokens)})

    async def detokenize(self, request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"prompt": " ".join(f"t{t}" for t in body.get("tokens", []))})

    async def admin(self, _request: web.Request) -> web.Response:
        return web.json_response({"standin": "vLLM admin route reached"})

    async def configure(self, request: web.Request) -> web.Response:
        self.settings.update(await request.json())
        return web.json_response(self.settings)

    async def last_request(self, _request: web.Request) -> web.Response:
        return web.json_response({"last": self.last, "requests": self.requests})


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def create_app(
    served_model_name: str = "standin-model", max_completion: int = 64
) -> web.Application:
    s = StandIn(served_model_name, max_completion)
    app = web.Application()
    app.router.add_post("/v1/completions", s.completions)
    app.router.add_post("/v1/chat/completions", s.completions)
    app.router.add_get("/v1/models", s.models)
    app.router.add_get("/health", s.health)
    app.router.add_post("/tokenize", s.tokenize)
    app.router.add_post("/detokenize", s.detokenize)
    app.router.add_get("/version", s.admin)
    for path in ("/start_profile", "/stop_profile", "/reset_prefix_cache", "/sleep", "/wake_up"):
        app.router.add_post(path, s.admin)
    app.router.add_post("/standin/config", s.configure)
    app.router.add_get("/standin/last", s.last_request)
    return app


def main() -> None:
    p = argparse.ArgumentParser(description="vLLM stand-in (tests only)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--served-model-name", default="standin-model")
    p.add_argument("--max-completion", type=int, default=64)
    args = p.parse_args()
    web.run_app(
        create_app(args.served_model_name, args.max_completion),
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
    )


if __name__ == "__main__":
    main()
